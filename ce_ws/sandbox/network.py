"""What a networked run's container is given: its network, its address, its proxy."""

from __future__ import annotations

from dataclasses import dataclass

from ce_ws.sandbox.squid import PROXY_PORT


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """Where one run's container joins, and how it finds its proxy."""

    network: str
    run_ip: str
    proxy_ip: str

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy_ip}:{PROXY_PORT}"
