"""The order-to-chaos phase diagram as colored text (for the app and the CLI).

Rows are sigma_b^2 (largest at the top), columns sigma_w^2. Each cell is shaded by
how far chi_1 is from 1 (log scale) and colored by its phase; the critical line
chi_1 = 1 is drawn through the rows, and the current config is a marker.
"""

from __future__ import annotations

import math

from rich.color import Color
from rich.style import Style
from rich.text import Text

from initscope.report import fmt
from initscope.sim.meanfield import PhaseGrid

SHADES = "░▒▓█"
DEFAULT_COLORS = {"ordered": "#4FC3F7", "chaotic": "#E57373", "line": "#FFD54F",
                  "marker": "#FFFFFF", "axis": "#7A8793"}


def _column_of(grid: PhaseGrid, sw2: float) -> int:
    xs = grid.sigma_w2
    if not math.isfinite(sw2):
        return len(xs) - 1
    return min(range(len(xs)), key=lambda i: abs(xs[i] - sw2))


def _row_of(grid: PhaseGrid, sb2: float) -> int:
    ys = grid.sigma_b2
    return min(range(len(ys)), key=lambda i: abs(ys[i] - sb2))


NARROW_COLUMNS = 56


def phase_text(grid: PhaseGrid, marker: tuple[float, float] | None = None,
               colors: dict[str, str] | None = None) -> Text:
    """The heatmap with axes, the critical line, the marker and a legend."""
    c = {**DEFAULT_COLORS, **(colors or {})}
    ordered, chaotic = Color.parse(c["ordered"]), Color.parse(c["chaotic"])
    axis = Style(color=c["axis"])
    rows = len(grid.sigma_b2)
    label_w = 6
    mark_cell, mark_char = None, "●"
    if marker is not None:
        mark_cell = (_row_of(grid, marker[1]), _column_of(grid, marker[0]))
        if marker[0] < grid.sigma_w2[0]:
            mark_char = "◀"  # off the diagram, to the left
        elif marker[0] > grid.sigma_w2[-1]:
            mark_char = "▶"
        elif marker[1] > grid.sigma_b2[-1]:
            mark_char = "▲"
    text = Text(no_wrap=True)
    narrow = len(grid.sigma_w2) < NARROW_COLUMNS  # the header and legend take two lines
    text.append(f"{'σb²':>{label_w}} ", style=axis)
    text.append("ordered: gradients vanish", style=Style(color=c["ordered"]))
    # on one line when the diagram is as wide as the two phrases, else on two
    text.append("  |  " if not narrow else "\n" + " " * (label_w + 1), style=axis)
    text.append("chaotic: gradients explode\n", style=Style(color=c["chaotic"]))
    for r in range(rows - 1, -1, -1):
        sb2 = grid.sigma_b2[r]
        label = fmt(sb2, 2) if r in (0, rows - 1, rows // 2) else ""
        text.append(f"{label:>{label_w}} ", style=axis)
        line_col = _column_of(grid, grid.critical[r]["sigma_w2"]) \
            if math.isfinite(grid.critical[r]["sigma_w2"]) and \
            grid.sigma_w2[0] <= grid.critical[r]["sigma_w2"] <= grid.sigma_w2[-1] else None
        for k, chi in enumerate(grid.chi_1[r]):
            if mark_cell == (r, k):
                text.append(mark_char, style=Style(color=c["marker"], bold=True))
                continue
            if k == line_col:
                text.append("┃", style=Style(color=c["line"], bold=True))
                continue
            depth = min(abs(math.log(chi)) / 1.5, 1.0) if chi > 0 and math.isfinite(chi) else 1.0
            shade = SHADES[min(len(SHADES) - 1, int(depth * len(SHADES)))]
            text.append(shade, style=Style(color=ordered if chi < 1 else chaotic))
        text.append("\n")
    xs = grid.sigma_w2
    width = len(xs)
    ticks = [0, width // 2, width - 1]
    axis_line = [" "] * (width + 12)
    for t in ticks:
        label = fmt(xs[t], 2)
        start = min(max(t - len(label) // 2, 0), width + 12 - len(label))
        axis_line[start:start + len(label)] = label
    text.append(" " * (label_w + 1) + "".join(axis_line).rstrip() + "  σw²\n", style=axis)
    legend = Text(" " * (label_w + 1), style=axis)
    legend.append("┃", style=Style(color=c["line"], bold=True))
    if grid.critical_note.startswith("critical line"):
        legend.append(" critical line χ1 = 1   ", style=axis)
    elif narrow:  # (leaky) ReLU: chi_1 = 1 on the line, but q* has no fixed point there
        legend.append(" χ1 = 1; q* unbounded (σb²>0) and right", style=axis)
    else:
        legend.append(" χ1 = 1; q* unbounded on (σb² > 0) and right of it   ", style=axis)
    if narrow:  # the marker's key on a line of its own: the two do not fit in one
        legend.append(f"\n{'':{label_w + 1}}")
    legend.append("●", style=Style(color=c["marker"], bold=True))
    legend.append(" this config", style=axis)
    if marker is not None:
        where = f"(σw² {fmt(marker[0], 3)}, σb² {fmt(marker[1], 3)})"
        legend.append(f" {where}" if not narrow else f"\n{'':{label_w + 3}}{where}", style=axis)
    text.append_text(legend)
    return text
