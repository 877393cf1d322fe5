"""The training panel: loss over the steps, the symmetry meter, each shown layer's
update-to-data ratio, and each layer's activation std over the steps, with the
trainer's warnings (initial loss, divergence). Shown once training has started."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline, Static

from initscope.report import fmt
from initscope.sim.training import TrainStep
from initscope.tui.widgets.sparklines import clean, spark_css

MAX_LAYER_ROWS = 4
# log10(||update|| / ||W||) around -3 is the usual rule of thumb (Karpathy, CS231n)
RATIO_BAND = (-4.0, -2.0)
METER = "·▁▂▃▄▅▆▇█"


def symmetry_meter(step: TrainStep, widths: list[int]) -> str:
    """One character per layer, as tall as the share of distinct units; then the
    smallest count. A layer whose units are all identical shows as a dot."""
    cells = []
    for lay, width in zip(step.layers, widths):
        if lay.distinct_units is None:
            cells.append("?")
            continue
        share = (lay.distinct_units - 1) / max(width - 1, 1)
        cells.append(METER[min(len(METER) - 1, round(share * (len(METER) - 1)))])
    counts = [(lay.distinct_units, w) for lay, w in zip(step.layers, widths)
              if lay.distinct_units is not None]
    low = min(counts) if counts else None
    tail = f"  fewest: {low[0]} of {low[1]}" if low else "  diverged"
    return "".join(cells)[:60] + tail


@dataclass(frozen=True)
class TrainingView:
    """What the panel shows: a head line, every step's record, the layer widths (for
    the meter) and which layers get a row of their own (0-based)."""

    head: str = ""
    history: list[TrainStep] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings: initial loss, divergence
    metric: str = "act std"  # what the layer rows show (TRAIN_METRICS)


# what the per-layer rows of the panel show, in the order `m` cycles through them
TRAIN_METRICS = ("act std", "grad norm", "dead/sat", "heatmap")


def layer_series(history: list[TrainStep], k: int, metric: str, width: int
                 ) -> tuple[str, list, bool]:
    """Label, values over the steps and whether to draw them on a log scale, for
    layer k's row: activation std, the weight gradient's norm, or the share of dead
    (ReLU family) or saturated (tanh, sigmoid) units."""
    layers = [s.layers[k] for s in history]
    if metric == "grad norm":
        return f"L{k + 1} |dW| log", [lay.gradient_norm for lay in layers], True
    if metric == "dead/sat":
        if layers[-1].dead_units is not None:
            return f"L{k + 1} dead", [lay.dead_units / width for lay in layers], False
        if layers[-1].saturated_fraction is not None:
            return f"L{k + 1} saturated", [lay.saturated_fraction for lay in layers], False
        return f"L{k + 1} neither", [0.0 for _ in layers], False
    return f"L{k + 1} act std log", [lay.activation_std for lay in layers], True


HEAT_SHADES = " ░▒▓█"
DECADE_BINS = 4  # HEAT_EDGES has 4 bins per decade: one heatmap row each decade


def heat_lines(history: list[TrainStep], layer: int, columns: int) -> list[str]:
    """log10|activation| of `layer` over the steps as rows of shades, one row per
    decade (largest on top), one column per group of steps; darker is more entries
    (log-scaled counts, as fastai's "colorful dimension")."""
    from initscope.sim.training import HEAT_EDGES

    steps = [s.layers[layer].heat for s in history if s.layers[layer].heat]
    if not steps or columns < 1:
        return []
    decades = (len(HEAT_EDGES) - 1) // DECADE_BINS
    per_column = -(-len(steps) // columns)  # ceil: every step in some column
    grid = []
    for start in range(0, len(steps), per_column):
        group = steps[start:start + per_column]
        grid.append([sum(sum(c[d * DECADE_BINS:(d + 1) * DECADE_BINS]) for c in group)
                     for d in range(decades)])
    top = max(max(col) for col in grid) or 1
    lines = []
    for d in range(decades - 1, -1, -1):
        low = int(HEAT_EDGES[d * DECADE_BINS])
        # the end rows also hold what lies beyond them: zeros at the bottom
        label = (f"|a| <1e{low + 1:+d}" if d == 0 else f"|a| ≥1e{low:+d}" if d == decades - 1
                 else f"|a| 1e{low:+d}")
        cells = "".join(HEAT_SHADES[0 if col[d] == 0 else 1 + min(
            len(HEAT_SHADES) - 2, int((len(HEAT_SHADES) - 1) * math.log1p(col[d])
                                      / math.log1p(top + 1)))] for col in grid)
        lines.append(f"{label:<14}{cells}")
    return lines


def ratio_line(step: TrainStep, layers: list[int]) -> Text:
    """The last step's update-to-data ratio of the shown layers: in the band around
    -3 plain, outside it marked."""
    text = Text()
    for k in layers:
        ratio = step.layers[k].update_ratio
        text.append(f"L{k + 1} ", style="dim")
        if ratio is None:
            text.append("-  ")
            continue
        inside = RATIO_BAND[0] <= ratio <= RATIO_BAND[1]
        text.append(f"{ratio:.1f}", style="" if inside else "bold reverse")
        text.append("  ")
    text.append("(≈-3 healthy)", style="dim")
    return text


class TrainingRow(Horizontal):
    DEFAULT_CSS = spark_css("TrainingRow")

    def __init__(self, label: str, row_id: str) -> None:
        super().__init__(id=row_id, classes="spark-row")
        self.label = label

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="spark-label")
        yield Sparkline([], classes="spark measured")
        yield Label("", classes="spark-ends")


class TrainingPanel(Vertical):
    """Hidden until the first training step arrives."""

    DEFAULT_CSS = """
    TrainingPanel {
        height: auto;
        border: round $panel-lighten-2;
        border-title-color: $accent;
    }
    TrainingPanel #train-head {
        height: auto;
        color: $text-accent;
    }
    TrainingPanel #train-notes {
        height: auto;
        color: $text-warning;
    }
    TrainingPanel #train-heat {
        height: auto;
        width: 1fr;
        color: $text-accent;
    }
    TrainingPanel #train-ratio {
        height: 1;
        width: 1fr;
    }
    TrainingPanel #train-meter {
        height: 1;
        width: 1fr;
    }
    TrainingPanel > .meter-row {
        height: 1;
    }
    TrainingPanel > .meter-row > .spark-label {
        width: 14;
        color: $text-muted;
    }
    """

    data: reactive[TrainingView] = reactive(TrainingView, always_update=True, init=False)
    """The records to show; an empty history hides the panel."""

    def __init__(self, id: str | None = "training") -> None:
        super().__init__(id=id)
        self.border_title = "Training"
        self.display = False

    def compose(self) -> ComposeResult:
        yield Static("", id="train-head")
        yield Static("", id="train-notes")
        yield TrainingRow("loss", "train-loss")
        with Horizontal(classes="meter-row"):
            yield Label("distinct", classes="spark-label")
            yield Static("", id="train-meter")
        with Horizontal(classes="meter-row"):
            yield Label("update/W log", classes="spark-label")
            yield Static("", id="train-ratio")
        for i in range(MAX_LAYER_ROWS):
            yield TrainingRow("", f"train-layer-{i}")
        yield Static("", id="train-heat")

    def watch_data(self, view: TrainingView) -> None:
        head, history, widths, layers = view.head, view.history, view.widths, view.layers
        self.display = bool(history or head)  # a failure before the first step: its head
        self.query_one("#train-head", Static).update(head)
        notes = self.query_one("#train-notes", Static)
        notes.display = bool(view.notes)
        notes.update("\n".join(f"⚠ {note}" for note in view.notes))
        for row in self.query(".meter-row, TrainingRow"):
            row.display = bool(history)
        if not history:
            return
        last = history[-1]
        losses = [s.loss for s in history]
        loss_row = self.query_one("#train-loss", TrainingRow)
        loss_row.query_one(Sparkline).data = clean(losses)
        loss_row.query_one(".spark-ends", Label).update(f"{fmt(losses[0], 3)}→{fmt(last.loss, 3)}")
        self.query_one("#train-meter", Static).update(symmetry_meter(last, widths))
        self.query_one("#train-ratio", Static).update(ratio_line(last, layers))
        heat = self.query_one("#train-heat", Static)
        heat.display = view.metric == "heatmap" and bool(layers)
        if heat.display:
            k = layers[0]
            lines = heat_lines(history, k, max(1, self.size.width - 16))
            heat.update("\n".join([f"L{k + 1} |a| by decade, steps 1-{len(history)} → "
                                    "(m: next)"] + lines))
        for i in range(MAX_LAYER_ROWS):
            row = self.query_one(f"#train-layer-{i}", TrainingRow)
            row.display = i < len(layers) and view.metric != "heatmap"
            if row.display:
                k = layers[i]
                label, values, log = layer_series(history, k, view.metric, widths[k])
                row.query_one(".spark-label", Label).update(label)
                row.query_one(Sparkline).data = clean(values, log=log)
                ends = (f"{fmt(values[0], 3)}→{fmt(values[-1], 3)}" if log
                        else f"{values[0]:.0%}→{values[-1]:.0%}")
                row.query_one(".spark-ends", Label).update(ends)
