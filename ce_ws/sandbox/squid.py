"""Squid's configuration for one network policy, and its access log read back.

Pure text in, text out: `squid_conf` is what the proxy container runs with,
`parse_access_line` turns one line of its access log into a `ProxyDecision`.
The rules, in Squid's first-match order: a run over its connection cap and
the cache manager are refused; then each allowlisted `host:port` is allowed,
for CONNECT and plain HTTP alike, unless its name resolves to the proxy's own
addresses or a link-local one (169.254.0.0/16, the cloud metadata address);
everything else is refused, without even resolving its name. Nothing is cached, so no run
ever sees a response fetched for another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROXY_PORT = 3128
#: One access-log line: time, client address, method, host, port, HTTP status, Squid's code.
_LOG_FORMAT = "%ts %>a %rm %>rd %>rP %>Hs %Ss"
_LOG_LINE = re.compile(
    r"^(?P<ts>\d+) (?P<client>[0-9.]+) (?P<method>\S+) (?P<host>\S+) (?P<port>\S+)"
    r" (?P<status>\d+) (?P<code>\S+)$"
)


@dataclass(frozen=True, slots=True)
class ProxyDecision:
    """What the proxy did with one connection of a run."""

    client_ip: str
    method: str
    destination: str
    allowed: bool

    @property
    def verdict(self) -> str:
        return "allowed" if self.allowed else "refused"


def _host_acl(host: str) -> str:
    # `-n`: never a reverse lookup, so a bare IP in a URL matches no name.
    if host.startswith("*."):
        suffix = re.escape(host[2:])
        return f"dstdom_regex -n -i ^([^.]+\\.)+{suffix}$"
    return f"dstdomain -n {host}"


def squid_conf(destinations: list[str], *, max_connections_per_client: int) -> str:
    """The whole squid.conf for one policy's proxy."""
    lines = [
        f"http_port {PROXY_PORT}",
        "pid_filename none",
        "coredump_dir /tmp",
        "netdb_filename none",
        "cache deny all",
        "cache_mem 0 MB",
        "pinger_enable off",
        "icp_port 0",
        "htcp_port 0",
        "via off",
        "forwarded_for delete",
        "httpd_suppress_version_string on",
        "shutdown_lifetime 1 seconds",
        f"logformat ce {_LOG_FORMAT}",
        "access_log stdio:/dev/stdout ce",
        "cache_log stdio:/dev/stderr",
        "cache_store_log none",
        "logfile_rotate 0",
        f"acl ce_flood maxconn {max_connections_per_client}",
        "http_access deny ce_flood",
        "http_access deny manager",
        "acl ce_link_local dst 169.254.0.0/16 fe80::/10",
    ]
    for index, entry in enumerate(destinations):
        host, _, port = entry.rpartition(":")
        lines += [
            f"acl ce_host_{index} {_host_acl(host)}",
            f"acl ce_port_{index} port {port}",
            # Name and port first: a name off the list is refused without a lookup.
            f"http_access allow ce_host_{index} ce_port_{index} !to_localhost !ce_link_local",
        ]
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


def parse_access_line(line: str) -> ProxyDecision | None:
    """One access-log line as a decision; None for anything else Squid prints."""
    match = _LOG_LINE.match(line.strip())
    if match is None:
        return None
    host, port = match["host"], match["port"]
    destination = host if port in ("-", "") else f"{host}:{port}"
    return ProxyDecision(
        client_ip=match["client"],
        method=match["method"],
        destination=destination,
        allowed=not match["code"].startswith("TCP_DENIED") and match["status"] != "403",
    )
