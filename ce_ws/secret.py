"""Comparing what a client sent with a secret: in constant time, whatever the string."""

from __future__ import annotations

import hmac


def same_secret(given: str, known: str) -> bool:
    """Whether `given` is `known`, in time independent of where they differ.

    `hmac.compare_digest` refuses `str` with non-ASCII characters (a
    `TypeError`, which would be a 500 for a client's odd header or cookie):
    both are compared as bytes, lone surrogates included.
    """
    return hmac.compare_digest(_bytes(given), _bytes(known))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
