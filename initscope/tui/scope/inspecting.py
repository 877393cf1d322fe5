"""The inspect screen: a checkpoint's tensors, the selected one's histogram beside the
density of the scheme it matches, and the prediction through its dense chain.

The file is read off the UI thread a tensor at a time (checkpoint.py), each within the
memory budget; only a bounded sample of each is kept for its histogram. Keys: up /
down select a tensor, Esc closes (and lets a read in progress go).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, ProgressBar, Static
from textual.worker import get_current_worker

from initscope.report import fmt
from initscope.sim.checkpoint import CheckpointError
from initscope.sim.inspection import Inspected, expected_counts, inspect_file
from initscope.tui.screens import ClosesOnce
from initscope.tui.themes import plot_colors
from initscope.tui.workers import run_in_daemon, thread_work

BINS = 40


def spectrum_plot(item: Inspected, width: int, height: int, colors: tuple[str, str]) -> Text:
    """The weight's singular values, and where random entries of its std would end."""
    from initscope.plots import histogram_text
    from initscope.sim.inspection import spectrum

    bar, axis = colors
    if len(item.report.shape) < 2:
        return Text("a vector has no spectrum: choose a weight", style=axis)
    try:
        spec = spectrum(item.entry.load())
    except (ValueError, CheckpointError) as e:
        return Text(str(e), style=axis)
    counts, edges = np.histogram(spec.values, bins=BINS)
    head = Text(f"singular values {fmt(float(spec.values.min()), 3)} to "
                f"{fmt(float(spec.values.max()), 3)}; random entries of this std: "
                f"{fmt(spec.low, 3)} to {fmt(spec.high, 3)}; "
                + (f"{spec.outside} beyond: structure" if spec.outside else "none beyond")
                + "\n", style=axis)
    head.append_text(histogram_text(tuple(int(c) for c in counts),
                                    tuple(float(e) for e in edges), width, height - 2, bar,
                                    axis))
    return head


def plot(item: Inspected, width: int, height: int, colors: tuple[str, str]) -> Text:
    """The selected tensor's histogram (its sample, scaled to the whole count) with
    the matched scheme's expected counts as a line."""
    from initscope.plots import histogram_text

    bar, axis = colors
    r = item.report
    values = item.sample.astype(np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or float(values.min()) == float(values.max()):
        return Text(f"every entry is {fmt(float(values[0]) if values.size else 0.0, 4)}",
                    style=axis)
    counts, edges = np.histogram(values, bins=BINS)
    expected = expected_counts(r.match, r.std, edges, values.size)
    return histogram_text(tuple(int(c) for c in counts), tuple(float(e) for e in edges),
                          width, height, bar, axis,
                          None if expected is None else tuple(float(e) for e in expected),
                          "magenta")


class InspectScreen(ClosesOnce, Screen[None]):
    DEFAULT_CSS = """
    InspectScreen { layout: vertical; padding: 0 1; }
    InspectScreen #inspect-title { height: auto; text-style: bold; }
    InspectScreen ProgressBar { height: 1; }
    InspectScreen #inspect-body { height: 1fr; }
    InspectScreen DataTable { width: 1fr; min-width: 30; }
    InspectScreen #inspect-right { width: 1fr; }
    InspectScreen #inspect-plot { height: 1fr; }
    InspectScreen #inspect-stats { height: auto; }
    InspectScreen #inspect-chain { height: auto; max-height: 8; }
    InspectScreen #inspect-keys { height: 1; color: $text-muted; }
    """

    BINDINGS = [Binding("escape,q", "close", "close", show=False),
                Binding("s", "spectrum", "values / singular values", show=False)]

    @dataclass
    class Progress(Message):
        done: int
        total: int

    @dataclass
    class Done(Message):
        tensors: list
        chain: list
        theory: list

    @dataclass
    class Failed(Message):
        error: str

    @dataclass
    class Drawn(Message):
        row: int
        plot: Text

    def __init__(self, path: str, activation: str = "relu", memory_limit: float = 0.0) -> None:
        super().__init__()
        self.path, self.activation, self.memory_limit = path, activation, memory_limit
        self.tensors: list[Inspected] | None = None
        self.cancel = threading.Event()
        self.row = 0
        self.spectrum = False  # the selected weight's singular values, not its values

    def compose(self) -> ComposeResult:
        yield Static(f"{self.path}: reading", id="inspect-title")
        yield ProgressBar(show_eta=False)
        with Horizontal(id="inspect-body"):
            yield DataTable(cursor_type="row", zebra_stripes=True)
            with Vertical(id="inspect-right"):
                yield Static(id="inspect-plot")
                yield Static(id="inspect-stats")
        yield Static(id="inspect-chain")
        yield Static("up/down a tensor · s values / singular values · * the matched "
                     "scheme's density · esc close", id="inspect-keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("tensor", "shape", "matches")
        self.load(self.path, self.activation, self.memory_limit, self.cancel)

    @thread_work(group="inspect")
    def load(self, path: str, activation: str, memory_limit: float,
             cancel: threading.Event) -> None:
        def target() -> None:
            try:
                done = inspect_file(path, activation, memory_limit, cancel,
                                    lambda k, n: self.post_message(self.Progress(k, n)))
            except CheckpointError as e:
                self.post_message(self.Failed(str(e)))
                return
            except Exception as e:  # a bug must not take the app down
                self.post_message(self.Failed(f"{type(e).__name__}: {e}"))
                return
            if done is not None:
                self.post_message(self.Done(done.tensors, done.chain, done.theory))

        run_in_daemon(target, cancel)

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#inspect-title", Static).update(message.error)
        self.query_one(ProgressBar).display = False

    @on(Done)
    def _done(self, message: Done) -> None:
        self.tensors = message.tensors
        counts: dict[str, int] = {}
        table = self.query_one(DataTable)
        for t in message.tensors:
            r = t.report
            table.add_row(r.name, "x".join(map(str, r.shape)) or "scalar", r.match.label())
            if r.role in ("dense weight", "conv weight", "embedding"):
                key = r.match.scheme or "no known scheme"
                counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        warnings = sum(len(t.report.warnings) for t in message.tensors)
        self.query_one("#inspect-title", Static).update(
            f"{self.path}: {len(message.tensors)} tensors; weights: {summary or 'none'}; "
            f"{warnings} warning{'s' if warnings != 1 else ''}")
        if message.chain:
            lines = [f"dense chain ({self.activation}, the last linear), predicted: "
                     + " -> ".join(f"{lay.name} act {fmt(a, 3)} grad {fmt(g, 3)}"
                                   for lay, (a, g) in zip(message.chain, message.theory))]
            self.query_one("#inspect-chain", Static).update("\n".join(lines))
        table.focus()
        self.show(0)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show(event.cursor_row)

    def show(self, row: int) -> None:
        if not self.tensors or not 0 <= row < len(self.tensors):
            return
        self.row = row
        r = self.tensors[row].report
        lines = [f"{r.name}: {r.role}, fan_in {r.fan_in}, fan_out {r.fan_out}, {r.count} "
                 f"entries", f"mean {fmt(r.mean, 3)} std {fmt(r.std, 3)} min {fmt(r.min, 3)} "
                 f"max {fmt(r.max, 3)} std*sqrt(fan_in) {fmt(r.std_sqrt_fan_in, 3)}",
                 f"matches: {r.match.label()}"]
        lines += [f"warning: {w}" for w in r.warnings]
        self.query_one("#inspect-stats", Static).update("\n".join(lines))
        area = self.query_one("#inspect-plot", Static)
        self.draw(self.tensors[row], row, max(area.content_size.width, 20),
                  max(area.content_size.height, 5), plot_colors(self.app), self.spectrum)

    @thread_work(group="inspect-draw", exclusive=True)
    def draw(self, item: Inspected, row: int, width: int, height: int,
             colors: tuple[str, str], singular: bool) -> None:
        text = (spectrum_plot if singular else plot)(item, width, height, colors)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Drawn(row, text))

    @on(Drawn)
    def _drawn(self, message: Drawn) -> None:
        if message.row == self.row:
            self.query_one("#inspect-plot", Static).update(message.plot)

    def on_resize(self) -> None:
        self.call_after_refresh(self.show, self.row)

    def action_spectrum(self) -> None:
        self.spectrum = not self.spectrum
        self.show(self.row)

    def action_close(self) -> None:
        self.cancel.set()
        self.dismiss()
