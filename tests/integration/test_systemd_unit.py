"""`deploy/systemd/code-executor.service`: systemd accepts it, and its command serves.

There is no systemd running here to start it, so the test does what the unit
says by hand: its working directory, environment and `ExecStart` (with the
checkout's path for /srv/code-executor), then the stop signal, within the
unit's stop timeout.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

from tests.helpers import free_port, wait_healthy
from tests.leftovers import TEST_SERVER_ID

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "code-executor.service"
INSTALLED_AT = "/srv/code-executor"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def unit_here() -> str:
    """The unit as it would read installed in this checkout."""
    return UNIT.read_text().replace(INSTALLED_AT, str(ROOT))


def service_settings(unit: str) -> dict[str, list[str]]:
    """Each key of the [Service] section, with all its values in order."""
    section = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
    settings: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    assert Path(SYSTEMD_ANALYZE).exists(), "run `make deploy-checks` (apt-get install systemd)"
    unit = tmp_path / UNIT.name
    unit.write_text(unit_here())
    checked = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), checked


def test_the_units_command_serves_and_stops_on_its_signal() -> None:
    service = service_settings(unit_here())
    environment = dict(value.split("=", 1) for value in service["Environment"])
    assert environment["CE_SERVER_ID"], "a stable server id, so restarts reap their own"
    port = free_port()
    environment |= {
        "CE_PORT": str(port),
        "CE_SERVER_ID": f"{TEST_SERVER_ID}-unit-{port}",
        # No box is made, so none escapes the suite's spec recorder.
        "CE_POOL__ENABLED": "false",
    }
    stop_signal = getattr(signal, service["KillSignal"][0])
    stop_within_s = float(re.sub(r"s$", "", service["TimeoutStopSec"][0]))
    server = subprocess.Popen(
        shlex.split(service["ExecStart"][0]),
        cwd=service["WorkingDirectory"][0],
        env={"PATH": os.environ["PATH"], **environment},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", exit_code=server.poll, timeout_s=30)
    finally:
        server.send_signal(stop_signal)
        _, log = server.communicate(timeout=stop_within_s)
    assert server.returncode == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
