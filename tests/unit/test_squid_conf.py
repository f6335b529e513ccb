"""The generated squid.conf and the access-log parser (pure logic; the real Squid is in
tests/integration/network/)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ce_ws.config import NetworkSettings
from ce_ws.sandbox.squid import ProxyDecision, parse_access_line, squid_conf


def test_each_destination_is_one_allow_rule_and_everything_else_is_denied() -> None:
    conf = squid_conf(["pypi.org:443", "*.example.org:80"], max_connections_per_client=5)
    lines = conf.splitlines()
    allows = [line for line in lines if line.startswith("http_access allow")]
    assert allows == [
        "http_access allow ce_host_0 ce_port_0 !to_localhost !ce_link_local",
        "http_access allow ce_host_1 ce_port_1 !to_localhost !ce_link_local",
    ]
    assert "acl ce_host_0 dstdomain -n pypi.org" in lines
    assert "acl ce_host_1 dstdom_regex -n -i ^([^.]+\\.)+example\\.org$" in lines
    assert lines[-1] == "http_access deny all"
    assert lines.index("http_access deny manager") < lines.index(allows[0])
    assert "cache deny all" in lines and "acl ce_flood maxconn 5" in lines


def test_access_lines_become_decisions() -> None:
    assert parse_access_line("1796171688 10.213.0.3 CONNECT allowed.test 443 200 TCP_TUNNEL") == (
        ProxyDecision("10.213.0.3", "CONNECT", "allowed.test:443", allowed=True)
    )
    refused = parse_access_line("1796171688 10.213.0.3 GET other.test 80 403 TCP_DENIED")
    assert refused is not None and refused.verdict == "refused"
    assert parse_access_line("2026/12/02 00:34:46| storeLateRelease: released 0 objects") is None


@pytest.mark.parametrize(
    "destination", ["10.0.0.1:80", "pypi.org", "pypi.org:0", "pypi.org:70000", "a b:80", "*.:80"]
)
def test_a_destination_must_be_a_name_and_a_port(destination: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        NetworkSettings(policies={"p": [destination]})  # type: ignore[dict-item]


def test_a_policy_with_tokens_is_only_for_their_holders() -> None:
    settings = NetworkSettings.model_validate(
        {
            "policies": {
                "open": ["a.test:80"],
                "vip": {"destinations": ["a.test:80"], "tokens": ["t"]},
            }
        }
    )
    assert settings.policies["open"].allows(())
    assert not settings.policies["vip"].allows((None, "wrong"))
    assert settings.policies["vip"].allows(("t",))
