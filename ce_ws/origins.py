"""Which Host names and browser Origins are the server's own.

Everything here comes from the configuration (the bind address, the loopback
names, `CE_PUBLIC_URL`, `CE_ALLOWED_HOSTS`, `CE_ALLOWED_ORIGINS`) and from the
port the server really listens on; never from the request, whose Host a
client chooses. After DNS rebinding a browser sends the attacker's name as
both Host and Origin, so "Origin equals Host" proves nothing; a Host naming
none of the configured names is refused instead.

Pure logic: the web layer passes in the headers and the listening socket's
address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

#: Names that reach this machine only; no one else can make a browser use them
#: for their own site.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Bind addresses that mean "every interface": they name no host.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
#: The server itself speaks plain HTTP (TLS, if any, ends at a proxy).
OWN_SCHEME = "http"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """A browser origin, normalised: lowercase scheme and host, explicit port."""

    scheme: str
    host: str
    port: int | None


def parse_authority(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` (IPv6 in brackets) as (lowercase host, port), or None if malformed."""
    if not authority or "@" in authority:
        return None
    try:
        parts = urlsplit(f"//{authority}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad IPv6 literal or port
        return None
    if not host or parts.netloc != authority:  # a path, query or fragment crept in
        return None
    return host, port


def parse_origin(url: str, *, path_allowed: bool = False) -> Origin | None:
    """The origin of `scheme://host[:port]` (a longer path if allowed), or None if malformed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or parts.query or parts.fragment:
        return None
    if parts.path not in ("", "/") and not path_allowed:
        return None
    authority = parse_authority(parts.netloc)
    if authority is None:
        return None
    host, port = authority
    scheme = parts.scheme.lower()
    return Origin(scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme))


def local_port(sockname: object) -> int | None:
    """The port of a listening socket's address (`("host", port, ...)`), if it has one."""
    if isinstance(sockname, tuple) and len(sockname) >= 2 and isinstance(sockname[1], int):
        return sockname[1]
    return None


def public_base_url(public_url: str | None, *, host_header: str | None) -> str:
    """Where browsers reach this server, for links it hands out (a room's `watch_url`).

    `CE_PUBLIC_URL` when set; else the request's own Host, which the host
    guard has checked against the configured names (so a rebinding page
    cannot plant its own); else "" (a link relative to the server).
    """
    if public_url:
        return public_url.rstrip("/")
    if host_header and parse_authority(host_header) is not None:
        return f"{OWN_SCHEME}://{host_header}"
    return ""


@dataclass(frozen=True)
class OriginPolicy:
    """The host names a request may address and the origins a browser may come from."""

    #: Host names (lowercase, no port) a Host header may name.
    hosts: frozenset[str]
    #: Origins allowed as given (`CE_ALLOWED_ORIGINS`, compared exactly as before)...
    allowed_exact: frozenset[str]
    #: ...and normalised, with `CE_PUBLIC_URL`'s origin.
    allowed: frozenset[Origin]

    @classmethod
    def of(
        cls,
        *,
        bind_host: str,
        public_url: str | None,
        allowed_hosts: list[str],
        allowed_origins: list[str],
    ) -> OriginPolicy:
        """From the settings (each already checked by `Settings`)."""
        hosts = set(LOOPBACK_HOSTS)
        hosts |= {parsed[0] for name in allowed_hosts if (parsed := parse_authority(name))}
        bound = bind_host.strip("[]").lower()
        if bound not in WILDCARD_HOSTS:
            hosts.add(bound)
        allowed = {origin for url in allowed_origins if (origin := parse_origin(url))}
        if public_url and (public := parse_origin(public_url, path_allowed=True)):
            hosts.add(public.host)
            allowed.add(public)
        return cls(frozenset(hosts), frozenset(allowed_origins), frozenset(allowed))

    def host_allowed(self, host_header: str | None) -> bool:
        """A request without Host (not a browser) or one naming a configured name.

        The port is not compared: behind a proxy the Host carries the public
        port, not the one the server listens on.
        """
        if host_header is None:
            return True
        authority = parse_authority(host_header)
        return authority is not None and authority[0] in self.hosts

    def origin_allowed(self, origin: str | None, port: int | None) -> bool:
        """No Origin (not a browser), an allowed one, or the server's own.

        The server's own: plain http, a configured host name and `port`, the
        one it really listens on.
        """
        if origin is None or origin in self.allowed_exact:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self.allowed:
            return True
        own = parsed.scheme == OWN_SCHEME and parsed.host in self.hosts
        return own and port is not None and parsed.port == port
