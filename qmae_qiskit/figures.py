"""Figure helpers shared by every stage that draws: a headless pyplot and an atomic PNG write."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from qmae_qiskit.io import atomic_write_bytes


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (figures are written to files, never shown)."""
    import matplotlib  # lazy: matplotlib adds ~1 s; only drawing needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as above

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """PNG bytes of ``fig``, written atomically; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())
