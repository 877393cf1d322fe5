"""Mean and std of every layer as sparklines, measured beside the theory's prediction."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Label, Sparkline

from initscope.report import fmt

# (row id, label, has a theory row, drawn on a log scale)
ROWS = [
    ("act-mean", "act mean", False, False),
    ("act-std", "act std", True, True),
    ("grad-mean", "grad mean", False, False),
    ("grad-std", "grad std", True, True),
]


MIN_RELATIVE_SPAN = 0.01  # a series that moves less than 1% is drawn flat


def clean(values: list[float | None], log: bool = False) -> list[float]:
    """Sparkline cannot draw NaN, inf or gaps: those become the lowest value drawn.
    Stds are drawn as log10, so a collapse by 10^6 reads as a straight slope. The
    sparkline scales its data to fill its height, so a series that moves by less than
    1% (LSUV's 0.628 -> 0.629) is drawn flat rather than as a jump from bottom to top;
    the end values beside it give the numbers."""
    # 3 significant digits: float noise in a constant series must not draw as a slope
    values = [float(f"{v:.3g}") if v is not None and math.isfinite(v) else None for v in values]
    if log:
        values = [math.log10(v) if v is not None and v > 0 else None for v in values]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    floor = min(finite) if finite else 0.0
    if finite:
        span = max(finite) - floor
        least = (math.log10(1 + MIN_RELATIVE_SPAN) if log
                 else MIN_RELATIVE_SPAN * max(abs(floor), abs(max(finite))))
        if span < least:
            return [floor] * len(values)
    return [v if v is not None and math.isfinite(v) else floor for v in values]


def ends(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    return f"{fmt(present[0], 3)}→{fmt(present[-1], 3)}"


def spark_css(row: str) -> str:
    """The look of a row of sparklines: label, measured, theory, end values."""
    return f"""
    {row} {{
        height: 1;
    }}
    {row} > .spark-label {{
        width: 15;
        padding-right: 1;
        color: $text-muted;
    }}
    {row} > .spark {{
        width: 1fr;
        margin: 0 1 0 0;
    }}
    {row} > .spark.measured > .sparkline--max-color {{
        color: $sparkline-measured;
    }}
    {row} > .spark.measured > .sparkline--min-color {{
        color: $sparkline-measured 40%;
    }}
    {row} > .spark.theory > .sparkline--max-color {{
        color: $sparkline-theory;
    }}
    {row} > .spark.theory > .sparkline--min-color {{
        color: $sparkline-theory 40%;
    }}
    {row} > .spark-ends {{
        width: auto;
        max-width: 40;
    }}
    """


class SparklineRow(Horizontal):
    """One labelled row: measured values, optionally the theory's, and their ends."""

    DEFAULT_CSS = spark_css("SparklineRow")

    def __init__(self, row_id: str, label: str, with_theory: bool) -> None:
        super().__init__(classes=f"spark-row {row_id}")
        self.label = label
        self.with_theory = with_theory

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="spark-label")
        yield Sparkline([], classes="spark measured")
        if self.with_theory:
            yield Sparkline([], classes="spark theory")
        yield Label("", classes="spark-ends")


class SparklinePanel(Vertical):
    """Four rows: activation mean and std, gradient mean and std, across layers."""

    DEFAULT_CSS = """
    SparklinePanel {
        height: auto;
        border: round $panel-lighten-2;
        border-title-color: $accent;
    }
    """

    data: reactive[dict] = reactive(dict, always_update=True, init=False)
    """`data[row id]` = (measured values, theory values or None), one per row of the
    network, as plain lists (row ids: act-mean, act-std, grad-mean, grad-std)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Across layers: measured | theory (std rows: log10 scale)"

    def compose(self) -> ComposeResult:
        for row_id, label, theory, log in ROWS:
            yield SparklineRow(row_id, f"{label}{' log' if log else ''}", theory)

    def watch_data(self, series: dict[str, tuple[list, list | None]]) -> None:
        for row_id, _, _, log in ROWS:
            row = self.query_one(f".{row_id}", SparklineRow)
            measured, theory = series.get(row_id, ([], None))
            row.query_one(".measured", Sparkline).data = clean(measured, log)
            text = ends(measured)
            if row.with_theory:
                spark = row.query_one(".theory", Sparkline)
                spark.display = bool(theory)  # no prediction: no line that looks like data
                spark.data = clean(theory or [], log)
                text += f" | {ends(theory)}" if theory else " | no theory"
            row.query_one(".spark-ends", Label).update(text)
