"""Client tokens: the one check, whether the token came in a header or a field."""

from __future__ import annotations

import hmac

from aiohttp import web


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
        candidate is not None and any(hmac.compare_digest(candidate, known) for known in tokens)
        for candidate in candidates
    )
