"""The session layer's `Sandbox`: a warm box when one fits, a cold one otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ce_ws.sandbox.box import Box, BoxPlan, start_box
from ce_ws.sandbox.engine import Engine
from ce_ws.sandbox.pool import WarmPool


class DockerSandbox:
    """The real `Sandbox` of the session layer: warm boxes when it can, cold ones otherwise."""

    def __init__(self, engine: Engine, pool: WarmPool | None = None) -> None:
        self.engine = engine
        self.pool = pool

    @contextlib.asynccontextmanager
    async def open_box(self, plan: BoxPlan) -> AsyncIterator[Box]:
        """A started container holding `plan`'s files, destroyed when the context ends."""
        box = self.pool.claim(plan.profile) if self.pool is not None else None
        if box is None:
            box = await start_box(self.engine, plan.profile, size=plan.size)
        try:
            await box.stage(plan.files)
            yield box
        finally:
            await box.destroy()  # shielded and bounded: nothing lingers
