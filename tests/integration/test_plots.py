"""The lesson libraries in the runtime image, and plots drawn inline in the terminal.

`plt.show()` goes through the image's matplotlib backend (`ce_inline_plot`),
which writes each figure as one iTerm2 inline image, `ESC ] 1337 ; File=
inline=1;size=N : <base64 PNG> BEL`: what xterm.js's image addon draws.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.rest import execute
from tests.integration.terminal import TermClient

INLINE_IMAGE = re.compile(rb"\x1b\]1337;File=([^:\x07]*):([A-Za-z0-9+/=]*)\x07")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT = """
import matplotlib.pyplot as plt
import numpy as np
x = np.linspace(0, 2 * np.pi, 200)
plt.plot(x, np.sin(x))
plt.title("sine")
plt.show()
plt.show()  # nothing new was plotted: nothing more is drawn
print("after the plot")
"""


def inline_images(output: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Every inline image in `output`: its arguments and its decoded payload."""
    images = []
    for arguments, payload in INLINE_IMAGE.findall(output):
        fields = dict(field.split("=", 1) for field in arguments.decode().split(";"))
        images.append((fields, base64.b64decode(payload, validate=True)))
    return images


async def test_plt_show_draws_exactly_one_png_inline(term: TermClient) -> None:
    ended = await term.run_to_exit("python", PLOT)
    assert (ended["status"], ended["exit_code"]) == ("exited", 0), term.text()[-500:]
    assert term.output.count(b"\x1b]1337;") == 1
    [(fields, png)] = inline_images(bytes(term.output))
    assert fields == {"inline": "1", "size": str(len(png))}
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (640, 480)  # matplotlib's default figure at 100 dpi
    assert b"after the plot" in term.output


async def test_a_figure_over_the_size_setting_is_drawn_smaller_or_not_at_all(
    make_client: MakeClient,
) -> None:
    client = await make_client(sandbox={"plot_max_bytes": 8 * 1024})
    async with TermClient.connect(client) as term:
        code = PLOT.replace("plt.title", "plt.imshow(np.random.rand(300, 300)); plt.title")
        ended = await term.run_to_exit("python", code)
        assert ended["status"] == "exited", term.text()[-500:]
    images = inline_images(bytes(term.output))
    assert all(len(png) <= 8 * 1024 for _, png in images)
    assert images or b"[figure not shown: larger than 8192 bytes" in term.output


async def test_numpy_and_requests_import(client: TestClient[Any, Any]) -> None:
    result = await execute(
        client,
        language="python",
        code="import numpy, requests, matplotlib\n"
        "print(numpy.arange(4).sum(), requests.__version__ > '2', matplotlib.get_backend())",
    )
    assert result["status"] == "exited" and result["exit_code"] == 0, result
    assert result["stdout"] == "6 True module://ce_inline_plot\n"
