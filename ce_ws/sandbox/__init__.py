"""Everything Docker: the engine client, container spec, staging, boxes, pool, reaper.

Knows nothing of WebSockets; the session layer drives it through `Box`.
"""

from ce_ws.sandbox.box import Box, BoxExit, BoxPlan, BoxProfile, CompileExit, start_box
from ce_ws.sandbox.cgroup import Usage
from ce_ws.sandbox.engine import Engine
from ce_ws.sandbox.pool import WarmPool, host_memory_bytes
from ce_ws.sandbox.provider import DockerSandbox

__all__ = [
    "Box",
    "BoxExit",
    "BoxPlan",
    "BoxProfile",
    "CompileExit",
    "DockerSandbox",
    "Engine",
    "Usage",
    "WarmPool",
    "host_memory_bytes",
    "start_box",
]
