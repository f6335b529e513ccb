"""Addresses on a server: its WebSocket and REST URLs, and a room's viewer URL.

Pure logic. A server URL may carry a path prefix (a proxy's `/ce/`): every
address is built below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from yarl import URL

WS_PATH = "api/v1/ws"
LANGUAGES_PATH = "api/v1/languages"
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


class BadAddress(ValueError):
    """A server or room URL that `ce` cannot use; the message says why."""


def server_url(text: str) -> URL:
    """The server's base URL (http or https, a trailing slash added)."""
    url = URL(text if "://" in text else f"http://{text}")
    if url.scheme not in _HTTP_SCHEMES or not url.host:
        raise BadAddress(f"{text!r} is not a server address like http://127.0.0.1:8080")
    url = url.with_scheme(_HTTP_SCHEMES[url.scheme]).with_query(None).with_fragment(None)
    return url if url.path.endswith("/") else url.with_path(url.path + "/")


def ws_url(server: URL) -> URL:
    """The interactive WebSocket of a server from `server_url`."""
    return server.with_scheme(_WS_SCHEMES[server.scheme]).join(URL(WS_PATH))


def rest_url(server: URL, path: str) -> URL:
    """A REST address below the server's base URL."""
    return server.join(URL(path))


@dataclass(frozen=True, slots=True)
class RoomAddress:
    server: URL
    room: str


def room_address(text: str) -> RoomAddress:
    """The server and room of a room's viewer URL (the presenter's `watch_url`).

    `http://host:8080/watch/ROOM` (below a prefix too: `/ce/watch/ROOM`), or
    a page with a `room` parameter in its query or fragment (the server is
    then the page's origin).
    """
    url = URL(text)
    if url.scheme not in _HTTP_SCHEMES or not url.host:
        raise BadAddress(f"{text!r} is not a room address like http://host:8080/watch/ROOM")
    fragment = URL(f"?{url.fragment}").query if url.fragment else {}
    segments = [segment for segment in url.path.split("/") if segment]
    for parameters in (url.query, fragment):
        if parameters.get("room"):
            return RoomAddress(_below(url, []), parameters["room"])
    if len(segments) >= 2 and segments[-2] == "watch":
        return RoomAddress(_below(url, segments[:-2]), segments[-1])
    raise BadAddress(f"{text!r} names no room; copy the whole viewer URL")


def _below(url: URL, segments: list[str]) -> URL:
    """The server at `url`'s origin, below the path `segments`."""
    return server_url(str(url.origin().with_path("/".join(["", *segments]))))
