"""Turns a run's result into what the widgets show, off the UI thread.

Everything here is plain Python on finished numbers: table cells, sparkline series,
status text and, through plots.py, histogram text. Workers call it; the UI thread
only assigns the outcome to widgets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from rich.text import Text
from textual.content import Content

from initscope.report import TABLE, aligned, fmt, table_cells
from initscope.sim.arch import ARCHS
from initscope.sim.config import Config
from initscope.sim.draws import DrawCache
from initscope.sim.result import COMPLETE, METER_GROUPS, RunResult

DIAGRAM_VIEWS = ("phase", "spectrum", "spp", "meters")  # one picture in place of the histogram grid
# the same before and after the backward pass
FORWARD_VIEWS = ("activation", "preactivation", "channel_mean", "phase", "spectrum", "spp")
# the meters hold the gradient norms too: they change with the backward pass


@dataclass
class Display:
    """A result and everything derived from it for the screen."""

    result: RunResult
    table_text: Content
    series: dict[str, tuple[list, list | None]]
    summary: str

    @property
    def theory_note(self) -> str | None:
        return self.result.theory_note

    @property
    def config(self):
        return self.result.config


@dataclass(frozen=True)
class PlotRequest:
    """Which plots to draw: the result (by identity), the view, the layers, the size,
    and how to bin (display settings: a change re-bins the kept samples, no re-run)."""

    result: RunResult
    view: str
    layers: tuple[int, ...]
    width: int
    height: int
    colors: tuple[str, str]  # bar, axis
    bins: int = 30
    shared: bool = True  # one x-range for every layer
    draws: DrawCache | None = field(default=None, compare=False)  # for the spectrum

    def key(self) -> tuple:
        """What the plots depend on. Forward views look the same before and after the
        backward pass, so the phase only matters for the gradient views."""
        phase = self.result.phase if self.view not in FORWARD_VIEWS else None
        return (self.result.config, self.result.step, phase, self.view, self.layers,
                self.width, self.height, self.colors, self.bins, self.shared)




THEORY_COLUMNS = {i for i, (header, _) in enumerate(TABLE) if header == "theory"}


def table_text(table: list[tuple[str, ...]]) -> Content:
    """The per-layer table as aligned text: a bold header, theory columns dimmed."""
    headers = [h for h, _ in TABLE]
    widths = [max(len(x) for x in col) for col in zip(headers, *table)]
    text = Text()
    text.append("  ".join(h.rjust(w) for h, w in zip(headers, widths)), style="bold")
    for row in table:
        text.append("\n")
        for i, (cell, w) in enumerate(zip(row, widths)):
            text.append(("  " if i else "") + cell.rjust(w),
                        style="dim" if i in THEORY_COLUMNS else "")
    return Content.from_rich_text(text)


def sparkline_series(result: RunResult) -> dict[str, tuple[list, list | None]]:
    def values(quantity: str, stat: str) -> list:
        return [getattr(getattr(lay, quantity), stat) if getattr(lay, quantity) else None
                for lay in result.layers]

    def theory(quantity: str) -> list | None:
        if any(lay.theory is None for lay in result.layers):
            return None
        return [getattr(lay.theory, f"{quantity}_std") for lay in result.layers]

    return {
        "act-mean": (values("activation", "mean"), None),
        "act-std": (values("activation", "std"), theory("activation")),
        "grad-mean": (values("gradient", "mean"), None),
        "grad-std": (values("gradient", "std"), theory("gradient")),
    }


def summary_line(result: RunResult) -> str:
    c = result.config
    width = ",".join(map(str, c.width)) if len(c.width) <= 3 else f"{c.width[0]},…"
    shape = ARCHS[c.arch].shape(c)
    # a conv network's channels are in its shape
    widths = "" if ARCHS[c.arch].convolutional else f" · width {width}"
    what = f"{c.scheme} · {c.activation} · {shape}{widths} · batch {c.batch} · seed {c.seed}"
    if result.init_trace is not None:
        shown = result.init_trace[-1]["iteration"]
        what += f" · init iteration {shown} of {result.init_iterations} (i / I)"
    if result.step:
        return f"{what} — after {result.step} training steps"
    if result.phase == COMPLETE:
        return f"{what} — forward + backward in {1000 * result.seconds:.0f} ms"
    return f"{what} — forward in {1000 * result.seconds:.0f} ms, backward running…"


def build_display(result: RunResult) -> Display:
    table = table_cells(result)  # the CLI's cells, the same on screen
    return Display(result, table_text(table), sparkline_series(result),
                   summary_line(result))


def plot_title(result: RunResult, index: int, view: str, width: int | None = None) -> Text:
    """`L3 std 0.0106 · theory 0.0107`, its words shortened (never its numbers) until it
    fits `width` cells: `· th`, then no `std`."""
    lay = result.layers[index]
    summary = getattr(lay, view)
    prefix = ARCHS[result.config.arch].row_prefix
    title = Text(f"{prefix}{lay.index}", style="bold", no_wrap=True, overflow="ellipsis")
    if summary is None:
        if result.overflow_layer is not None and lay.index > result.overflow_layer:
            title.append(f"  not run: overflow at {prefix}{result.overflow_layer}",
                         style="italic")
        elif result.phase != COMPLETE:
            title.append("  backward pass running…", style="italic")
        return title
    predicted = getattr(lay.theory, f"{view}_std", None) if lay.theory else None
    forms = (("std ", " · theory "), ("std ", " · th "), ("", " th "))
    for std_word, theory_word in forms:
        text = title.copy()
        text.append(f" {std_word}{fmt(summary.std, 3)}")
        if predicted is not None:
            text.append(f"{theory_word}{fmt(predicted, 3)}", style="dim")
        if not summary.finite:
            text.append(f"  {100 * (1 - summary.finite_fraction):.0f}% inf/nan",
                        style="bold red")
        if width is None or text.cell_len <= width:
            break
    return text


def phase_content(request: PlotRequest, cancelled=lambda: False) -> Content:
    """The phase diagram of the config's activation, the config marked on it."""
    from initscope.phaseplot import NARROW_COLUMNS, phase_text
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.meanfield import config_sigmas, phase_grid, phase_point, sw2_range_for

    cfg = request.result.config
    act = ACTIVATIONS[cfg.activation]
    # the row labels take 7 cells and the axis name 5; the header, axis, legend and
    # notes 7 lines, or 10 when the diagram is narrow and they take more; one more
    # says that a norm is not in the diagram
    columns = max(12, min(80, request.width - 13))
    around = (7 if columns >= NARROW_COLUMNS else 10) + (cfg.norm != "none")
    sw2, sb2, mu = config_sigmas(cfg)
    grid = phase_grid(act, columns=columns, rows=max(6, min(24, request.height - around)),
                      slope=cfg.slope, cancelled=cancelled, sw2_range=sw2_range_for(sw2))
    point = phase_point(act, sw2, sb2, cfg.slope, mu)
    bar, axis = request.colors
    text = phase_text(grid, (sw2, sb2 + mu * mu), {"ordered": bar, "axis": axis})
    shift = f" (bias {fmt(mu, 3)} as a mean shift; drawn at σb² = b²)" if mu else ""
    summary = fit_phrases([f"{cfg.activation}: χ1 = {fmt(point.chi_1, 3)} ({point.phase})",
                           f"q* = {fmt(point.q_star, 3)}",
                           f"ξc = {fmt(point.xi_c, 3)} layers{shift}"], request.width - 7, ", ")
    for line in summary:  # broken between phrases where one line would wrap
        text.append(f"\n{'':7}{line}", style=axis)
    text.append(f"\n{'':7}shift+←/→ σw², shift+↑/↓ σb²", style=axis)
    if cfg.norm != "none":
        text.append(f"\n{'':7}(the diagram has no norm in it)",
                    style=axis)
    return Content.from_rich_text(text)


_SPECTRA: OrderedDict = OrderedDict()  # the last few configs' spectra: SVDs take a while
_SPECTRA_LOCK = threading.Lock()


def _spectrum_of(cfg: Config, draws: DrawCache | None):
    """The config's Jacobian spectrum, computed once; `draws` reuses the run's draws."""
    from initscope.sim.spectrum import jacobian_spectrum

    with _SPECTRA_LOCK:
        if cfg in _SPECTRA:
            return _SPECTRA[cfg]
    spectrum = jacobian_spectrum(cfg, draws)
    with _SPECTRA_LOCK:
        _SPECTRA[cfg] = spectrum
        while len(_SPECTRA) > 4:
            _SPECTRA.popitem(last=False)
    return spectrum


def spectrum_content(request: PlotRequest) -> Content:
    """A histogram of the Jacobian's singular values, or why there is none."""
    import numpy as np

    from initscope.plots import histogram_text
    from initscope.sim.config import ConfigError
    from initscope.sim.memory import MemoryBudgetError
    from initscope.sim.spectrum import spread

    bar, axis = request.colors
    try:
        spectrum = _spectrum_of(request.result.config, request.draws)
    except (ConfigError, MemoryBudgetError) as e:  # one line, where the plot would be
        return Content.from_rich_text(Text(str(e), style=axis))
    values = spectrum.flat
    counts, edges = np.histogram(values, bins=max(10, min(60, request.width - 4)))
    data = spectrum.to_dict()
    head = fit_phrases([f"{len(values)} singular values", "of the input-output Jacobian",
                        f"at {len(spectrum.singular_values)} inputs"], request.width, " ")
    tail = fit_phrases([f"mean square {fmt(data['mean_squared'], 3)}",
                        f"min {fmt(data['min'], 3)}", f"max {fmt(data['max'], 3)}",
                        f"spread (std/rms) {fmt(spread(spectrum), 3)}",
                        f"({isometry_verdict(data['min'], data['max'])})"], request.width)
    text = Text("\n".join(head) + "\n", style="bold")
    height = max(6, request.height - len(head) - len(tail))
    text.append_text(histogram_text(tuple(int(c) for c in counts), tuple(float(e) for e in edges),
                                    max(20, request.width), height, bar, axis))
    text.append("\n" + "\n".join(tail), style=axis)
    return Content.from_rich_text(text)


SPP_SERIES = (("variance", "variance"), ("mean^2", "squared_mean"),
              ("branch var", "branch_variance"))


def spp_content(request: PlotRequest) -> Content:
    """The signal propagation plot: per block, the stream's average channel variance
    (v) and squared channel mean (m), and the branch's variance before the add (b)."""
    from initscope.plots import log_lines_text

    bar, axis = request.colors
    result = request.result
    if not result.spp:
        return Content.from_rich_text(Text(
            "the signal propagation plot measures residual blocks: set Network to "
            "residual or resconv", style=axis))
    rows = result.spp
    series = tuple((name, tuple(getattr(r, key) for r in rows)) for name, key in SPP_SERIES)
    last = rows[-1]
    phrases = [f"v variance {fmt(rows[0].variance, 3)}→{fmt(last.variance, 3)}",
               f"m mean² {fmt(rows[0].squared_mean, 3)}→{fmt(last.squared_mean, 3)}",
               f"b branch var {fmt(rows[0].branch_variance, 3)}→"
               f"{fmt(last.branch_variance, 3)}"]
    predicted = last.predicted
    phrases.append(f"theory at B{last.block}: v {fmt(predicted[1], 3)}, m "
                   f"{fmt(predicted[0], 3)}, b {fmt(predicted[2], 3)}" if predicted else
                   "theory: the sum v + m only (see the table's act std)")
    tail = fit_phrases(phrases, request.width)
    plot = log_lines_text(series, max(20, request.width), max(6, request.height - len(tail)),
                          (bar, "yellow", "magenta"), axis)
    text = Text("", no_wrap=True, overflow="crop")
    text.append_text(plot)
    text.append("\n" + "\n".join(tail), style=axis)
    return Content.from_rich_text(text)


METER_SERIES = (("stream var", "stream_variance"), ("attn var", "attention_variance"),
                ("mlp var", "mlp_variance"))
# what the screen's table shows, in the order columns are kept as the pane narrows
SCREEN_METERS = (("entropy", "entropy"), ("logit std", "logit_std"),
                 ("th", "logit_std_theory"), ("similar", "similarity"),
                 ("mlp var", "mlp_variance"), ("th", "mlp_variance_theory"),
                 *((f"|dW| {g}" if g == "q" else g, f"grad_{g}") for g in METER_GROUPS))


def spread_rows(count: int, room: int) -> list[int]:
    """At most `room` of `count` rows, evenly spread, the first and last among them."""
    if count <= room:
        return list(range(count))
    if room < 2:
        return [count - 1][:room]
    return sorted({round(i * (count - 1) / (room - 1)) for i in range(room)})


def meter_cell(v) -> str:
    """A meter in a few cells: 3 significant digits, or a whole number up to 9999."""
    if isinstance(v, float) and 1e3 <= abs(v) < 1e4:
        return f"{v:.0f}"
    return fmt(v, 3)


def meter_tables(rows: list[dict], width: int, room: int) -> list[list[str]]:
    """The meters as aligned text tables of at most `width` cells and `room` rows of
    blocks each: the columns that do not fit one table start the next, each table
    led by the block's number."""
    shown = [rows[i] for i in spread_rows(len(rows), room)]
    blocks = [str(r["block"]) for r in shown]
    columns = [(header, [meter_cell(r[key]) for r in shown]) for header, key in SCREEN_METERS]
    lead = max([1] + [len(b) for b in blocks])
    tables = []
    while columns:
        used, taken = lead, []
        while columns:
            need = 1 + max(len(x) for x in [columns[0][0], *columns[0][1]])
            if taken and used + need > width:
                break
            taken.append(columns.pop(0))
            used += need
        header = ["B", *(h for h, _ in taken)]
        body = [[b, *(cells[i] for _, cells in taken)] for i, b in enumerate(blocks)]
        tables.append(aligned(header, body, sep=" "))
    return tables


def meters_content(request: PlotRequest) -> Content:
    """A transformer's meters: tables per block (entropy, logits' std and its
    prediction, token similarity, the MLP branch's variance and its prediction, each
    group's gradient norm), then the stream and branch variances on a log scale where
    there is room."""
    from initscope.plots import log_lines_text
    from initscope.report import meter_rows

    bar, axis = request.colors
    result = request.result
    if not result.meters:
        return Content.from_rich_text(Text(
            "the meters measure transformer blocks: set Network to transformer", style=axis))
    rows = meter_rows(result)
    head = fit_phrases([f"tokens start at similarity {fmt(result.input_similarity, 2)}",
                        "th: theory", "|dW|: gradient norms"], request.width)
    if result.phase != COMPLETE:
        head.append("backward pass running…")
    room = request.height - len(head)
    text = Text("", no_wrap=True, overflow="crop")
    text.append("\n".join(head), style=axis)
    tables = meter_tables(rows, request.width, max(1, min(len(rows), room // 2 - 1)))
    for table in tables:
        if len(table) > room:
            break
        text.append("\n" + table[0], style="bold")
        text.append("\n" + "\n".join(table[1:]))
        room -= len(table)
    if room >= 7:
        series = tuple((name, tuple(m[key] for m in rows)) for name, key in METER_SERIES)
        text.append("\n")
        text.append_text(log_lines_text(series, max(20, request.width), room - 1,
                                        (bar, "yellow", "magenta"), axis))
        text.append("\ns stream, a attention, m MLP: variances per block", style=axis)
    return Content.from_rich_text(text)


def fit_phrases(phrases: list[str], width: int, sep: str = " · ") -> list[str]:
    """`phrases` joined by `sep` into lines of at most `width` cells, breaking only
    between phrases (a phrase longer than the width gets a line of its own)."""
    lines: list[str] = []
    for phrase in phrases:
        if lines and len(lines[-1]) + len(sep) + len(phrase) <= width:
            lines[-1] += sep + phrase
        else:
            lines.append(phrase)
    return lines


def isometry_verdict(low: float, high: float, tolerance: float = 0.1) -> str:
    """What the singular values say: all within 10% of 1 is dynamical isometry."""
    if 1 - tolerance <= low and high <= 1 + tolerance:
        return "all near 1: dynamical isometry"
    if high < 1 - tolerance:
        return "all below 1: signals and gradients shrink"
    if low > 1 + tolerance:
        return "all above 1: signals and gradients grow"
    return f"spread from {fmt(low, 2)} to {fmt(high, 2)}: far from isometry"


def plot_texts(request: PlotRequest, cancelled=lambda: False) -> list[Content]:
    """Title and histogram of every requested layer, as ready-to-draw Content (or,
    in the phase view, the diagram, which stops with Cancelled once `cancelled()`)."""
    from initscope.plots import histogram_text

    if request.view == "phase":
        return [phase_content(request, cancelled)]
    if request.view == "spectrum":
        return [spectrum_content(request)]
    if request.view == "spp":
        return [spp_content(request)]
    if request.view == "meters":
        return [meters_content(request)]
    out = []
    bar, axis = request.colors
    hists = request.result.histograms(request.view, request.bins, request.shared)
    for i in request.layers:
        title = plot_title(request.result, i, request.view, request.width)
        hist = hists[i]
        body = Text("")
        if hist is not None and hist.edges:
            body = histogram_text(hist.counts, hist.edges, request.width, request.height,
                                  bar, axis)
        text = Text("\n", no_wrap=True, overflow="crop").join([title, body])
        out.append(Content.from_rich_text(text))
    return out
