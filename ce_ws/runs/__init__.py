"""The session layer: runs, from a planned request to their one `exit`.

`Runner` (runner.py) is the only way a run starts; `Run` (run.py) drives
one, awaiting its owner; `Fanout` (fanout.py) holds bounded viewers
beside it, fed by a tap (tee.py). Imports no container
engine: the sandbox is reached through `ce_ws.sandbox.base`.
"""
