"""The main screen: the selectors, one scope pane, training, scenes and export.

Everything here reacts to messages: the pane says when new numbers are on screen
or a run failed, the training worker says how far it got, the compare screen
hands back the config it ended on.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from initscope.report import fmt, render_report
from initscope.scenes import Scene
from initscope.sim import Config
from initscope.sim.arch import ARCHS
from initscope.sim.remote import shared_simulator
from initscope.sim.training import Stop
from initscope.tui.exporting import (
    SERVED_NOTE,
    export_folder,
    export_stem,
    free_stem,
    served,
    write_new,
)
from initscope.tui.scope.compare import CompareScreen
from initscope.tui.scope.editing import ScopeScreen
from initscope.tui.scope.inspecting import InspectScreen
from initscope.tui.scope.pane import ScopePane
from initscope.tui.scope.sweeping import SweepScreen
from initscope.tui.scope.training import (
    TRAIN_GROUP,
    TrainingProgress,
    TrainingSession,
    start_training,
)
from initscope.tui.screens import EditScreen, is_open
from initscope.tui.widgets.footer import KeyFooter
from initscope.tui.widgets.selectors import SelectorPane
from initscope.tui.widgets.training import (
    MAX_LAYER_ROWS,
    TRAIN_METRICS,
    TrainingPanel,
    TrainingView,
)
from initscope.tui.workers import thread_work


class MainScreen(ScopeScreen):
    """One network: selectors on the left, its pane on the right."""

    trains = True

    BINDINGS = [
        Binding("space", "toggle_training", "Train", id="action-train", show=True,
                tooltip="start or pause SGD training on the config's task"),
        Binding("full_stop", "train_step", "One step", id="action-train-step", show=False,
                tooltip="one training step (while paused)"),
        Binding("R", "reset_training", "Reset training", id="action-train-reset", show=False,
                tooltip="back to the freshly initialized network"),
        Binding("l", "step('lr', 1)", "lr x2", id="action-lr-up", show=False,
                tooltip="double the learning rate (resets training)"),
        Binding("L", "step('lr', -1)", "lr /2", id="action-lr-down", show=False,
                tooltip="halve the learning rate (resets training)"),
        Binding("o", "step('optimizer', 1)", "Optimizer", id="action-optimizer", show=False,
                tooltip="SGD or Adam (resets training)"),
        Binding("m", "train_metric", "Training rows", id="action-train-metric", show=False,
                tooltip="training panel's layer rows: activation std, gradient norm, dead "
                        "or saturated share, |activation| heatmap"),
        Binding("e", "export", "Export", id="action-export", show=False,
                tooltip="save an SVG screenshot and the numbers as CSV and JSON"),
        Binding("C", "compare", "Compare", id="action-compare", show=False,
                tooltip="A | B: two configs side by side on the same draws"),
        Binding("F", "open_checkpoint", "Inspect a checkpoint", id="action-inspect",
                show=False, tooltip="a checkpoint's tensors: the scheme each matches, its "
                                    "histogram, what its dense chain does"),
        Binding("W", "sweep", "Width sweep", id="action-sweep", show=False,
                tooltip="muP's coordinate check: mean |h| against width after a few steps "
                        "(sp, ntk, mup), or a depth sweep"),
        # priority: the page keys page the plots even while a selector has the focus
        Binding("pagedown", "page(1)", "Next layers", id="action-page-down", show=False,
                priority=True, tooltip="next page of layer histograms (in a scene: the next "
                                       "step)"),
        Binding("pageup", "page(-1)", "Previous layers", id="action-page-up", show=False,
                priority=True, tooltip="previous page of layer histograms (in a scene: the "
                                       "previous step)"),
        Binding("n", "scene_step(1)", "Next scene step", id="action-scene-next", show=False,
                tooltip="scenes: the next step"),
        Binding("p", "scene_step(-1)", "Previous scene step", id="action-scene-back",
                show=False, tooltip="scenes: the previous step"),
        Binding("ctrl+home", "jump(False)", "First layers", id="action-first", show=False,
                priority=True),
        Binding("ctrl+end", "jump(True)", "Last layers", id="action-last", show=False,
                priority=True),
    ]

    def __init__(self, config: Config, *, scene: Scene | None = None,
                 compare: tuple[Config, Config] | None = None, timings: bool = True,
                 inspect: str | None = None) -> None:
        super().__init__(id="main-screen")
        self.scene = scene
        self.inspect_start = inspect
        self.scene_index = 0
        self.compare_start = compare
        self.sim = shared_simulator()  # the core in its own process
        first = scene.steps[0] if scene is not None else None
        self.pane = ScopePane(first.config if first else config, self.sim,
                              view=first.view if first else "activation", timings=timings,
                              id="scope")
        self.session = TrainingSession(self.pane.config)
        self.training = False
        self._train_worker: Worker | None = None
        self._train_failure: str | None = None
        self._train_notes: list[str] = []  # the trainer's warnings, shown under the head
        self._train_stop: Stop | None = None  # why training stopped (diverged), if it did
        self.train_metric = TRAIN_METRICS[0]  # what the training panel's layer rows show

    @property
    def active_pane(self) -> ScopePane:
        return self.pane

    @property
    def shown_history(self) -> list:
        """The training records on screen (empty before the first step)."""
        return self.query_one(TrainingPanel).data.history

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield SelectorPane(self.pane.config)
            with Vertical(id="right"):
                yield Static("", id="caption")
                yield self.pane
                yield TrainingPanel()
        yield Static("", id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#sel-scheme").focus()
        if self.scene is not None:
            self.show_scene_step(0)
        if self.compare_start is not None:
            self.app.push_screen(CompareScreen(*self.compare_start, self.sim,
                                               self.pane.view), self._back_from_compare)
        if self.inspect_start is not None:
            self._inspect(self.inspect_start)

    def on_screen_resume(self) -> None:
        # The app's size classes (-narrow, -short) change while another screen is on
        # top, and Textual restyles only the screens it shows: catch up on return.
        self.app.update_styles(self)

    # ---- the pane's news --------------------------------------------------------------

    def on_scope_pane_shown(self, message: ScopePane.Shown) -> None:
        display = message.display
        self.set_status(self.pane.summary(display), warnings=display.result.warnings)

    def on_scope_pane_failed(self, message: ScopePane.Failed) -> None:
        self.training = False
        self.notify(message.error, title="Run failed", severity="error", timeout=8)
        self.set_status(message.error, error=True)

    def _config_changed(self) -> None:
        cfg = self.pane.config
        self._stop_training(reset=True)
        self.set_status(f"running {cfg.scheme} · {cfg.activation} · "
                        f"{ARCHS[cfg.arch].shape(cfg)}…")

    def propose(self, **changes) -> bool:
        before = self.pane.config
        applied = super().propose(**changes)
        if applied and self.pane.config != before:
            self._config_changed()
        return applied

    def say_error(self, message: str) -> None:
        super().say_error(message)
        self.set_status(message, error=True)

    def set_status(self, text: str, warnings: list[str] | None = None,
                   error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.set_class(error, "error")
        status.set_class(bool(warnings), "warn")
        line = text if not warnings else f"{text}  ⚠ " + " · ".join(warnings)
        status.update(line, layout=False)  # fixed height: no layout pass

    # ---- training -----------------------------------------------------------------------

    def action_toggle_training(self) -> None:
        if self.training:
            self._stop_training(reset=False)
        else:
            self._start_training(None)
        self._show_training()

    def action_train_step(self) -> None:
        if not self.training:
            self._train_worker = start_training(self, self.session, self.sim, 1)

    def action_train_metric(self) -> None:
        self.train_metric = TRAIN_METRICS[(TRAIN_METRICS.index(self.train_metric) + 1)
                                          % len(TRAIN_METRICS)]
        if not self.shown_history:
            self.notify(f"the training panel will show {self.train_metric} per layer: "
                        "train first (space)", timeout=4)
        self._show_training()

    def action_reset_training(self) -> None:
        self._stop_training(reset=True)
        self.pane.rerun()

    def _start_training(self, steps: int | None) -> None:
        self.training = True
        self._train_failure = None
        self._train_worker = start_training(self, self.session, self.sim, steps)

    def _stop_training(self, reset: bool) -> None:
        self.training = False
        self.workers.cancel_group(self, TRAIN_GROUP)
        if reset:
            self._train_failure = None
            self._train_notes, self._train_stop = [], None
            self.session = TrainingSession(self.pane.config)
            self.pane.frozen = False
            self.query_one(TrainingPanel).data = TrainingView()
            self.remove_class("-training")

    def on_training_progress(self, message: TrainingProgress) -> None:
        if message.session is not self.session or message.display.config != self.pane.config:
            return  # from a network since reset, or for an outdated config
        if message.stopped_by is not None and message.stopped_by is self._train_worker:
            self.training = False  # paused, a single step done, or diverged
        self.pane.frozen = True  # the pane shows the trained weights from now on
        self.pane.show(message.display)
        self._train_notes, self._train_stop = message.notes, message.stop
        self._show_training(message.history)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed worker is reported by name; a failed training stops training."""
        if event.state != WorkerState.ERROR:
            return
        error = f"{type(event.worker.error).__name__}: {event.worker.error}"
        if event.worker.group == TRAIN_GROUP:
            self.training = False
            self._train_failure = error
            self._show_training()
            self.notify(error, title="Training stopped", severity="error", timeout=8)
            self.set_status(f"training stopped: {error}", error=True)
        else:
            self.notify(error, title=f"{event.worker.name or 'worker'} failed",
                        severity="error")

    def _show_training(self, history: list | None = None) -> None:
        panel = self.query_one(TrainingPanel)
        history = history if history is not None else panel.data.history
        self.set_class(bool(history) or self._train_failure is not None, "-training")
        if not history and self._train_failure is None:
            panel.data = TrainingView()  # nothing to show before the first step
            return
        cfg = self.pane.config
        last = history[-1] if history else None
        if self._train_failure is not None and not self.training:
            state = f"stopped: {self._train_failure} (R resets)"
        elif self._train_stop is not None:
            state = "init overflows" if self._train_stop.at_init else "diverged"
        elif self.training:
            state = "training…"
        else:
            state = "paused (space: go on, .: one step, R: reset)"
        how = "adam" if cfg.optimizer == "adam" else "sgd" + (
            f" momentum {cfg.momentum:g}" if cfg.momentum else "")
        head = (f"{cfg.task} · {how} lr {cfg.lr:g}"
                + (f" · step {last.step} · loss {fmt(last.loss)}" if last else "")
                + f" · {state}")
        layers = self.pane.grid.visible_layers()[:MAX_LAYER_ROWS]
        panel.data = TrainingView(head, history, cfg.widths(), layers, list(self._train_notes),
                                  self.train_metric)

    # ---- scenes and paging --------------------------------------------------------------

    def action_page(self, delta: int) -> None:
        if self.scene is not None:  # presenter clickers send PageDown / PageUp
            self.action_scene_step(delta)
        else:
            self.pane.grid.turn(delta)

    def action_jump(self, last: bool) -> None:
        self.pane.grid.jump(last)

    def action_scene_step(self, delta: int) -> None:
        if self.scene is None:
            self.notify("no scene: start initscope with --scene NAME (see initscope scenes)",
                        severity="warning", timeout=4)
            return
        index = min(max(self.scene_index + delta, 0), len(self.scene.steps) - 1)
        if index != self.scene_index:
            self.show_scene_step(index)

    def show_scene_step(self, index: int) -> None:
        """Show one step: its caption, its view, its config, and its training."""
        scene, step = self.scene, self.scene.steps[index]
        self.scene_index = index
        caption = self.query_one("#caption", Static)
        caption.display = True
        caption.border_title = f"{scene.title} · step {index + 1} of {len(scene.steps)}"
        caption.border_subtitle = "n / p (PageDown / PageUp) to move"
        caption.update(step.caption)
        self.set_view(step.view)
        if step.config != self.pane.config:
            self.pane.config = step.config
            self.query_one(SelectorPane).config = step.config
        else:
            self.pane.rerun()
        self._stop_training(reset=True)  # a new session, for the step's config
        if step.train:
            self._start_training(step.train)
        if step.sweep and not is_open(self.app, SweepScreen):
            self.app.push_screen(SweepScreen(
                step.config, param=step.sweep if step.sweep != "depth" else "mup",
                depths=step.sweep == "depth", caption=step.caption), self._after_sweep)

    def _after_sweep(self, delta: int | None) -> None:
        """Back from a scene's sweep: n or PageUp there moves the scene on."""
        if delta:
            self.call_after_refresh(self.action_scene_step, delta)

    # ---- compare and export -------------------------------------------------------------

    def action_open_checkpoint(self) -> None:
        if not is_open(self.app, InspectScreen):
            self.app.push_screen(EditScreen("checkpoint file (.safetensors, .npz, .pt)", ""),
                                 self._inspect)

    def _inspect(self, path: str | None) -> None:
        if path:
            self.app.push_screen(InspectScreen(path.strip(), self.pane.config.activation,
                                               self.pane.config.memory_limit))

    def action_sweep(self) -> None:
        if not is_open(self.app, SweepScreen):
            self.app.push_screen(SweepScreen(self.pane.config))

    def action_compare(self) -> None:
        if not is_open(self.app, CompareScreen):
            self._stop_training(reset=True)
            self.pane.rerun()
            cfg = self.pane.config
            self.app.push_screen(CompareScreen(cfg, cfg, self.sim, self.pane.view),
                                 self._back_from_compare)

    def _back_from_compare(self, config: Config | None) -> None:
        if config is not None:
            self.propose(**config.__dict__)

    def export_stem(self) -> str:
        """A file name that says what the config was (and how far training went)."""
        shown = self.pane.shown
        return export_stem(self.pane.config, shown.result.step if shown else 0)

    def action_export(self) -> None:
        """SVG of the screen, and the shown numbers as CSV and JSON, side by side."""
        if self.pane.shown is None:
            return
        if served():
            self.notify(SERVED_NOTE, severity="warning", timeout=6)
            return
        folder = export_folder()
        wanted = self.export_stem()
        stem = free_stem(folder, wanted)
        screenshot = self.app.export_screenshot()  # the screen as it is now
        self.write_export(self.pane.shown.result, folder / stem, screenshot, self.pane.bins,
                          self.pane.shared_range, stem != wanted)

    @thread_work(group="export")
    def write_export(self, result, base: Path, screenshot: str, bins: int, shared: bool,
                     numbered: bool) -> None:
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            write_new(base.parent / f"{base.name}.svg", screenshot)
            write_new(base.parent / f"{base.name}.csv", render_report(result, "csv"))
            write_new(base.parent / f"{base.name}.json",
                      render_report(result, "json", bins, shared))
        except OSError as e:
            self.app.call_from_thread(self.notify, f"could not export to {base.parent}: {e}",
                                      severity="error")
            return
        kept = "\n(an earlier export of this config is kept)" if numbered else ""
        self.app.call_from_thread(
            self.notify, f"saved {base}.svg\nand {base.name}.csv, .json{kept}",
            title="Exported", timeout=5)

    def settled(self) -> bool:
        return self.pane.settled()

