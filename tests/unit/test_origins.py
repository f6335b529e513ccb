"""The origin policy: the server's own names come from its settings, never the request."""

from __future__ import annotations

import pytest

from ce_ws.origins import Origin, OriginPolicy, local_port, parse_authority, parse_origin

PORT = 8080


def policy(
    bind_host: str = "127.0.0.1",
    public_url: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    allowed_origins: tuple[str, ...] = (),
) -> OriginPolicy:
    return OriginPolicy.of(
        bind_host=bind_host,
        public_url=public_url,
        allowed_hosts=list(allowed_hosts),
        allowed_origins=list(allowed_origins),
    )


@pytest.mark.parametrize(
    ("authority", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:8080", ("localhost", 8080)),
        ("[::1]:80", ("::1", 80)),
        ("127.0.0.1:", ("127.0.0.1", None)),
        ("", None),
        ("[zz", None),
        ("evil@127.0.0.1", None),
        ("127.0.0.1:notaport", None),
        ("127.0.0.1:99999", None),
        ("127.0.0.1/x", None),
        ("127.0.0.1?x", None),
        ("127.0.0.1\t", None),
    ],
)
def test_authorities_parse_strictly(authority: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_authority(authority) == parsed


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080", Origin("http", "127.0.0.1", 8080)),
        ("HTTPS://Ce.Example.org", Origin("https", "ce.example.org", 443)),
        ("http://localhost/", Origin("http", "localhost", 80)),
        ("chrome-extension://abc", Origin("chrome-extension", "abc", None)),
        ("http://localhost/page", None),
        ("http://[zz", None),
        ("null", None),
        ("file://", None),
        ("http://localhost?x", None),
    ],
)
def test_origins_parse_to_scheme_host_and_port(url: str, origin: Origin | None) -> None:
    assert parse_origin(url) == origin


def test_a_public_url_may_carry_a_path() -> None:
    assert parse_origin("https://ce.example.org/play", path_allowed=True) == Origin(
        "https", "ce.example.org", 443
    )


def test_the_listening_port_is_read_from_the_socket_address() -> None:
    assert local_port(("127.0.0.1", 4242)) == 4242
    assert local_port(("::1", 4242, 0, 0)) == 4242
    assert local_port("/run/ce.sock") is None
    assert local_port(None) is None


def test_by_default_only_loopback_names_are_served() -> None:
    rules = policy()
    for host in ("localhost", "localhost:1234", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST", None):
        assert rules.host_allowed(host), host
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[zz", "",
                 "0.0.0.0:8080", "localhost.evil.example"):  # fmt: skip
        assert not rules.host_allowed(host), host


def test_a_specific_bind_address_is_served_and_a_wildcard_names_nothing() -> None:
    assert policy(bind_host="192.0.2.7").host_allowed("192.0.2.7:8080")
    assert policy(bind_host="::").host_allowed("[::1]:8080")
    for wildcard in ("0.0.0.0", "::", ""):
        rules = policy(bind_host=wildcard)
        assert not rules.host_allowed("192.0.2.7:8080") and not rules.host_allowed("0.0.0.0")


def test_configured_names_are_served() -> None:
    rules = policy(
        bind_host="0.0.0.0",
        public_url="https://ce.example.org/",
        allowed_hosts=("Box.LAN", "[fd00::1]"),
    )
    for host in ("ce.example.org", "ce.example.org:443", "box.lan:8080", "[fd00::1]:8080"):
        assert rules.host_allowed(host), host
    assert not rules.host_allowed("example.org")


def test_the_own_origin_is_plain_http_a_served_name_and_the_listening_port() -> None:
    rules = policy(allowed_hosts=("box.lan",))
    for origin in (f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}", f"http://[::1]:{PORT}",
                   f"http://box.lan:{PORT}", f"HTTP://LocalHost:{PORT}", None):  # fmt: skip
        assert rules.origin_allowed(origin, PORT), origin
    for origin in (f"https://127.0.0.1:{PORT}", f"chrome-extension://127.0.0.1:{PORT}",
                   f"ws://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT + 1}", "http://127.0.0.1",
                   f"http://evil.example:{PORT}", "null", "http://[zz", ""):  # fmt: skip
        assert not rules.origin_allowed(origin, PORT), origin


def test_without_a_known_port_only_configured_origins_pass() -> None:
    rules = policy(allowed_origins=("https://ok.example",))
    assert not rules.origin_allowed(f"http://127.0.0.1:{PORT}", None)
    assert rules.origin_allowed("https://ok.example", None)


def test_allowed_origins_and_the_public_url_pass_whatever_the_port() -> None:
    rules = policy(
        public_url="https://ce.example.org", allowed_origins=("https://ok.example", "null")
    )
    for origin in (
        "https://ok.example",
        "https://ok.example:443",
        "https://ce.example.org",
        "null",
    ):
        assert rules.origin_allowed(origin, PORT), origin
    for origin in ("http://ok.example", "https://ok.example:8443", "http://ce.example.org",
                   "https://ok.example.evil", "https://ce.example.org.evil"):  # fmt: skip
        assert not rules.origin_allowed(origin, PORT), origin
