"""Compare: two configs side by side, A | B, on the same random draws.

Both sides use the app's simulator, so with the same seed they share every random
number (common random numbers) and differ only by what their configs change. The
selectors, and every key that changes the config, act on the active side (`w`
switches); a new seed goes to both sides, so they keep the same draws.
"""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from initscope.sim import Config, ConfigError, MemoryBudgetError, validate
from initscope.sim.config import parse_width
from initscope.sim.memory import runnable
from initscope.tui.display import Display, PlotRequest, build_display, plot_texts
from initscope.tui.widgets.footer import KeyFooter
from initscope.tui.widgets.histograms import HistogramGrid
from initscope.tui.widgets.selectors import SelectorPane
from initscope.tui.widgets.sparklines import SparklinePanel
from initscope.tui.widgets.table import LayerTable
from initscope.tui.workers import forget_when_done

SIDES = ("A", "B")
SHARED_FIELDS = ("seed",)  # changed on both sides at once: the draws stay the same


def parse_overrides(text: str, base: Config) -> Config:
    """`scheme=he_normal,gain=1.5` on top of `base`; ConfigError if it does not fit."""
    changes = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not hasattr(base, key):
            raise ConfigError(f"compare takes name=value pairs of config options, not {part!r}")
        kind = type(getattr(base, key))
        try:
            if kind is tuple:
                changes[key] = parse_width(value)
            else:
                changes[key] = value.strip() if kind is str else kind(value)
        except ValueError:
            raise ConfigError(f"{key} needs a {kind.__name__}, not {value!r}") from None
    return validate(replace(base, **changes))


class SideDone(Message):
    """One side's numbers and plots, ready to show."""

    def __init__(self, side: str, display: Display, request: PlotRequest, texts: list) -> None:
        super().__init__()
        self.side, self.display, self.request, self.texts = side, display, request, texts


class ComparePane(Vertical):
    def __init__(self, side: str) -> None:
        super().__init__(id=f"side-{side}", classes="compare-side")
        self.side = side

    def compose(self) -> ComposeResult:
        yield Static("", classes="side-title")
        yield HistogramGrid(id=f"grid-{self.side}")
        yield SparklinePanel(id=f"spark-{self.side}")
        yield LayerTable(id=f"table-{self.side}")


class CompareScreen(Screen):
    """A | B. Escape goes back to the single view with the active side's config."""

    BINDINGS = [
        Binding("w", "switch_side", "Switch side", id="compare-switch",
                tooltip="which side the selectors and keys change"),
        Binding("escape", "leave", "Back", id="compare-back",
                tooltip="back to one network (the active side)"),
    ]

    def __init__(self, a: Config, b: Config) -> None:
        super().__init__()
        self.sides = {"A": a, "B": b}
        self.active = "A"
        self.shown: dict[str, Display] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-main"):
            yield SelectorPane(self.sides["A"])
            with Horizontal(id="compare-sides"):
                for side in SIDES:
                    yield ComparePane(side)
        yield Static("", id="compare-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._titles()
        for side in SIDES:
            self.query_one(f"#grid-{side}", HistogramGrid).set_layers(
                self.sides[side].row_count())
            self.run_side(side)

    # ---- changes ------------------------------------------------------------------

    def propose(self, **changes) -> bool:
        """Change the active side (and, for the seed, both); refuse what cannot run."""
        targets = SIDES if set(changes) & set(SHARED_FIELDS) else (self.active,)
        try:
            new = {s: runnable(replace(self.sides[s], **changes)) for s in targets}
        except (ConfigError, MemoryBudgetError) as e:
            self.notify(str(e), title="Not applied", severity="error")
            return False
        for side, cfg in new.items():
            if cfg != self.sides[side]:
                self.sides[side] = cfg
                self.query_one(f"#grid-{side}", HistogramGrid).set_layers(cfg.row_count())
                self.run_side(side)
        self.query_one(SelectorPane).show(self.sides[self.active])
        self._titles()
        return True

    def action_switch_side(self) -> None:
        self.active = "B" if self.active == "A" else "A"
        self.query_one(SelectorPane).show(self.sides[self.active])
        self._titles()

    def action_leave(self) -> None:
        if not self.is_active:
            return  # left already: a second Escape queued behind the first
        config = self.sides[self.active]
        self.app.pop_screen()
        self.app.propose(**config.__dict__)

    def _titles(self) -> None:
        for side in SIDES:
            c = self.sides[side]
            mark = "▶ " if side == self.active else "  "
            title = self.query_one(f"#side-{side} .side-title", Static)
            title.update(f"{mark}{side}: {c.scheme} · {c.activation} · gain {c.gain:g}")
            title.set_class(side == self.active, "active")
        self.query_one("#compare-status", Static).update(
            f"Compare A | B on the same draws (seed {self.sides['A'].seed}) · keys and "
            f"selectors change side {self.active} · w switches · Esc back")

    # ---- runs ---------------------------------------------------------------------

    def run_side(self, side: str) -> None:
        grid = self.query_one(f"#grid-{side}", HistogramGrid)
        width, height = grid.cell_size()
        layers = tuple(grid.visible_layers())
        colors = self.app._plot_colors()
        cfg = self.sides[side]
        view = self.app.view if self.app.view in ("activation", "preactivation", "gradient",
                                                   "weight_gradient") else "activation"

        def work() -> None:
            result = self.app.sim.run(cfg)
            if get_current_worker().is_cancelled:
                return
            request = PlotRequest(result, view, layers, width, height, colors)
            self.post_message(SideDone(side, build_display(result), request,
                                       plot_texts(request)))

        self.run_worker(forget_when_done(work), thread=True, exclusive=True,
                        group=f"compare-{side}", exit_on_error=False)

    def on_side_done(self, message: SideDone) -> None:
        side, display = message.side, message.display
        if display.config != self.sides[side]:
            return
        self.shown[side] = display
        with self.app.batch_update():
            self.query_one(f"#spark-{side}", SparklinePanel).show(display.series)
            self.query_one(f"#table-{side}", LayerTable).show(display.table_text)
            self.query_one(f"#grid-{side}", HistogramGrid).show_plots(message.texts)

    @on(HistogramGrid.LayoutChanged)
    def _relayout(self, event: HistogramGrid.LayoutChanged) -> None:
        side = event.grid.id.removeprefix("grid-")
        if side in SIDES:
            self.run_side(side)

    def settled(self) -> bool:
        return all(side in self.shown and self.shown[side].config == self.sides[side]
                   for side in SIDES)
