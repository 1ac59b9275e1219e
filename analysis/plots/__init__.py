"""Plots - PNG figures of a comparison, drawn from the evidence document alone (matplotlib Agg).

Every figure has a title, axis labels and a legend; every value drawn was computed by the
analysis (curves, quantiles, bins), so a plot shows what the gate judged. Text from the data
(model ids) is shown literally: never parsed as mathtext, never longer than LABEL_CHARS.
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

LIVE, CANDIDATE, MATCHED = "#1f77b4", "#d62728", "#7f7f7f"
LABEL_CHARS = 40
DPI = 96
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def label(value: Any) -> str:
    """A data value for a plot: one line, `$` literal (no mathtext), at most LABEL_CHARS."""
    text = _CONTROL.sub(" ", str(value))
    if len(text) > LABEL_CHARS:
        text = text[: LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def figure(width: float = 6.4, height: float = 4.0, columns: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height), dpi=DPI, squeeze=False)


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (laid out so titles and labels fit), then closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    for ax in fig.axes:
        ax.minorticks_off()  # decades suffice on log axes; their minor ticks cost half the time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a glyph missing from the font is not an error
        fig.tight_layout()
        fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
