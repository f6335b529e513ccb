"""The fault pass: tests that stop a Docker engine, so it runs after every other.

They never touch the engine the rest of the machine uses: `scratch_engine`
starts a second, real dockerd (scripts/scratch-engine.sh) with its own socket
and data root, and the servers under test drive that one.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SpecRecorder

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "scratch-engine.sh"


#: The scratch engine's TLS port on loopback (client certificates required).
TLS_PORT = 23761
TLS_DIR = Path("/run/ce-scratch-engine-tls")


@dataclass(frozen=True)
class ScratchEngine:
    socket: str

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tls_url(self) -> str:
        return f"tcp://127.0.0.1:{TLS_PORT}"

    def tls(self) -> dict[str, str]:
        """The client's side of its TLS port, as `CE_SANDBOX__ENGINES` takes it."""
        return {name: str(TLS_DIR / f"{name}.pem") for name in ("ca", "cert", "key")}

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def _script(self, action: str) -> None:
        environment = {**os.environ, "CE_SCRATCH_ENGINE_TLS_PORT": str(TLS_PORT)}
        subprocess.run(["bash", str(SCRIPT), action], check=True, stdout=subprocess.DEVNULL,
                       env=environment)  # fmt: skip

    def containers(self, owner: str) -> dict[str, str]:
        """Name → state ("running", "exited", "created"...) of this owner's containers."""
        listing = subprocess.run(
            ["docker", "-H", self.url, "ps", "-a", "--filter", f"label=ce.owner={owner}",
             "--format", "{{json .}}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows = [json.loads(line) for line in listing.stdout.splitlines()]
        return {row["Names"]: row["State"] for row in rows}


def staging_folders(owner: str) -> list[str]:
    return glob.glob(f"/tmp/ce-{owner}-*/")


@pytest.fixture(scope="session")
def scratch_engine() -> Iterator[ScratchEngine]:
    engine = ScratchEngine("/run/ce-scratch-engine.sock")
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(autouse=True)
def spec_checked(engine_guard: SpecRecorder) -> SpecRecorder:
    """Every container the servers make, on any engine, is checked against the spec."""
    return engine_guard
