"""A client's WebSockets at once (`CE_CAPACITY__MAX_CONNECTIONS_PER_CLIENT`), on every surface.

Counted by this replica, and with a shared Redis across replicas too, so a
client behind nginx has one cap however its sockets are spread.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from ce_ws.api.appkeys import CLIENT_CONNECTIONS, RUNNER


@contextlib.asynccontextmanager
async def client_socket(
    app: web.Application, client_key: str, *, counted: bool = True
) -> AsyncIterator[bool]:
    """Hold one of the client's socket places while inside; False: it has none left.

    Not `counted`: a viewer's relay from another replica, which counted it there.
    """
    local, shared = app[CLIENT_CONNECTIONS], app[RUNNER].shared
    if not counted:
        yield True
        return
    if not local.has_room(client_key):
        yield False
        return
    # This replica's place first, so sockets arriving while Redis answers slowly
    # cannot all pass the local cap together.
    with local.hold(client_key):
        token = uuid.uuid4().hex
        if shared is not None and not await shared.hold(
            "sockets", client_key, token, local.per_client
        ):
            yield False
            return
        try:
            yield True
        finally:
            if shared is not None:
                shared.release(token)
