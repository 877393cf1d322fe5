"""The training panel: loss over the steps, the symmetry meter, and each layer's
activation std over the steps. Shown once training has started."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline, Static

from initscope.report import fmt
from initscope.sim.training import TrainStep
from initscope.tui.widgets.sparklines import clean, spark_css

MAX_LAYER_ROWS = 4
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
        height: 1;
        color: $text-accent;
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
        yield TrainingRow("loss", "train-loss")
        with Horizontal(classes="meter-row"):
            yield Label("distinct", classes="spark-label")
            yield Static("", id="train-meter")
        for i in range(MAX_LAYER_ROWS):
            yield TrainingRow("", f"train-layer-{i}")

    def watch_data(self, view: TrainingView) -> None:
        head, history, widths, layers = view.head, view.history, view.widths, view.layers
        self.display = bool(history or head)  # a failure before the first step: its head
        self.query_one("#train-head", Static).update(head)
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
        for i in range(MAX_LAYER_ROWS):
            row = self.query_one(f"#train-layer-{i}", TrainingRow)
            row.display = i < len(layers)
            if i < len(layers):
                k = layers[i]
                values = [s.layers[k].activation_std for s in history]
                row.query_one(".spark-label", Label).update(f"L{k + 1} act std log")
                row.query_one(Sparkline).data = clean(values, log=True)
                row.query_one(".spark-ends", Label).update(
                    f"{fmt(values[0], 3)}→{fmt(values[-1], 3)}")
