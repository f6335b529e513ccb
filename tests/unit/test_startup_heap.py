"""The serving process freezes what startup built, after collecting its garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from aiohttp import web

from ce_ws.__main__ import _freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_startup_garbage_is_collected_and_what_lives_is_frozen() -> None:
    first, second = _Node(), _Node()
    first.other, second.other = second, first  # a cycle only the collector frees
    gone = weakref.ref(first)
    del first, second
    kept = _Node()

    await _freeze_startup_heap(web.Application())

    assert gone() is None, "garbage from startup must be collected, not frozen for good"
    assert gc.get_freeze_count() > 0
    assert not any(tracked is kept for tracked in gc.get_objects()), "what lives is frozen"
