"""The playground page's pure logic (outcome words, compiler messages, share
links, arguments, type-ahead), run by Node's own test runner on tests/js/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_S = 60


def test_page_logic_passes_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node.js (apt-get install nodejs) to test the page")
    result = subprocess.run(
        [node, "--test", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
