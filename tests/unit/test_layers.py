"""The layers point down only: the session layer loads no container engine."""

from __future__ import annotations

import subprocess
import sys


def test_the_session_layer_imports_no_container_engine() -> None:
    check = (
        "import sys, ce_ws.runs.runner, ce_ws.runs.run, ce_ws.sandbox.base;"
        " assert 'aiodocker' not in sys.modules, 'the session layer loaded aiodocker'"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
