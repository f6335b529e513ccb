"""Network by allowlist: one Squid per policy, one internal network per run.

A run under a policy gets a Docker network of its own: internal, its bridge
without an IPv4 address (`inhibit_ipv4`, so neither the host nor a gateway
answers on it), on a small subnet the server picks. Its only other member is
the policy's proxy, connected at a fixed address; the run reaches it through
the usual proxy variables and nothing else on that network exists. The proxy
alone also sits on the egress network, where the destinations are.

Everything made here carries the owner label and a `ce.run` id in
`engine.live_boxes`, so the reaper removes it after a crash and spares it
while this server uses it. The proxies' access logs are read here and each
decision is handed to `on_decision` with the run it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any

import aiodocker
from aiodocker.containers import DockerContainer
from aiodocker.stream import Stream

from ce_ws.config import MIB, NetworkPolicy, NetworkSettings
from ce_ws.errors import SandboxError
from ce_ws.sandbox.engine import OWNER_LABEL, RUN_LABEL, Engine, engine_errors
from ce_ws.sandbox.network import NetworkAttachment
from ce_ws.sandbox.squid import PROXY_PORT, ProxyDecision, parse_access_line, squid_conf

log = logging.getLogger(__name__)

#: What a labelled container or network is for (the reaper removes them all alike).
ROLE_LABEL = "ce.role"
POLICY_LABEL = "ce.policy"
#: Debian's `proxy` user: Squid never runs as root.
PROXY_USER = "13:13"
_PROXY_TMP = "rw,nosuid,nodev,noexec,size=16m,nr_inodes=1024,mode=1777"
_SUBNET_ATTEMPTS = 16
_READY_POLL_S = 0.1
#: Called with the policy, the run id (None: no run owns that address now) and the decision.
DecisionSink = Callable[[str, str | None, ProxyDecision], None]


class _Proxy:
    """One policy's Squid container and the reader of its access log."""

    def __init__(
        self, item_id: str, policy: str, container: DockerContainer, stream: Stream
    ) -> None:
        self.item_id = item_id
        self.policy = policy
        self.container = container
        self.stream = stream
        self.reader: asyncio.Task[None] | None = None


class Egress:
    """The proxies of every configured policy and the networks of networked runs."""

    def __init__(
        self, engine: Engine, settings: NetworkSettings, *, on_decision: DecisionSink
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._on_decision = on_decision
        self._proxies: dict[str, _Proxy] = {}
        self._egress_network: str | None = settings.egress_network
        self._own_egress_id: str | None = None
        #: Run address -> run id, per policy (each run's subnet is its own).
        self._runs_by_ip: dict[str, str] = {}
        self._pool = ipaddress.IPv4Network(settings.subnet_pool)

    @property
    def policies(self) -> dict[str, NetworkPolicy]:
        return self._settings.policies

    def _labels(self, item_id: str, role: str, **more: str) -> dict[str, str]:
        self._engine.live_boxes.add(item_id)
        return {RUN_LABEL: item_id, OWNER_LABEL: self._engine.server_id, ROLE_LABEL: role, **more}

    async def start(self) -> None:
        """Start a proxy per policy; called once at startup (no-op without policies)."""
        if not self.policies:
            return
        if self._egress_network is None:
            self._egress_network = await self._create_egress_network()
        for name, policy in self.policies.items():
            await self._start_proxy(name, policy)

    async def _create_egress_network(self) -> str:
        item_id = f"egress-{uuid.uuid4().hex}"
        name = f"ce-{item_id}"
        with engine_errors("create the egress network"):
            async with self._engine.control_timeout():
                await self._engine.docker.networks.create(
                    {
                        "Name": name,
                        "CheckDuplicate": True,
                        "Labels": self._labels(item_id, "egress"),
                    }
                )
        self._own_egress_id = item_id
        return name

    def _proxy_config(
        self, name: str, policy: NetworkPolicy, labels: dict[str, str]
    ) -> dict[str, Any]:
        settings = self._settings
        memory = settings.proxy_memory_mb * MIB
        conf = squid_conf(
            policy.destinations, max_connections_per_client=settings.max_connections_per_run
        )
        return {
            "Image": settings.proxy_image,
            "User": PROXY_USER,
            "Env": [f"CE_SQUID_CONF={conf}"],
            "Labels": labels,
            "AttachStdout": True,
            "AttachStderr": True,
            "HostConfig": {
                "ReadonlyRootfs": True,
                "Tmpfs": {"/tmp": _PROXY_TMP},
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges=true"],
                "NetworkMode": self._egress_network,
                "Memory": memory,
                "MemorySwap": memory,
                "NanoCpus": int(settings.proxy_cpus * 1e9),
                "PidsLimit": settings.proxy_pids,
                "Init": True,
                "IpcMode": "private",
                "LogConfig": {"Type": "none", "Config": {}},
                "Runtime": "runc",
            },
        }

    async def _start_proxy(self, name: str, policy: NetworkPolicy) -> None:
        """Create, attach, start; registered before it listens, so `aclose` removes it anyway."""
        item_id = f"proxy-{uuid.uuid4().hex}"
        labels = self._labels(item_id, "proxy", **{POLICY_LABEL: name})
        config = self._proxy_config(name, policy, labels)
        container = await self._engine.create_container(config, name=f"ce-{item_id}")
        stream = container.attach(stdout=True, stderr=False, stdin=False)
        try:
            with engine_errors("start the egress proxy"):
                async with self._engine.control_timeout():
                    await stream.__aenter__()
                    await container.start()
        except SandboxError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.close(), timeout=1)
            await self._engine.remove_container(container)
            raise
        proxy = _Proxy(item_id, name, container, stream)
        self._proxies[name] = proxy
        proxy.reader = asyncio.create_task(self._read_access_log(proxy))
        await self._wait_listening(container)

    async def _wait_listening(self, container: DockerContainer) -> None:
        """Until Squid listens on its port (its tmpfs /proc/net/tcp shows it)."""
        port_hex = f":{PROXY_PORT:04X} "
        try:
            async with asyncio.timeout(self._settings.proxy_start_s):
                while True:
                    execution = await container.exec(
                        ["cat", "/proc/net/tcp"], user=PROXY_USER, stdout=True, stderr=False
                    )
                    output = b""
                    async with execution.start(detach=False) as stream:
                        while (message := await stream.read_out()) is not None:
                            output += message.data
                    if port_hex in output.decode(errors="replace") and " 0A " in output.decode():
                        return
                    await asyncio.sleep(_READY_POLL_S)
        except TimeoutError:
            raise SandboxError(
                f"the egress proxy did not listen within {self._settings.proxy_start_s:g} s;"
                " check the proxy image (`python -m ce_ws image`)"
            ) from None
        except aiodocker.DockerError as exc:
            raise SandboxError(f"the egress proxy failed to start: {exc.message}") from exc

    async def _read_access_log(self, proxy: _Proxy) -> None:
        pending = b""
        while (message := await proxy.stream.read_out()) is not None:
            pending += message.data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                decision = parse_access_line(line.decode(errors="replace"))
                if decision is not None:
                    run_id = self._runs_by_ip.get(decision.client_ip)
                    self._on_decision(proxy.policy, run_id, decision)

    async def attach(self, box_id: str, policy: str) -> NetworkAttachment:
        """Make the run's own network with the policy's proxy on it; before the container."""
        proxy = self._proxies.get(policy)
        if proxy is None:
            raise SandboxError(f"no egress proxy runs for policy {policy!r}")
        network_name = f"ce-{box_id}"
        subnet = await self._create_run_network(box_id, network_name, policy)
        hosts = list(subnet.hosts())
        proxy_ip, run_ip = str(hosts[1]), str(hosts[2])
        with engine_errors("connect the proxy to the run's network"):
            async with self._engine.control_timeout():
                network = aiodocker.networks.DockerNetwork(  # type: ignore[no-untyped-call]
                    self._engine.docker, network_name
                )
                await network.connect(
                    {
                        "Container": proxy.container.id,
                        "EndpointConfig": {"IPAMConfig": {"IPv4Address": proxy_ip}},
                    }
                )
        self._runs_by_ip[run_ip] = box_id
        return NetworkAttachment(network=network_name, run_ip=run_ip, proxy_ip=proxy_ip)

    async def _create_run_network(
        self, box_id: str, name: str, policy: str
    ) -> ipaddress.IPv4Network:
        subnets = list(self._pool.subnets(new_prefix=self._settings.subnet_prefix))
        labels = self._labels(box_id, "run-network", **{POLICY_LABEL: policy})
        for _ in range(_SUBNET_ATTEMPTS):
            subnet = random.choice(subnets)
            gateway = str(next(subnet.hosts()))
            try:
                async with self._engine.control_timeout():
                    await self._engine.docker.networks.create(
                        {
                            "Name": name,
                            "CheckDuplicate": True,
                            "Internal": True,
                            "EnableIPv6": False,
                            "Labels": labels,
                            "IPAM": {"Config": [{"Subnet": str(subnet), "Gateway": gateway}]},
                            # The bridge gets no address: the host is not on this network.
                            "Options": {"com.docker.network.bridge.inhibit_ipv4": "true"},
                        }
                    )
                return subnet
            except aiodocker.DockerError as exc:
                if "overlap" not in exc.message.lower():
                    raise SandboxError(
                        f"container engine refused to create the run's network: {exc.message}"
                    ) from exc
            except TimeoutError as exc:
                raise SandboxError("container engine did not create a network in time") from exc
        raise SandboxError("no free subnet for the run's network; raise CE_NETWORK__SUBNET_POOL")

    async def detach(self, box_id: str) -> None:
        """Remove the run's network (after its container); raises `SandboxError`."""
        self._runs_by_ip = {ip: run for ip, run in self._runs_by_ip.items() if run != box_id}
        await self._engine.remove_network(f"ce-{box_id}")
        self._engine.live_boxes.discard(box_id)

    async def aclose(self) -> None:
        """Stop and remove the proxies and the egress network; called once at shutdown."""
        for proxy in self._proxies.values():
            if proxy.reader is not None:
                proxy.reader.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proxy.stream.close(), timeout=1)
            with contextlib.suppress(SandboxError):
                await self._engine.remove_container(proxy.container)
            self._engine.live_boxes.discard(proxy.item_id)
        if proxy_readers := [p.reader for p in self._proxies.values() if p.reader is not None]:
            await asyncio.gather(*proxy_readers, return_exceptions=True)
        self._proxies.clear()
        if self._own_egress_id is not None and self._egress_network is not None:
            with contextlib.suppress(SandboxError):
                await self._engine.remove_network(self._egress_network)
            self._engine.live_boxes.discard(self._own_egress_id)
