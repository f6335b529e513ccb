"""Client identity: which address a request is from, and the browser cookie's checks."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ce_ws.api.identity import Identity
from ce_ws.config import Settings

PROXY = "10.0.0.5"


def request(peer: str, **headers: str) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default
    )
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


@pytest.mark.parametrize(
    ("peer", "headers", "address"),
    [
        ("198.51.100.7", {"X-Forwarded-For": "203.0.113.9"}, "198.51.100.7"),  # untrusted peer
        (PROXY, {"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"),
        (PROXY, {"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.0.0.6"}, "203.0.113.9"),  # two proxies
        (PROXY, {"Forwarded": 'for="[2001:db8::17]:4711";proto=https'}, "2001:db8::17"),
        (PROXY, {"Forwarded": "for=203.0.113.9:80", "X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"),
        (PROXY, {"Forwarded": "for=unknown"}, PROXY),  # nothing better than the proxy
        (PROXY, {}, PROXY),
    ],
)  # fmt: skip
def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    peer: str, headers: dict[str, str], address: str
) -> None:
    identity = Identity(Settings(trusted_proxies=["10.0.0.0/8"]))
    assert identity.address(request(peer, **headers)) == address


def test_a_cookie_is_valid_only_for_the_secret_that_signed_it() -> None:
    secret = {"cookie_secret": "s" * 32}
    issuer = Identity(Settings(identity=secret))
    response = web.Response()
    issuer.issue_cookie(request("192.0.2.1"), response)
    value = response.cookies["ce_client"].value
    with_cookie = request("192.0.2.1", Cookie=f"ce_client={value}")
    browser = issuer.browser_id(with_cookie)
    assert browser is not None and issuer.client_key(with_cookie) == f"browser:{browser}"
    assert Identity(Settings(identity=secret)).browser_id(with_cookie) == browser  # same secret
    assert Identity(Settings()).browser_id(with_cookie) is None  # another process's secret
    other_last = "1" if value.endswith("0") else "0"  # a change, whatever the signature's end
    tampered = request("192.0.2.1", Cookie=f"ce_client={value[:-1]}{other_last}")
    assert issuer.client_key(tampered) == "addr:192.0.2.1"


def test_only_a_configured_valid_token_is_an_identity() -> None:
    bearer = {"Authorization": "Bearer t0ken"}
    assert Identity(Settings()).client_key(request("192.0.2.1", **bearer)) == "addr:192.0.2.1"
    with_tokens = Identity(Settings(tokens=["t0ken"]))
    assert with_tokens.client_key(request("192.0.2.1", **bearer)).startswith("token:")
    wrong = {"Authorization": "Bearer other"}
    assert with_tokens.client_key(request("192.0.2.1", **wrong)) == "addr:192.0.2.1"


def test_a_trusted_proxy_that_is_no_network_is_refused() -> None:
    with pytest.raises(ValueError, match=r"CE_TRUSTED_PROXIES entry 'proxy\.lan'"):
        Settings(trusted_proxies=["proxy.lan"])
