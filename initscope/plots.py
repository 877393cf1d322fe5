"""Histogram text, drawn with plotext: the only module that imports it (the app and the
CLI both draw with it).

Each plot has its own plotext figure object (the module-level figure is shared
and not thread-safe), built off the UI thread and cached by everything it depends
on, so an unchanged plot is never drawn twice.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from plotext._figure import _figure_class
from rich.text import Text

from initscope.report import fmt

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MIN_WIDTH, MIN_HEIGHT = 14, 4


def _tick_labels(edges: tuple[float, ...], width: int) -> str:
    """The x-axis label line, laid out here: where labels would touch, plotext drops
    and shifts them in an order that changes from process to process. Both ends and
    the middle where they fit, else the ends, else the middle."""
    lo, mid, hi = fmt(edges[0], 3), fmt((edges[0] + edges[-1]) / 2, 3), fmt(edges[-1], 3)
    line = [" "] * width
    start = width // 2 - len(mid) // 2
    if len(lo) < start and start + len(mid) < width - len(hi):
        placed = [(0, lo), (start, mid), (width - len(hi), hi)]
    elif len(lo) + len(hi) + 2 <= width:
        placed = [(0, lo), (width - len(hi), hi)]
    else:
        placed = [(max(0, start), mid)]
    for at, label in placed:
        line[at:at + len(label)] = label
    return "".join(line[:width]).rstrip()


@lru_cache(maxsize=128)  # a few pages of plots in a few views
def histogram_text(counts: tuple[int, ...], edges: tuple[float, ...], width: int, height: int,
                   bar: str, axis: str, expected: tuple[float, ...] | None = None,
                   line: str = "") -> Text:
    """A bar chart of `counts` over `edges` in `width` x `height` cells; with
    `expected`, the counts a density expects in the same bins as a line of *."""
    if width < MIN_WIDTH or height < MIN_HEIGHT or not edges:
        return Text("no data" if not edges else "", style=axis)
    bins = len(counts)
    fig = _figure_class()
    fig.plot_size(width, height)
    fig.theme("clear")
    fig.bar(list(range(bins)), list(counts), width=1.0, marker="sd")
    fig.xlim(-0.5, bins - 0.5)
    top = max(max(counts), max(expected) if expected else 0)
    if expected is not None:
        fig.plot(list(range(bins)), list(expected), marker="*")
    if expected is not None or top == 0:
        fig.ylim(0, top if top > 0 else 1)
    fig.xticks([0, (bins - 1) / 2, bins - 1], ["", "", ""])
    fig.yticks([])
    lines = _ANSI.sub("", fig.build()).rstrip("\n").split("\n")
    plain = "\n".join(lines[:-1] + [_tick_labels(edges, width)])
    text = Text(plain, style=axis, no_wrap=True, overflow="crop")
    text.highlight_regex(r"█+", style=bar)
    if expected is not None:
        text.highlight_regex(r"\*+", style=line)
    return text


@lru_cache(maxsize=32)
def log_lines_text(series: tuple[tuple[str, tuple[float, ...]], ...], width: int, height: int,
                   colors: tuple[str, ...], axis: str,
                   xs: tuple[float, ...] | None = None) -> Text:
    """Lines of positive values against rows 1, 2, ... on a log10 y-axis, one marker
    character per series (the series' name's first letter, not 1, e or a digit:
    readable without colour). Values at or below 0 are left out of their line. With
    `xs` (positive) the x-axis is log10 too, ticked at each x: log-log lines."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return Text("", style=axis)
    fig = _figure_class()
    fig.plot_size(width, height)
    fig.theme("clear")
    logs = []
    at = [math.log10(x) for x in xs] if xs else None
    for name, values in series:
        points = [(at[i] if at else i + 1, math.log10(v)) for i, v in enumerate(values)
                  if v > 0]
        if points:
            fig.plot([p[0] for p in points], [p[1] for p in points], marker=name[0])
            logs += [p[1] for p in points]
    if not logs:
        return Text("no positive values to draw on a log scale", style=axis)
    low, high = math.floor(min(logs)), math.ceil(max(logs))
    if high == low:
        high += 1
    step = max(1, (high - low) // max(1, (height - 2) // 2))
    ticks = list(range(low, high + 1, step))
    fig.ylim(low, high)
    fig.yticks(ticks, [f"1e{t}" for t in ticks])
    if at:
        pad = 0.05 * (at[-1] - at[0] or 1.0)
        fig.xlim(at[0] - pad, at[-1] + pad)
        fig.xticks(at, [f"{x:g}" for x in xs])
    else:
        rows = max(len(v) for _, v in series)
        fig.xlim(0.5, rows + 0.5)
        fig.xticks([1, rows], [str(1), str(rows)])
    plain = _ANSI.sub("", fig.build()).rstrip("\n")
    text = Text(plain, style=axis, no_wrap=True, overflow="crop")
    for (name, _), color in zip(series, colors):  # tick labels hold only 1, e, -, digits
        text.highlight_regex(f"{re.escape(name[0])}+", style=color)
    return text


def sweep_text(result, step: int, width: int, height: int, colors: tuple[str, ...],
               axis: str) -> Text:
    """One step of a sweep: mean |h| against width (or depth), log-log, a line a
    layer, its marker from `report.sweep_series`."""
    from initscope.report import sweep_series

    l1 = result.mean_l1()
    series = tuple((marker, tuple(float(v) for v in l1[:, step, i]))
                   for i, (marker, _) in enumerate(sweep_series(result)))
    return log_lines_text(series, width, height, colors, axis,
                          xs=tuple(float(s) for s in result.sizes))


def sweep_plot(results: list, width: int = 72, height: int = 14) -> str:
    """Every step of a sweep as a plain-text log-log plot, the slopes beside each."""
    from initscope.report import _sweep_title, diverged_line, slope_text, sweep_series

    out = []
    for r in results:
        slopes = r.slopes()
        out += [_sweep_title(r), *diverged_line(r)]
        for t in range(slopes.shape[0]):
            legend = "  ".join(f"{m} {name} {slope_text(slopes[t, i])}"
                               for i, (m, name) in enumerate(sweep_series(r)))
            out.append(f"step {t}: mean |h| against {'depth' if r.spec.depths else 'width'}"
                       f" (slopes: {legend})")
            out.append(sweep_text(r, t, width, height, ("",) * len(slopes[t]), "").plain)
    return "\n".join(out) + "\n"

