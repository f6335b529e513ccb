"""Who a client is, for its caps and rate limits: a token, a browser, or an address.

A school's whole class comes from one NAT address, and behind a reverse
proxy every client has the proxy's: keyed by address alone, forty students
would share one person's caps. So the key is, in order:

1. the bearer token, when tokens are configured and it is a valid one (an
   invalid or unconfigured one is anybody's to invent, so it counts for nothing);
2. the browser: an HMAC-signed, HttpOnly, SameSite=Strict cookie the server
   issues with the playground page (not on the WebSocket upgrade: a socket's
   client would then change between a browser's first socket and its next);
3. the address: the peer's, or, when the peer is one of `CE_TRUSTED_PROXIES`,
   the one its `Forwarded` / `X-Forwarded-For` header names (the rightmost hop
   that is not itself a trusted proxy). From any other peer those headers are
   ignored.

The cookie identifies a browser; it authenticates nothing: a script can
fetch many, and only the global caps bound them all (SECURITY.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable

from aiohttp import hdrs, web

from ce_ws.api.auth import authorized, bearer_token
from ce_ws.config import Settings
from ce_ws.secret import same_secret

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The browser cookie's value: this version tag, the browser's id, its MAC.
_COOKIE_VERSION = "v1"
_ID_BYTES = 16
_MAC_HEX = 32


class Identity:
    """Computes a request's client key; issues and checks browser cookies."""

    def __init__(self, settings: Settings) -> None:
        config = settings.identity
        secret = config.cookie_secret
        # Without a configured secret each process makes its own: cookies
        # then last until the server restarts (or differ between replicas).
        self._secret = (
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32)
        )
        self.cookie_name = config.cookie_name
        self._max_age_s = config.cookie_max_age_s
        self._secure = (settings.public_url or "").startswith("https://")
        self._tokens = settings.tokens
        self._trusted = [
            ipaddress.ip_network(cidr, strict=False) for cidr in settings.trusted_proxies
        ]

    # -- the key ------------------------------------------------------------

    def client_key(self, request: web.Request) -> str:
        """The key a request's caps and rate limits count against."""
        token = bearer_token(request)
        if self._tokens and token and authorized(self._tokens, token):
            return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        browser = self.browser_id(request)
        if browser is not None:
            return "browser:" + browser
        return "addr:" + self.address(request)

    def address(self, request: web.Request) -> str:
        """The client's address: the peer's, or what a trusted proxy says it forwarded."""
        peer = request.remote or "unknown"
        chain = [*self._forwarded_for(request), peer] if self._is_trusted(peer) else [peer]
        # From the right: each trusted proxy vouches for the hop before it.
        while len(chain) > 1 and self._is_trusted(chain[-1]):
            previous = _parse_address(chain[-2])
            if previous is None:  # "unknown" or an obfuscated name: the proxy is all we know
                break
            chain.pop()
            chain[-1] = str(previous)
        return chain[-1]

    def from_trusted_proxy(self, request: web.Request) -> bool:
        """Whether the peer itself is a trusted proxy (nginx, another replica)."""
        return self._is_trusted(request.remote or "")

    def _is_trusted(self, host: str) -> bool:
        address = _parse_address(host)
        return address is not None and any(address in network for network in self._trusted)

    def _forwarded_for(self, request: web.Request) -> list[str]:
        """The hops a proxy recorded, oldest first: `Forwarded` if sent, else `X-Forwarded-For`."""
        if hdrs.FORWARDED in request.headers:
            return [hop["for"] for hop in request.forwarded if "for" in hop]
        values: Iterable[str] = request.headers.getall(hdrs.X_FORWARDED_FOR, [])
        return [hop.strip() for value in values for hop in value.split(",") if hop.strip()]

    # -- the browser cookie ---------------------------------------------------

    def browser_id(self, request: web.Request) -> str | None:
        """The id of a valid cookie this server issued, or None."""
        value = request.cookies.get(self.cookie_name)
        if value is None:
            return None
        version, _, rest = value.partition(".")
        browser, _, mac = rest.partition(".")
        if version != _COOKIE_VERSION or not same_secret(mac, self._mac(browser)):
            return None
        return browser

    def issue_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """Give a browser without a valid cookie its own (before the response is sent)."""
        if self.browser_id(request) is not None:
            return
        browser = secrets.token_hex(_ID_BYTES)
        response.set_cookie(
            self.cookie_name,
            f"{_COOKIE_VERSION}.{browser}.{self._mac(browser)}",
            max_age=int(self._max_age_s),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self._secure or request.secure,
        )

    def _mac(self, browser: str) -> str:
        digest = hmac.new(self._secret, browser.encode(), hashlib.sha256).hexdigest()
        return digest[:_MAC_HEX]


def _parse_address(host: str) -> Address | None:
    """An address from a header's hop (`[v6]:port`, `v4:port`, bare); None if it is none."""
    host = host.strip().strip('"')
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
