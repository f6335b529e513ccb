"""Comparing a client's string with a secret never raises, whatever the string."""

from __future__ import annotations

from ce_ws.secret import same_secret


def test_equal_and_different_secrets() -> None:
    assert same_secret("s3cret-token", "s3cret-token")
    assert not same_secret("s3cret-tokem", "s3cret-token")
    assert not same_secret("", "s3cret-token")


def test_non_ascii_and_lone_surrogates_are_simply_different() -> None:
    # hmac.compare_digest raises TypeError for these as str: a 500 for an odd header.
    assert not same_secret("sécret", "s3cret-token")
    assert not same_secret("\udcff\udcfe", "s3cret-token")  # a header's undecodable bytes
    assert same_secret("sécret", "sécret")
