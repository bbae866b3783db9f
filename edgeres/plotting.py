"""Drawing PNGs without a display: matplotlib on its Agg back-end (servers, CI, a Jetson over SSH).

Below the stages that plot (profile, train, the build's sensitivity plot), so they share one way to get
pyplot and to write a figure. matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeres.artifacts.atomic import write_with

DPI = 120


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def literal(text: str) -> str:
    """`text` as matplotlib should draw it, as written: a pair of `$` in a file or layer name would start math."""
    return text.replace("$", r"\$")


def data_uri(payload: bytes, mime: str) -> str:
    """Bytes as a data URI, what a self-contained HTML page inlines its images as."""
    import base64

    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")


def png_data_uri(fig: Any, dpi: int = DPI) -> str:
    """`fig` as a PNG data URI, and close it."""
    import io

    plt = pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return data_uri(buffer.getvalue(), "image/png")


def save_png(fig: Any, path: Path, dpi: int = DPI) -> Path:
    """Write `fig` to `path` as a PNG, atomically, and close it."""
    plt = pyplot()
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    plt.close(fig)
    return path
