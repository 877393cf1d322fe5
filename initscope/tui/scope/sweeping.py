"""The sweep screen: muP's coordinate check (or a depth sweep) for the current scheme
and activation, computed off the UI thread with a progress bar, cancelled by closing.

The sweep trains the small network of `initscope sweep` (depth 4, batch 256, 64
inputs) at every width, so a sweep takes seconds, not minutes; the scheme,
activation, learning rate, dtype and seed are the pane's. Keys: p the
parametrization, o the optimizer, d width or depth, left / right the step shown.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from initscope.report import diverged_line, slope_text, sweep_series
from initscope.sim import Config, ConfigError, MemoryBudgetError
from initscope.sim.result import Cancelled
from initscope.sim.schemes import SCHEMES
from initscope.sim.sweep import PARAMS, SweepSpec, check_sweep, runs, sweep
from initscope.tui.screens import ClosesOnce
from initscope.tui.themes import plot_colors
from initscope.tui.workers import run_in_daemon, thread_work

WIDTHS = (64, 128, 256, 512, 1024)
DEPTHS = (2, 4, 8, 16, 32, 64)
DEPTH_WIDTH = 128


def sweep_config(cfg: Config, optimizer: str) -> Config:
    """The pane's scheme, activation, lr, dtype and seed on the sweep's own network."""
    scheme = cfg.scheme
    if SCHEMES[scheme].data_init or SCHEMES[scheme].conv_only or SCHEMES[scheme].recipe:
        scheme = "he_normal"
    return Config(scheme=scheme, activation=cfg.activation, slope=cfg.slope, lr=cfg.lr,
                  dtype=cfg.dtype, seed=cfg.seed, gain=cfg.gain, mode=cfg.mode,
                  distribution=cfg.distribution, scale=cfg.scale, std=cfg.std,
                  bound=cfg.bound, value=cfg.value, momentum=cfg.momentum,
                  optimizer=optimizer, depth=4, batch=256, inputs=64, steps=3,
                  width=(DEPTH_WIDTH,), memory_limit=cfg.memory_limit)


class SweepScreen(ClosesOnce, Screen[int | None]):
    """One sweep at a time; a new choice cancels the running one."""

    DEFAULT_CSS = """
    SweepScreen {
        layout: vertical;
        padding: 0 1;
    }
    SweepScreen #sweep-title { height: auto; text-style: bold; }
    SweepScreen #sweep-caption { height: auto; border: round $accent; }
    SweepScreen #sweep-status { height: auto; }
    SweepScreen ProgressBar { height: 1; }
    SweepScreen #sweep-plot { height: 1fr; }
    SweepScreen #sweep-legend { height: auto; }
    SweepScreen #sweep-keys { height: 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape,q,W", "close", "close", show=False),
        Binding("p", "param", "parametrization", show=False),
        Binding("o", "optimizer", "optimizer", show=False),
        Binding("d", "kind", "width / depth", show=False),
        Binding("right,t", "show_step(1)", "next step", show=False),
        Binding("left,T", "show_step(-1)", "previous step", show=False),
        # in a scene: the next or previous step, past this screen
        Binding("n,pagedown", "scene(1)", "next scene step", show=False),
        Binding("pageup", "scene(-1)", "previous scene step", show=False),
    ]

    @dataclass
    class Progress(Message):
        run: int
        done: int
        total: int

    @dataclass
    class Done(Message):
        run: int
        results: list
        seconds: float

    @dataclass
    class Failed(Message):
        run: int
        error: str

    @dataclass
    class Drawn(Message):
        key: tuple
        plot: Text

    def __init__(self, cfg: Config, param: str = "mup", depths: bool = False,
                 caption: str | None = None) -> None:
        super().__init__()
        self.base = cfg
        self.param, self.optimizer, self.depths = param, "adam", depths
        self.caption = caption
        self.step_shown = 0  # the init first; right shows what the steps did
        self.results: list | None = None
        self.run_id = 0
        self.cancel: threading.Event | None = None
        self.drawn_key: tuple | None = None

    def compose(self) -> ComposeResult:
        if self.caption:  # a scene's step: its words, and the way back
            yield Static(f"{self.caption} (n: the next step, PageUp: the one before)",
                         id="sweep-caption")
        yield Static(id="sweep-title")
        yield Static(id="sweep-status")
        yield ProgressBar(show_eta=False, id="sweep-bar")
        yield Static(id="sweep-plot")
        yield Static(id="sweep-legend")
        yield Static("p sp/ntk/mup · o optimizer · d width/depth · ←/→ step · esc close",
                     id="sweep-keys")

    def on_mount(self) -> None:
        self.start()

    # ---- what runs ----------------------------------------------------------------

    def spec(self) -> SweepSpec:
        if self.depths:
            return SweepSpec(widths=(), depths=DEPTHS, steps=3, seeds=2)
        return SweepSpec(widths=WIDTHS, steps=3, seeds=3, param=self.param)

    def config(self) -> Config:
        return sweep_config(self.base, self.optimizer)

    def heading(self) -> str:
        c, spec = self.config(), self.spec()
        if self.depths:
            what = (f"Depth sweep: residual blocks at width {DEPTH_WIDTH}, depths "
                    f"{DEPTHS[0]}-{DEPTHS[-1]}, branch x 1 and x 1/sqrt(L)")
        else:
            what = (f"Coordinate check ({spec.param}, base width {spec.base_width}): widths "
                    f"{WIDTHS[0]}-{WIDTHS[-1]}")
        depth = "" if self.depths else f" · depth {c.depth}"
        return (f"{what} · {c.scheme} / {c.activation}{depth} · {c.optimizer} "
                f"lr {c.lr:g} · batch {c.batch} · {spec.seeds} seeds")

    def start(self) -> None:
        """Cancel the running sweep, check the new one's cost, start it."""
        if self.cancel is not None:
            self.cancel.set()
        self.run_id += 1
        self.results = None
        self.query_one("#sweep-title", Static).update(self.heading())
        self.query_one("#sweep-plot", Static).update("")
        self.query_one("#sweep-legend", Static).update("")
        cfg, spec = self.config(), self.spec()
        try:
            check_sweep(cfg, spec)
        except (ConfigError, MemoryBudgetError) as e:
            self.query_one("#sweep-status", Static).update(f"refused: {e}")
            return
        total = len(runs(spec))
        self.query_one(ProgressBar).update(total=total, progress=0)
        self.query_one("#sweep-status", Static).update(f"training 0 of {total} networks")
        self.cancel = threading.Event()
        self.compute(cfg, spec, self.run_id, self.cancel)

    @thread_work(group="sweep")
    def compute(self, cfg: Config, spec: SweepSpec, run_id: int,
                cancel: threading.Event) -> None:
        """The sweep, in a daemon thread that closing the screen lets go of."""
        start = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self.post_message(self.Progress(run_id, done, total))

        def target() -> None:
            try:
                results = sweep(cfg, spec, cancel, progress)
                self.post_message(self.Done(run_id, results, time.perf_counter() - start))
            except Cancelled:
                pass
            except (ConfigError, MemoryBudgetError) as e:
                self.post_message(self.Failed(run_id, str(e)))
            except Exception as e:  # a bug must not take the app down
                self.post_message(self.Failed(run_id, f"{type(e).__name__}: {e}"))

        run_in_daemon(target, cancel)

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        if message.run == self.run_id:
            self.query_one(ProgressBar).update(total=message.total, progress=message.done)
            self.query_one("#sweep-status", Static).update(
                f"training {message.done} of {message.total} networks")

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.run != self.run_id:
            return
        self.results = message.results
        runs_total = sum(len(r.points) for r in message.results)
        diverged = [line for r in message.results for line in diverged_line(r)]
        self.query_one("#sweep-status", Static).update(
            f"{runs_total} networks trained in {message.seconds:.1f} s"
            + (f"; {diverged[-1]}" if diverged else ""))
        self.draw()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        if message.run == self.run_id:
            self.query_one("#sweep-status", Static).update(f"failed: {message.error}")

    # ---- what is shown ------------------------------------------------------------

    def draw(self) -> None:
        """Ask for the plot of the shown step at the plot's size (off the UI thread)."""
        if not self.results:
            return
        plot = self.query_one("#sweep-plot", Static)
        # one row less: plotext draws the x labels below the height it is given
        width, height = max(plot.content_size.width, 20), max(plot.content_size.height - 1, 6)
        key = (self.run_id, self.step_shown, width, height)
        result = self.results[-1] if self.depths else self.results[0]
        if self.depths:  # both multipliers on one plot: the stream of each
            legend = "  ".join(f"{m} stream, branch x {r.branch}: slope "
                               f"{slope_text(r.slopes()[self.step_shown, 0])}"
                               for m, r in zip("us", self.results))
        else:
            slopes = result.slopes()
            legend = "  ".join(f"{m} {name} {slope_text(slopes[self.step_shown, i])}"
                               for i, (m, name) in enumerate(sweep_series(result)))
        noun = "depth" if self.depths else "width"
        self.query_one("#sweep-legend", Static).update(
            f"step {self.step_shown} of {result.spec.steps} (0: the init): mean |h| against "
            f"{noun}, log-log; slopes: {legend}")
        self.render_plot(list(self.results), self.step_shown, self.depths, width, height,
                         plot_colors(self.app), key)

    @thread_work(group="sweep-draw", exclusive=True)
    def render_plot(self, results: list, step: int, depths: bool, width: int, height: int,
                    colors: tuple[str, str], key: tuple) -> None:
        from initscope.plots import log_lines_text, sweep_text

        bar, axis = colors
        palette = (bar, "magenta", "cyan", "green", "yellow", "red", "blue")
        if depths:
            series = tuple((m, tuple(float(v) for v in r.mean_l1()[:, step, 0]))
                           for m, r in zip("us", results))
            text = log_lines_text(series, width, height, palette, axis,
                                  xs=tuple(float(s) for s in results[0].sizes))
        else:
            text = sweep_text(results[0], step, width, height, palette, axis)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Drawn(key, text))

    @on(Drawn)
    def _drawn(self, message: Drawn) -> None:
        if message.key[:2] == (self.run_id, self.step_shown):
            self.query_one("#sweep-plot", Static).update(message.plot)
            self.drawn_key = message.key

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    # ---- keys -----------------------------------------------------------------------

    def action_param(self) -> None:
        if not self.depths:
            self.param = PARAMS[(PARAMS.index(self.param) + 1) % len(PARAMS)]
            self.start()

    def action_optimizer(self) -> None:
        self.optimizer = "sgd" if self.optimizer == "adam" else "adam"
        self.start()

    def action_kind(self) -> None:
        self.depths = not self.depths
        self.start()

    def action_show_step(self, delta: int) -> None:
        steps = self.spec().steps
        self.step_shown = (self.step_shown + delta) % (steps + 1)
        self.draw()

    def action_close(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
        self.dismiss()

    def action_scene(self, delta: int) -> None:
        if self.caption is not None:
            if self.cancel is not None:
                self.cancel.set()
            self.dismiss(delta)
