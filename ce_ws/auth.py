"""Client tokens: where they come from and how they are checked."""

from __future__ import annotations

import hmac

from aiohttp import web


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def token_is_valid(token: str | None, tokens: list[str]) -> bool:
    """Constant-time check of a client token against the configured ones."""
    return token is not None and any(hmac.compare_digest(token, known) for known in tokens)
