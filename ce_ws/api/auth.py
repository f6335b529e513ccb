"""Client tokens: the one check, whether the token came in a header or a field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from aiohttp import web

from ce_ws.errors import BadMessage, Unauthorized
from ce_ws.secret import same_secret


class _CarriesToken(Protocol):
    @property
    def token(self) -> str | None: ...


_Body = TypeVar("_Body", bound=_CarriesToken)


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def authorized(tokens: list[str], *candidates: str | None) -> bool:
    """Whether a client may run: no tokens configured, or one candidate is valid.

    Called with the bearer header and, once it is parsed, the `token` field;
    each comparison is constant-time.
    """
    if not tokens:
        return True
    return any(
        candidate is not None and any(same_secret(candidate, known) for known in tokens)
        for candidate in candidates
    )


def parse_authorized(
    request: web.Request, body: bytes, tokens: list[str], parse: Callable[[bytes], _Body]
) -> _Body:
    """Parse a REST body; with tokens configured, a bearer header or `token` field is required.

    A body that does not parse tells an unauthorized client nothing but that.
    """
    bearer = bearer_token(request)
    try:
        parsed = parse(body)
    except BadMessage:
        if not authorized(tokens, bearer):
            raise Unauthorized("a valid token is required", field="token") from None
        raise
    if not authorized(tokens, bearer, parsed.token):
        raise Unauthorized("a valid token is required", field="token")
    return parsed
