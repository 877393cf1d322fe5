"""The initscope app: one reactive config, keys that propose changes, one worker.

Data flows one way: a key or a selector proposes a change; the app validates it
and replaces the frozen config; `watch_config` starts the simulation worker; the
worker posts the result; widgets redraw. Results for an outdated config are
dropped, so the screen always ends on the last config's numbers.
"""

from __future__ import annotations

import gc
import math
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from initscope.codegen import snippets
from initscope.presets import PRESETS, PRESETS_BY_NAME
from initscope.report import fmt, render_report
from initscope.scenes import Scene
from initscope.sim import Cancelled, Config, ConfigError, MemoryBudgetError, Simulator, validate
from initscope.sim.config import parse_width
from initscope.sim.meanfield import config_sigmas
from initscope.sim.memory import runnable
from initscope.sim.schemes import SCHEMES
from initscope.sim.share import encode
from initscope.sim.training import Trainer
from initscope.tui.commands import InitScopeCommands, SteadyCommandPalette
from initscope.tui.compare import CompareScreen
from initscope.tui.display import (
    DIAGRAM_VIEWS,
    ROW_NOUN,
    VIEW_TITLES,
    VIEWS,
    Display,
    PlotRequest,
    build_display,
    plot_texts,
)
from initscope.tui.messages import (
    PlotsReady,
    SimulationFailed,
    SimulationResult,
    TrainingProgress,
)
from initscope.tui.screens import CodeScreen, EditScreen, HelpScreen
from initscope.tui.themes import DEFAULT_THEME, load_themes, rich_color
from initscope.tui.widgets.footer import KeyFooter
from initscope.tui.widgets.histograms import HistogramGrid
from initscope.tui.widgets.selectors import (
    FIELDS_BY_NAME,
    Selector,
    SelectorPane,
    as_config_value,
    current,
    show_value,
    stepped,
)
from initscope.tui.widgets.sparklines import SparklinePanel
from initscope.tui.widgets.table import LayerTable
from initscope.tui.widgets.training import MAX_LAYER_ROWS, TrainingPanel
from initscope.tui.workers import thread_work

POLL_SECONDS = 0.02  # how often a waiting worker checks whether it was cancelled
TRAIN_POST_SECONDS = 0.25  # how often training shows its progress
IDLE_COLLECT_SECONDS = 10.0  # full garbage collections wait for a quiet moment


class TrainState:
    """The network being trained and its records; owned by the training worker."""

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.history: list = []
        self.lock = threading.Lock()


def _step(field: str, delta: int, key: str, description: str, show: bool = False) -> Binding:
    return Binding(key, f"step('{field}', {delta})", description, show=show,
                   id=f"{field}-{'up' if delta > 0 else 'down'}",
                   tooltip=f"{'next' if delta > 0 else 'previous'} {field}")


class InitScopeApp(App):
    """See what weight initialization does to a network, layer by layer."""

    TITLE = "initscope"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {InitScopeCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True, id="action-quit", tooltip="quit at once"),
        Binding("question_mark", "help", "Help", id="action-help", tooltip="every key"),
        _step("scheme", 1, "s", "Scheme", show=True),
        _step("scheme", -1, "S", "Previous scheme"),
        _step("activation", 1, "a", "Activation", show=True),
        _step("activation", -1, "A", "Previous activation"),
        _step("depth", -1, "left_square_bracket", "Depth -", show=True),
        _step("depth", 1, "right_square_bracket", "Depth +", show=True),
        _step("width", -1, "left_curly_bracket", "Width -"),
        _step("width", 1, "right_curly_bracket", "Width +"),
        _step("gain", -1, "G", "Gain -"),
        _step("gain", 1, "g", "Gain +"),
        _step("bias", 1, "b", "Bias", show=True),
        Binding("r", "new_seed", "New seed", id="action-seed", show=True,
                tooltip="draw new random weights and inputs"),
        Binding("v", "cycle_view(1)", "View", id="action-view", show=True,
                tooltip="activations, pre-activations, gradients, weight gradients"),
        Binding("V", "cycle_view(-1)", "Previous view", id="action-view-back", show=False),
        Binding("x", "toggle_range", "Range", id="action-range", show=True,
                tooltip="histogram x-range shared across layers, or per layer"),
        Binding("t", "cycle_theme", "Theme", id="action-theme", show=False,
                tooltip="next theme"),
        Binding("shift+right", "sigma(0.1, 0)", "σw² +", id="sigma-w-up", show=False,
                tooltip="raise sigma_w^2 = fan_in Var(W) by 0.1 (through the gain)"),
        Binding("shift+left", "sigma(-0.1, 0)", "σw² -", id="sigma-w-down", show=False,
                tooltip="lower sigma_w^2 by 0.1"),
        Binding("shift+up", "sigma(0, 0.02)", "σb² +", id="sigma-b-up", show=False,
                tooltip="raise the bias variance sigma_b^2 by 0.02 (normal biases)"),
        Binding("shift+down", "sigma(0, -0.02)", "σb² -", id="sigma-b-down", show=False,
                tooltip="lower sigma_b^2 by 0.02"),
        Binding("i", "init_step(1)", "Init iteration", id="action-init-next", show=False,
                tooltip="lsuv, data_dependent: show the next iteration of the init"),
        Binding("I", "init_step(-1)", "Init iteration back", id="action-init-back", show=False,
                tooltip="lsuv, data_dependent: show the previous iteration"),
        Binding("c", "code", "Code", id="action-code", show=False,
                tooltip="the config as PyTorch, Keras and JAX code, and its share string"),
        Binding("e", "export", "Export", id="action-export", show=False,
                tooltip="save an SVG screenshot and the numbers as CSV and JSON"),
        Binding("C", "compare", "Compare", id="action-compare", show=False,
                tooltip="A | B: two configs side by side on the same draws"),
        Binding("space", "toggle_training", "Train", id="action-train", show=True,
                tooltip="start or pause SGD training on the config's task"),
        Binding("full_stop", "train_step", "One step", id="action-train-step", show=False,
                tooltip="one training step (while paused)"),
        Binding("R", "reset_training", "Reset training", id="action-train-reset", show=False,
                tooltip="back to the freshly initialized network"),
        Binding("pagedown", "page(1)", "Next layers", id="action-page-down", show=False,
                tooltip="next page of layer histograms (in a scene: the next step)"),
        Binding("pageup", "page(-1)", "Previous layers", id="action-page-up", show=False,
                tooltip="previous page of layer histograms (in a scene: the previous step)"),
        Binding("n", "scene_step(1)", "Next scene step", id="action-scene-next", show=False,
                tooltip="scenes: the next step"),
        Binding("p", "scene_step(-1)", "Previous scene step", id="action-scene-back",
                show=False, tooltip="scenes: the previous step"),
        Binding("ctrl+home", "jump(False)", "First layers", id="action-first", show=False),
        Binding("ctrl+end", "jump(True)", "Last layers", id="action-last", show=False),
        *[Binding(p.key, f"preset('{p.name}')", f"Preset: {p.title}", show=False,
                  id=f"preset-{p.name}", tooltip=p.description) for p in PRESETS if p.key],
    ]

    config: reactive[Config] = reactive(Config, init=False)
    view: reactive[str] = reactive("activation", init=False)

    def __init__(self, config: Config | None = None, theme_name: str | None = None,
                 timings: bool = True, scene: Scene | None = None,
                 compare: tuple[Config, Config] | None = None) -> None:
        """`timings=False` keeps run times off the screen (for snapshot tests); a scene
        starts at its first step."""
        super().__init__()
        self.scene = scene
        self.scene_index = 0
        self.compare_start = compare
        if scene is not None:
            config = scene.steps[0].config
        self.timings = timings
        self.plots_key: tuple | None = None
        self.set_reactive(InitScopeApp.config, validate(config or Config()))
        self.requested_theme = theme_name
        self.sim = Simulator()
        self.shown: Display | None = None
        self.plot_request: PlotRequest | None = None
        self.theme_errors: list[str] = []
        self.train_state = TrainState()
        self.train_history: list = []  # the records shown, a copy made by the worker
        self.training = False
        self._train_worker: Worker | None = None
        self._register_themes()

    # ---- set-up -------------------------------------------------------------------

    def _register_themes(self) -> None:
        themes, self.theme_errors = load_themes()
        for theme in themes:
            self.register_theme(theme)
        names = {t.name for t in themes} | set(self.available_themes)
        wanted = self.requested_theme or DEFAULT_THEME
        if wanted not in names:
            self.theme_errors.append(f"theme {wanted!r} not found")
            wanted = DEFAULT_THEME if DEFAULT_THEME in names else "textual-dark"
        self.theme = wanted

    def get_theme_variable_defaults(self) -> dict[str, str]:
        theme = self.current_theme
        fallback_axis = "#A0A0A0" if theme.dark else "#505050"
        return {
            "histogram-bar": theme.primary,
            "histogram-axis": theme.foreground or fallback_axis,
            "sparkline-measured": theme.primary,
            "sparkline-theory": theme.accent or theme.secondary or theme.primary,
        }

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield SelectorPane(self.config)
            with Vertical(id="right"):
                yield Static("", id="caption")
                yield HistogramGrid()
                yield Static("", id="phase-view")
                yield SparklinePanel()
                yield TrainingPanel()
                yield LayerTable()
        yield Static("", id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        # Full garbage collections walked every widget and cached strip, stalling the
        # screen for 20-40 ms now and then: keep start-up objects out of them, and
        # collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        # ...and collect the cycles that leaves behind while nothing is running
        self.set_interval(IDLE_COLLECT_SECONDS, self._idle_collect)
        if self.theme_errors:
            self.notify("\n".join(self.theme_errors), title="Some themes did not load",
                        severity="warning", timeout=8)
        self.theme_changed_signal.subscribe(self, lambda _theme: self.request_plots())
        self.query_one(HistogramGrid).set_layers(self.config.row_count())
        self._set_titles()
        self.query_one("#sel-scheme", Selector).focus()
        self.simulate(self.config)
        if self.scene is not None:
            self.show_scene_step(0)
        if self.compare_start is not None:
            self.push_screen(CompareScreen(*self.compare_start))

    async def on_event(self, event: events.Event) -> None:
        # Keys still queued when the app shuts down would act on screens already gone
        if isinstance(event, events.InputEvent) and not self.is_running:
            return
        await super().on_event(event)

    def on_resize(self, event: events.Resize) -> None:
        # the event's size: the app's own is updated after this handler. On the app,
        # not the screen on top: a dialog may be up during the resize.
        width, height = event.size
        self.set_class(width < 120, "-narrow")
        self.set_class(height < 36, "-short")
        if self.view in DIAGRAM_VIEWS:  # the histogram grid asks for itself
            self.call_after_refresh(self.request_plots)

    def _idle_collect(self) -> None:
        if not any(w.is_running for w in self.workers):
            gc.collect()

    # ---- proposing changes ----------------------------------------------------------

    def propose(self, **changes) -> bool:
        """Replace the config if the change is valid and fits in memory; otherwise say
        why and change nothing. In compare mode the active side takes the change."""
        if isinstance(self.screen, CompareScreen):
            return self.screen.propose(**changes)
        try:
            new = runnable(replace(self.config, **changes))
        except (ConfigError, MemoryBudgetError) as e:
            self.notify(str(e), title="Not applied", severity="error", timeout=6)
            self._set_status(str(e), error=True)
            return False
        self.config = new
        return True

    def watch_config(self, old: Config, new: Config) -> None:
        self._stop_training(reset=True)
        self.query_one(SelectorPane).show(new)
        self.query_one(HistogramGrid).set_layers(new.row_count())
        self._set_titles()
        self._set_status(f"running {new.scheme} · {new.activation} · depth {new.depth}…")
        self.simulate(new)

    def watch_view(self) -> None:
        diagram = self.view in DIAGRAM_VIEWS
        self.query_one(HistogramGrid).display = not diagram
        self.query_one("#phase-view").display = diagram
        # on a short terminal a diagram takes the room of the sparklines and table
        self.query_one("#right").set_class(diagram, "-diagram")
        self._set_titles()
        self.call_after_refresh(self.request_plots)  # once the panel has its new size

    def action_init_step(self, delta: int) -> None:
        """Walk through a data-dependent init: iteration 0 (the start), 1, ..., all."""
        if self._single_view_only():
            return
        if not SCHEMES[self.config.scheme].data_init:
            self.notify("iterations belong to the lsuv and data_dependent schemes",
                        severity="warning", timeout=3)
            return
        total = self.shown.result.init_iterations if self.shown else 0
        order = list(range(total + 1)) + [-1]
        now = self.config.init_steps if self.config.init_steps in order else -1
        self.propose(init_steps=order[(order.index(now) + delta) % len(order)])

    def action_sigma(self, d_w2: float, d_b2: float) -> None:
        """Move the config on the phase diagram: sigma_w^2 through the gain, sigma_b^2
        through normal biases."""
        cfg = self.current_config()
        sw2, sb2 = config_sigmas(cfg)
        changes = {}
        if d_w2:
            if sw2 <= 0:
                self.notify("zero weights have no sigma_w^2 to scale: pick a random scheme",
                            severity="warning")
                return
            target = max(round(sw2 + d_w2, 6), 0.01)
            changes["gain"] = cfg.gain * math.sqrt(target / sw2)
        if d_b2:
            changes.update(bias="normal", bias_value=math.sqrt(max(round(sb2 + d_b2, 6), 0.0)))
        self.propose(**changes)

    def current_config(self) -> Config:
        """The config that keys change: the app's, or in compare mode the active side's."""
        if isinstance(self.screen, CompareScreen):
            return self.screen.sides[self.screen.active]
        return self.config

    def _single_view_only(self) -> bool:
        """True (after saying so) when the compare view is up."""
        if isinstance(self.screen, CompareScreen):
            self.notify("not in compare: Esc goes back to one network", timeout=3)
            return True
        return False

    def action_step(self, field: str, delta: int) -> None:
        spec = FIELDS_BY_NAME[field]
        value = stepped(spec, current(self.current_config(), field), delta)
        self.propose(**{field: as_config_value(field, value)})

    def action_new_seed(self) -> None:
        self.propose(seed=self.current_config().seed + 1)

    def action_toggle_range(self) -> None:
        shared = self.current_config().hist_range == "shared"
        self.propose(hist_range="layer" if shared else "shared")

    def action_preset(self, name: str) -> None:
        self.apply_preset(name)

    def apply_preset(self, name: str) -> None:
        preset, cfg = PRESETS_BY_NAME[name], self.current_config()
        if self.propose(**{k: v for k, v in preset.apply(cfg).__dict__.items()
                           if getattr(cfg, k) != v}):
            self.notify(preset.description, title=preset.title, timeout=4)

    def action_cycle_view(self, delta: int) -> None:
        self.set_view(VIEWS[(VIEWS.index(self.view) + delta) % len(VIEWS)])

    def set_view(self, view: str) -> None:
        self.view = view

    def action_page(self, delta: int) -> None:
        if self.scene is not None:  # presenter clickers send PageDown / PageUp
            self.action_scene_step(delta)
        else:
            self.query_one(HistogramGrid).turn(delta)

    def action_scene_step(self, delta: int) -> None:
        if self._single_view_only():
            return
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
        self.view = step.view
        if step.config != self.config:
            self.config = step.config
        else:
            self._stop_training(reset=True)
            self.simulate(self.config)
        if step.train:
            self.training = True
            self._train_worker = self.train(self.config, self.train_state, step.train)

    def action_jump(self, last: bool) -> None:
        self.query_one(HistogramGrid).jump(last)

    def action_cycle_theme(self) -> None:
        names = sorted(self.available_themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_compare(self) -> None:
        if not self._is_open(CompareScreen):
            self._stop_training(reset=True)
            self.push_screen(CompareScreen(self.config, self.config))

    def action_command_palette(self) -> None:
        if self.use_command_palette and not self._is_open(SteadyCommandPalette):
            self.push_screen(SteadyCommandPalette(id="--command-palette"))

    def _is_open(self, kind: type) -> bool:
        """Whether a screen of this kind is up already (its key pressed twice fast)."""
        return any(isinstance(screen, kind) for screen in self.screen_stack)

    def action_code(self) -> None:
        cfg = self.current_config()
        if not self._is_open(CodeScreen):
            self.push_screen(CodeScreen(snippets(cfg), encode(cfg)))

    def export_stem(self) -> str:
        """A file name that says what the config was."""
        c = self.config
        width = "-".join(map(str, c.width[:3]))
        step = f"-step{self.shown.result.step}" if self.shown and self.shown.result.step else ""
        return (f"initscope-{c.arch}-{c.scheme}-{c.activation}-d{c.row_count()}-w{width}"
                f"-s{c.seed}{step}")

    def action_export(self) -> None:
        """SVG of the screen, and the shown numbers as CSV and JSON, side by side."""
        if self.shown is None or self._single_view_only():
            return
        folder = Path(os.environ.get("INITSCOPE_EXPORT_DIR") or Path.cwd())
        stem = self.export_stem()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            svg = self.save_screenshot(f"{stem}.svg", str(folder))
        except OSError as e:
            self.notify(f"could not write to {folder}: {e}", severity="error")
            return
        self.write_numbers(self.shown.result, folder / stem, svg)

    @thread_work(group="export")
    def write_numbers(self, result, base: Path, svg: str) -> None:
        try:
            base.with_suffix(".csv").write_text(render_report(result, "csv"))
            base.with_suffix(".json").write_text(render_report(result, "json"))
        except OSError as e:
            self.call_from_thread(self.notify, f"could not write the numbers: {e}",
                                  severity="error")
            return
        self.call_from_thread(self.notify, f"saved {svg}\nand {base.name}.csv, .json",
                              title="Exported", timeout=5)

    def action_help(self) -> None:
        rows = [(self._key_label(b.key), b.description) for b in self.BINDINGS]
        rows.append(("ctrl+p", "command palette"))
        if not self._is_open(HelpScreen):
            self.push_screen(HelpScreen(rows))

    @staticmethod
    def _key_label(key: str) -> str:
        names = {"left_square_bracket": "[", "right_square_bracket": "]",
                 "left_curly_bracket": "{", "right_curly_bracket": "}",
                 "question_mark": "?"}
        return names.get(key, key)

    @on(Selector.Changed)
    def _selector_changed(self, event: Selector.Changed) -> None:
        self.propose(**{event.field: event.value})

    @on(Selector.EditRequested)
    def _selector_edit(self, event: Selector.EditRequested) -> None:
        field = event.field
        spec = FIELDS_BY_NAME[field]

        def done(text: str | None) -> None:
            if text is None:
                return
            text = text.strip()
            if spec.choices:
                self.propose(**{field: text})
                return
            try:
                if field == "width":
                    value = parse_width(text)
                else:
                    value = int(text) if spec.integer else float(text)
            except (ValueError, ConfigError):
                message = f"{spec.label.strip()} needs a number, not {text!r}"
                self.notify(message, severity="error", title="Not applied")
                self._set_status(message, error=True)
                return
            self.propose(**{field: value})

        if not self._is_open(EditScreen):
            self.push_screen(EditScreen(spec.label.strip(), show_value(self.config, field)),
                             done)

    # ---- the simulation worker --------------------------------------------------------

    @thread_work(group="simulate", exclusive=True)
    def simulate(self, cfg: Config) -> None:
        """Run `cfg` in a daemon thread and wait for it, checking for cancellation, so
        that a newer config or quitting never waits for a long layer to finish."""
        worker = get_current_worker()
        cancel = threading.Event()
        done = threading.Event()

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
            finally:
                done.set()

        threading.Thread(target=target, name="initscope-run", daemon=True).start()
        while not done.wait(POLL_SECONDS):
            if worker.is_cancelled:
                cancel.set()
                return

    def on_simulation_result(self, message: SimulationResult) -> None:
        display = message.display
        if display.config != self.config or self.train_state.history:
            return  # an outdated config, or training has moved the weights on
        self._show(display)

    def _show(self, display: Display) -> None:
        self.shown = display
        with self.batch_update():
            sparklines = self.query_one(SparklinePanel)
            sparklines.show(display.series)
            sparklines.border_subtitle = display.theory_note or ""
            self.query_one(LayerTable).show(display.table_text)
            summary = display.summary if self.timings else display.summary.split(" — ")[0]
            self._set_status(summary, warnings=display.result.warnings)
        self.request_plots()

    def on_simulation_failed(self, message: SimulationFailed) -> None:
        if message.config == self.config:
            self.training = False
            self.notify(message.error, title="Run failed", severity="error", timeout=8)
            self._set_status(message.error, error=True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Worker error", severity="error")

    # ---- training ---------------------------------------------------------------------

    def action_toggle_training(self) -> None:
        if self._single_view_only():
            return
        if self.training:
            self._stop_training(reset=False)
        else:
            self.training = True
            self._train_worker = self.train(self.config, self.train_state, None)
        self._show_training()

    def action_train_step(self) -> None:
        if not self.training and not self._single_view_only():
            self._train_worker = self.train(self.config, self.train_state, 1)

    def action_reset_training(self) -> None:
        if self._single_view_only():
            return
        self._stop_training(reset=True)
        self.simulate(self.config)

    def _stop_training(self, reset: bool) -> None:
        self.training = False
        self.workers.cancel_group(self, "train")
        if reset:
            self.train_state = TrainState()
            self.train_history = []
            self.query_one(TrainingPanel).show("", [], [], [])

    @thread_work(group="train", exclusive=True)
    def train(self, cfg: Config, state: TrainState, steps: int | None) -> None:
        """Take `steps` SGD steps (None: until cancelled or diverged), posting the
        statistics of the current weights a few times a second and where it stopped.
        Only this worker touches `state`, under its lock (a cancelled worker may still
        be finishing a step when the next one starts)."""
        worker = get_current_worker()
        with state.lock:
            try:
                if state.trainer is None:
                    state.trainer = Trainer(cfg, draws=self.sim.draws)
                last_post, posted = 0.0, len(state.history)
                while steps is None or len(state.history) - posted < steps:
                    if worker.is_cancelled:
                        break
                    record = state.trainer.step()
                    state.history.append(record)
                    if not math.isfinite(record.loss):
                        break
                    if time.perf_counter() - last_post >= TRAIN_POST_SECONDS:
                        self._post_training(cfg, state)
                        last_post = time.perf_counter()
                self._post_training(cfg, state, stopped=True)
            except (ConfigError, MemoryBudgetError) as e:
                self.post_message(SimulationFailed(cfg, str(e)))

    def _post_training(self, cfg: Config, state: TrainState, stopped: bool = False) -> None:
        trainer = state.trainer
        result = self.sim.run_weights(cfg, trainer.weights, trainer.biases,
                                      step=trainer.steps_done)
        self.post_message(TrainingProgress(state, build_display(result), list(state.history),
                                           get_current_worker() if stopped else None))

    def on_training_progress(self, message: TrainingProgress) -> None:
        if message.state is not self.train_state or message.display.config != self.config:
            return  # from a network since reset, or for an outdated config
        if message.stopped_by is not None and message.stopped_by is self._train_worker:
            self.training = False  # paused, a single step done, or diverged
        self.train_history = message.history
        self._show(message.display)
        self._show_training()

    def _show_training(self) -> None:
        history = self.train_history if self.train_state.history else []
        cfg = self.config
        last = history[-1] if history else None
        if last is not None and not math.isfinite(last.loss):
            state = "diverged: lower the learning rate (R resets)"
        elif self.training:
            state = "training…"
        else:
            state = "paused (space: go on, .: one step, R: reset)"
        head = (f"{cfg.task} · lr {cfg.lr:g}" + (f" · momentum {cfg.momentum:g}"
                                                    if cfg.momentum else "")
                + (f" · step {last.step} · loss {fmt(last.loss)}" if last else "")
                + f" · {state}")
        layers = self.query_one(HistogramGrid).visible_layers()[:MAX_LAYER_ROWS]
        self.query_one(TrainingPanel).show(head, history, cfg.widths(), layers)

    # ---- plots ------------------------------------------------------------------------

    def _plot_colors(self) -> tuple[str, str]:
        variables = self.theme_variables or self.get_css_variables()
        return (rich_color(variables.get("histogram-bar") or variables["primary"]),
                rich_color(variables.get("histogram-axis") or variables["foreground"]))

    def request_plots(self) -> None:
        """Ask the render worker for the visible plots of the shown result."""
        if self.shown is None:
            return
        grid = self.query_one(HistogramGrid)
        width, height = grid.cell_size()
        layers = tuple(grid.visible_layers())
        if self.view in DIAGRAM_VIEWS:
            panel = self.query_one("#phase-view")
            size = panel.content_size if panel.content_size.width else grid.content_size
            width, height, layers = size.width, size.height, ()
        request = PlotRequest(self.shown.result, self.view, layers, width, height,
                              self._plot_colors())
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
        if self.plot_request is None or message.request.key() != self.plot_request.key():
            return
        if message.request.view in DIAGRAM_VIEWS:
            self.query_one("#phase-view", Static).update(message.texts[0])
        else:
            self.query_one(HistogramGrid).show_plots(message.texts)
        self.plots_key = message.request.key()

    @on(HistogramGrid.LayoutChanged)
    def _grid_changed(self) -> None:
        self._set_titles()
        self.request_plots()

    def settled(self) -> bool:
        """True once the screen shows the current config's complete numbers and plots."""
        return (self.shown is not None and self.shown.config == self.config
                and self.shown.result.phase == "complete" and self.plot_request is not None
                and self.plots_key == self.plot_request.key())

    # ---- text around the plots --------------------------------------------------------

    def _set_titles(self) -> None:
        grid = self.query_one(HistogramGrid)
        layers = grid.visible_layers()
        noun = ROW_NOUN[self.config.arch]
        span = f"{noun} {layers[0] + 1}-{layers[-1] + 1} of {grid.layer_count}" if layers else ""
        paging = " · PgUp/PgDn" if grid.pages > 1 else ""
        x_range = "shared x-range" if self.config.hist_range == "shared" else "x-range per layer"
        grid.border_title = f"{VIEW_TITLES[self.view]} · {span}{paging}"
        grid.border_subtitle = f"{x_range} (x) · view (v)"
        diagram = self.query_one("#phase-view")
        diagram.border_title = f"{VIEW_TITLES[self.view]}: {self.config.activation} · view (v)"

    def _set_status(self, text: str, warnings: list[str] | None = None,
                    error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.set_class(error, "error")
        status.set_class(bool(warnings), "warn")
        line = text if not warnings else f"{text}  ⚠ " + " · ".join(warnings)
        status.update(line, layout=False)  # fixed height: no layout pass
