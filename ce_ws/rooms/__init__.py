"""Live rooms: a presenter's code and runs, watched read-only by bounded viewers.

`room.py` is one room's life and fan-out; `registry.py` the server's rooms
and their limits. The wire side (share, watch...) is `api/sharing.py`.
"""
