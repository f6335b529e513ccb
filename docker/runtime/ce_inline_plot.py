"""A matplotlib backend that shows each figure inline in the run's terminal.

Set by the image as `MPLBACKEND=module://ce_inline_plot`. `plt.show()` renders
every open figure to PNG with Agg and writes it to stdout as one inline image
of the iTerm2 protocol, `ESC ] 1337 ; File=inline=1;size=N : <base64> BEL`,
which the playground's terminal (xterm.js with `@xterm/addon-image`) draws.
The figures are closed afterwards, as in a notebook, so a second `plt.show()`
draws only what was plotted since.

A figure whose PNG is above `INLINE_PLOT_MAX_BYTES` (set by the server) is drawn
again at a lower resolution; if it still does not fit, a line of text says so
instead. The server's output cap counts these bytes like any others.
"""

from __future__ import annotations

import base64
import io
import os
import sys

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase, _Backend
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Without the server's setting (the image run by hand), at most this many PNG bytes.
DEFAULT_MAX_BYTES = 256 * 1024
#: Past this many pixels a figure is drawn at a lower resolution first.
MAX_PIXELS = 4_000_000
#: Each retry draws at this share of the previous resolution, at most this often.
DPI_STEP = 0.5
RETRIES = 3


def max_bytes() -> int:
    """The largest PNG to show: the server's `INLINE_PLOT_MAX_BYTES`, else the default."""
    try:
        return max(1, int(os.environ.get("INLINE_PLOT_MAX_BYTES", DEFAULT_MAX_BYTES)))
    except ValueError:
        return DEFAULT_MAX_BYTES


def render_png(figure: Figure, limit: int) -> bytes | None:
    """The figure as PNG within `limit` bytes, lowering the resolution if needed."""
    width_in, height_in = figure.get_size_inches()
    dpi = float(figure.dpi)
    if width_in * height_in * dpi * dpi > MAX_PIXELS:
        dpi = (MAX_PIXELS / (width_in * height_in)) ** 0.5
    for _ in range(RETRIES + 1):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi)
        png = buffer.getvalue()
        if len(png) <= limit:
            return png
        dpi *= DPI_STEP
    return None


def inline_image(png: bytes) -> bytes:
    """One inline image of the iTerm2 protocol, on a line of its own."""
    payload = base64.b64encode(png)
    return b"\x1b]1337;File=inline=1;size=%d:%s\x07\n" % (len(png), payload)


def write_figure(figure: Figure) -> None:
    """Draw one figure into the terminal (or say why not)."""
    limit = max_bytes()
    png = render_png(figure, limit)
    stream = sys.stdout
    stream.flush()
    if png is None:
        stream.write(f"[figure not shown: larger than {limit} bytes even at a low resolution]\n")
    else:
        stream.buffer.write(inline_image(png))
    stream.flush()


class FigureManagerInline(FigureManagerBase):
    """A figure's manager: showing it means writing it to the terminal."""

    def show(self) -> None:
        write_figure(self.canvas.figure)


class FigureCanvasInline(FigureCanvasAgg):
    """Agg's canvas, whose figures get the inline manager (pyplot asks the canvas)."""

    manager_class = FigureManagerInline


@_Backend.export
class _BackendInline(_Backend):
    FigureCanvas = FigureCanvasInline
    FigureManager = FigureManagerInline

    @classmethod
    def show(cls, *, block: bool | None = None) -> None:
        """`plt.show()`: every open figure, once; then they are closed."""
        for manager in Gcf.get_all_fig_managers():
            manager.show()
        Gcf.destroy_all()
