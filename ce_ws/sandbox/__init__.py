"""Everything Docker: the engine client, container spec, staging, boxes, reaper.

Knows nothing of WebSockets; the session layer drives it through `Box`.
"""

from ce_ws.sandbox.box import Box, BoxExit, BoxPlan, DockerSandbox, open_box
from ce_ws.sandbox.cgroup import Usage
from ce_ws.sandbox.engine import Engine

__all__ = ["Box", "BoxExit", "BoxPlan", "DockerSandbox", "Engine", "Usage", "open_box"]
