"""ScopePane: one config, its runs and its pictures, running by itself.

A pane holds a frozen config and its display settings (view, bins, x-range) as
reactives. A new config starts the pane's simulate worker, which passes the
worker's own cancel event into the core; the result comes back as one message and
the pane's widgets redraw. A new display setting re-renders the kept result in the
render worker: no new run. The main screen has one pane, the compare screen two;
neither reaches into the other, and the pane knows nothing of the App.
"""

from __future__ import annotations

import dataclasses

from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from initscope.sim import Cancelled, Config, ConfigError, MemoryBudgetError
from initscope.sim.arch import ARCHS
from initscope.sim.budget import runnable
from initscope.sim.remote import AnySimulator
from initscope.sim.stats import DEFAULT_BINS
from initscope.tui.display import (
    DIAGRAM_VIEWS,
    Display,
    PlotRequest,
    build_display,
    plot_texts,
)
from initscope.tui.messages import PlotsReady, SimulationFailed, SimulationResult
from initscope.tui.themes import plot_colors
from initscope.tui.widgets.histograms import HistogramGrid
from initscope.tui.widgets.sparklines import SparklinePanel
from initscope.tui.widgets.table import LayerTable
from initscope.tui.workers import run_in_daemon, thread_work
from initscope.views import VIEW_TITLES


class ScopePane(Widget):
    """Histograms, sparklines, table and diagrams of one config."""

    DEFAULT_CSS = """
    ScopePane {
        layout: vertical;
        height: 1fr;
        width: 1fr;
    }
    ScopePane > .diagram {
        display: none;
        height: 1fr;
        min-height: 8;
        border: round $panel-lighten-2;
        border-title-color: $accent;
        text-wrap: nowrap;
        overflow: hidden hidden;
    }
    ScopePane.-diagram > .diagram {
        display: block;
    }
    ScopePane.-diagram > HistogramGrid {
        display: none;
    }
    """

    config: reactive[Config] = reactive(Config, init=False)
    """The experiment; replaced whole (through `propose`), never mutated."""
    view: reactive[str] = reactive("activation", init=False)
    """Which quantity the histograms show, or a diagram ("phase", "spectrum")."""
    bins: reactive[int] = reactive(DEFAULT_BINS, init=False)
    """Histogram bins: a display setting, re-binned from the kept samples."""
    shared_range: reactive[bool] = reactive(True, init=False)
    """One x-range for every row's histogram (True) or each its own."""

    class Shown(Message):
        """New numbers are on screen (after the forward pass, then complete)."""

        def __init__(self, pane: ScopePane, display: Display) -> None:
            super().__init__()
            self.pane, self.display = pane, display

    class Failed(Message):
        """The current config could not run; `error` is one line."""

        def __init__(self, pane: ScopePane, error: str) -> None:
            super().__init__()
            self.pane, self.error = pane, error

    def __init__(self, config: Config, sim: AnySimulator, *, view: str = "activation",
                 timings: bool = True, id: str | None = None) -> None:
        """`sim` may be shared with other panes: same seed, same draws. `timings=False`
        keeps run times off the summary (for snapshot tests)."""
        super().__init__(id=id)
        self.sim = sim
        self.timings = timings
        self.shown: Display | None = None
        self.plot_request: PlotRequest | None = None
        self.plots_key: tuple | None = None
        self.runs_started = 0  # how many runs this pane asked the core for
        self.frozen = False  # True while training shows other weights' numbers
        self.set_reactive(ScopePane.config, runnable(config))
        self.set_reactive(ScopePane.view, view)

    def compose(self) -> ComposeResult:
        yield HistogramGrid()
        yield Static("", classes="diagram")
        yield SparklinePanel()
        yield LayerTable()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.request_plots())
        self.grid.set_layers(self.config.row_count())
        self._apply_view()
        self.simulate(self.config)

    @property
    def grid(self) -> HistogramGrid:
        return self.query_one(HistogramGrid)

    # ---- changes ----------------------------------------------------------------

    def propose(self, **changes) -> Config:
        """Replace the config with `changes` applied; ConfigError or MemoryBudgetError
        (nothing changed) when it cannot run."""
        new = runnable(dataclasses.replace(self.config, **changes))
        self.config = new
        return new

    def rerun(self) -> None:
        """Run the current config again (after training let go of the screen)."""
        self.frozen = False
        self.simulate(self.config)

    def watch_config(self, new: Config) -> None:
        self.frozen = False
        self.grid.set_layers(new.row_count())
        self._titles()
        self.simulate(new)

    def watch_view(self) -> None:
        self._apply_view()

    def watch_bins(self) -> None:
        self._titles()
        self.request_plots()

    def watch_shared_range(self) -> None:
        self._titles()
        self.request_plots()

    def _apply_view(self) -> None:
        self.set_class(self.view in DIAGRAM_VIEWS, "-diagram")
        self._titles()
        self.call_after_refresh(self.request_plots)  # once the panel has its new size

    def on_resize(self) -> None:
        if self.view in DIAGRAM_VIEWS:  # the histogram grid asks for itself
            self.call_after_refresh(self.request_plots)

    # ---- the simulation worker --------------------------------------------------

    @thread_work(group="simulate", exclusive=True)
    def simulate(self, cfg: Config) -> None:
        """Run `cfg` off the UI thread. The run lives in a daemon thread watched by
        this worker, so a newer config or quitting never waits for a long layer."""
        worker = get_current_worker()
        self.runs_started += 1
        cancel = worker.cancelled_event

        def post(result) -> None:
            if not cancel.is_set():
                self.post_message(SimulationResult(build_display(result)))

        def target() -> None:
            try:
                post(self.sim.run(cfg, cancel=cancel, on_forward=post))
            except Cancelled:
                pass
            except (ConfigError, MemoryBudgetError) as e:
                self.post_message(SimulationFailed(cfg, str(e)))
            except Exception as e:  # a bug must not kill the app: report it
                self.post_message(SimulationFailed(cfg, f"{type(e).__name__}: {e}"))

        run_in_daemon(target, cancel)

    def on_simulation_result(self, message: SimulationResult) -> None:
        message.stop()
        if message.display.config == self.config and not self.frozen:
            self.show(message.display)

    def on_simulation_failed(self, message: SimulationFailed) -> None:
        message.stop()
        if message.config == self.config:
            self.post_message(self.Failed(self, message.error))

    def show(self, display: Display) -> None:
        """Put a result's numbers on screen (the pane's own run, or training's)."""
        self.shown = display
        with self.app.batch_update():
            sparklines = self.query_one(SparklinePanel)
            sparklines.data = display.series
            sparklines.border_subtitle = display.theory_note or ""
            self.query_one(LayerTable).text = display.table_text
        self.post_message(self.Shown(self, display))
        self.request_plots()

    def summary(self, display: Display) -> str:
        return display.summary if self.timings else display.summary.split(" — ")[0]

    # ---- plots ------------------------------------------------------------------

    def request_plots(self) -> None:
        """Ask the render worker for the visible plots of the shown result."""
        if self.shown is None or not self.is_mounted:
            return
        grid = self.grid
        width, height = grid.cell_size()
        # the grid may already count a new config's rows while the shown result is
        # still the old config's: draw only the rows that result has
        rows = len(self.shown.result.layers)
        layers = tuple(i for i in grid.visible_layers() if i < rows)
        if self.view in DIAGRAM_VIEWS:
            panel = self.query_one(".diagram")
            size = panel.content_size if panel.content_size.width else grid.content_size
            width, height, layers = size.width, size.height, ()
        request = PlotRequest(self.shown.result, self.view, layers, width, height,
                              plot_colors(self.app), self.bins, self.shared_range,
                              self.sim.draws)
        if self.plot_request is not None and self.plot_request.key() == request.key():
            return
        self.plot_request = request
        self.render_plots(request)

    @thread_work(group="render", exclusive=True)
    def render_plots(self, request: PlotRequest) -> None:
        worker = get_current_worker()
        try:
            texts = plot_texts(request, cancelled=lambda: worker.is_cancelled)
        except Cancelled:
            return  # a newer request took over: stop drawing for this one
        if not worker.is_cancelled:
            self.post_message(PlotsReady(request, texts))

    def on_plots_ready(self, message: PlotsReady) -> None:
        message.stop()
        if self.plot_request is None or message.request.key() != self.plot_request.key():
            return
        if message.request.view in DIAGRAM_VIEWS:
            self.query_one(".diagram", Static).update(message.texts[0])
        else:
            self.grid.plots = message.texts
        self.plots_key = message.request.key()

    @on(HistogramGrid.LayoutChanged)
    def _grid_changed(self, event: HistogramGrid.LayoutChanged) -> None:
        event.stop()
        self._titles()
        self.request_plots()
        layers = self.grid.visible_layers()
        if layers:  # the table follows the page: its first row is the page's first layer
            self.query_one(LayerTable).scroll_to(y=layers[0], animate=False)

    def settled(self) -> bool:
        """True once the pane shows the current config's complete numbers and plots."""
        return (self.shown is not None and self.shown.config == self.config
                and self.shown.result.phase == "complete" and self.plot_request is not None
                and self.plots_key == self.plot_request.key())

    def _titles(self) -> None:
        if not self.is_mounted:
            return
        grid = self.grid
        layers = grid.visible_layers()
        noun = ARCHS[self.config.arch].row_noun
        if not layers:
            span = ""
        elif len(layers) == 1:  # "layer 10 of 10", not "layers 10-10 of 10"
            span = f"{noun.removesuffix('s')} {layers[0] + 1} of {grid.layer_count}"
        else:
            span = f"{noun} {layers[0] + 1}-{layers[-1] + 1} of {grid.layer_count}"
        paging = " · PgUp/PgDn" if grid.pages > 1 else ""
        x_range = "shared x-range" if self.shared_range else "x-range per layer"
        grid.border_title = f"{VIEW_TITLES[self.view]} · {span}{paging}"
        grid.border_subtitle = f"{x_range} (x) · {self.bins} bins (h/H) · view (v)"
        diagram = self.query_one(".diagram")
        diagram.border_title = f"{VIEW_TITLES[self.view]}: {self.config.activation} · view (v)"

