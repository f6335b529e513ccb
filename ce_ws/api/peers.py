"""This replica's HTTP client for the other replicas (rooms relayed, admin requests forwarded).

Replicas find each other through Redis (`CE_REDIS_URL`), each named by its
`CE_ADVERTISE_URL`. One session for all of it, made on the event loop at
first use, closed at shutdown.
"""

from __future__ import annotations

import aiohttp

#: How long reaching another replica may take.
CONNECT_S = 5.0
#: Set on a request one replica forwards to another, which never forwards it again.
FORWARDED_HEADER = "X-CE-Forwarded-By"


class Peers:
    """The HTTP session for requests to the other replicas."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No pool limit: each relayed viewer holds one connection for its whole watch.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_S),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
