"""Changing a config by keys, selectors, typed values and the palette.

`ScopeScreen` is the base of every screen that shows scope panes (the main screen,
compare). Its bindings and actions propose changes to the active pane; a refused
change is said once (a notification and the screen's status line) and changes
nothing. Subclasses say which pane is active and what else a change resets.
"""

from __future__ import annotations

import math

from textual import on
from textual.binding import Binding
from textual.screen import Screen

from initscope.codegen import snippets
from initscope.presets import PRESETS, PRESETS_BY_NAME
from initscope.sim import Config, ConfigError, MemoryBudgetError
from initscope.sim.arch import with_arch
from initscope.sim.budget import runnable
from initscope.sim.meanfield import config_sigmas
from initscope.sim.parse import coerce
from initscope.sim.schemes import SCHEMES
from initscope.sim.share import encode
from initscope.tui.commands import ScopeCommands
from initscope.tui.exporting import export_folder, export_stem
from initscope.tui.scope.pane import ScopePane
from initscope.tui.screens import CodeScreen, EditScreen, is_open
from initscope.tui.widgets.selectors import (
    FIELDS_BY_NAME,
    Selector,
    SelectorPane,
    as_config_value,
    current,
    show_value,
    stepped,
)
from initscope.views import VIEWS

MEMORY_HINT = " (or raise the Memory GiB field)"
BIN_LADDER = (5, 10, 20, 30, 50, 80, 120, 200)


def refusal(error: Exception) -> str:
    """The core's one-line refusal, with the control that changes it in the app."""
    return str(error) + (MEMORY_HINT if isinstance(error, MemoryBudgetError) else "")


def _changed(cfg: Config, changes: dict) -> Config:
    """`cfg` with `changes`; a new network brings its own defaults (with_arch) under
    whatever else changes with it."""
    if "arch" in changes and changes["arch"] != cfg.arch:
        cfg = with_arch(cfg, changes["arch"])
    return cfg.replace(**changes)


def _step(field: str, delta: int, key: str, description: str, show: bool = False) -> Binding:
    return Binding(key, f"step('{field}', {delta})", description, show=show,
                   id=f"{field}-{'up' if delta > 0 else 'down'}",
                   tooltip=f"{'next' if delta > 0 else 'previous'} {field}")


class ScopeScreen(Screen):
    """Keys and selectors that change the active pane's config and display."""

    COMMANDS = {ScopeCommands}
    trains = False  # whether this screen trains (its palette offers the training settings)
    BINDINGS = [
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
        _step("norm", 1, "N", "Norm"),
        _step("norm_at", 1, "P", "Norm place"),
        Binding("r", "new_seed", "New seed", id="action-seed", show=True,
                tooltip="draw new random weights and inputs"),
        Binding("v", "cycle_view(1)", "View", id="action-view", show=True,
                tooltip="activations, pre-activations, gradients, weight gradients, "
                        "channel means, phase diagram, Jacobian spectrum, transformer "
                        "meters, signal propagation"),
        Binding("V", "cycle_view(-1)", "Previous view", id="action-view-back", show=False),
        Binding("M", "show_view('meters')", "Meters", id="action-meters", show=False,
                tooltip="a transformer's meters per block: variances, entropy, logits, "
                        "token similarity, gradient norms"),
        Binding("x", "toggle_range", "Range", id="action-range", show=True,
                tooltip="histogram x-range shared across layers, or per layer (no re-run)"),
        Binding("h", "bins(1)", "More bins", id="action-bins-up", show=False,
                tooltip="more histogram bins (no re-run)"),
        Binding("H", "bins(-1)", "Fewer bins", id="action-bins-down", show=False,
                tooltip="fewer histogram bins (no re-run)"),
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
        *[Binding(p.key, f"preset('{p.name}')", f"Preset: {p.title}", show=False,
                  id=f"preset-{p.name}", tooltip=p.description) for p in PRESETS if p.key],
    ]

    # ---- what subclasses say ------------------------------------------------------

    @property
    def active_pane(self) -> ScopePane:
        """The pane that keys and selectors change."""
        raise NotImplementedError

    def panes_for(self, changes: dict) -> list[ScopePane]:
        """The panes a change goes to: the active one (compare also sends the seed
        to both sides, so they keep the same draws)."""
        return [self.active_pane]

    def display_panes(self) -> list[ScopePane]:
        """The panes a display setting (view, range, bins) goes to."""
        return [self.active_pane]

    def say_error(self, message: str) -> None:
        """Show a refusal where this screen shows its status."""
        self.notify(message, title="Not applied", severity="error", timeout=6)

    # ---- proposing ------------------------------------------------------------------

    def propose(self, **changes) -> bool:
        """Apply `changes` to the panes they go to, if every one of them can run;
        otherwise say why and change nothing."""
        panes = self.panes_for(changes)
        try:
            new = [runnable(_changed(pane.config, changes)) for pane in panes]
        except (ConfigError, MemoryBudgetError) as e:
            self.say_error(refusal(e))
            return False
        for pane, cfg in zip(panes, new):
            if cfg != pane.config:
                pane.config = cfg
        self.query_one(SelectorPane).config = self.active_pane.config
        return True

    def current_config(self) -> Config:
        return self.active_pane.config

    def action_step(self, field: str, delta: int) -> None:
        spec = FIELDS_BY_NAME[field]
        value = stepped(spec, current(self.current_config(), field), delta, self.current_config())
        self.propose(**{field: as_config_value(field, value)})

    def action_new_seed(self) -> None:
        self.propose(seed=self.current_config().seed + 1)

    def action_sigma(self, d_w2: float, d_b2: float) -> None:
        """Move the config on the phase diagram: sigma_w^2 through the gain, sigma_b^2
        through normal biases."""
        cfg = self.current_config()
        sw2, sb2, mu = config_sigmas(cfg)
        sb2 += mu * mu  # a constant bias becomes a random one of the same second moment
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

    def action_init_step(self, delta: int) -> None:
        """Walk through a data-dependent init: iteration 0 (the start), 1, ..., all."""
        cfg = self.current_config()
        if not SCHEMES[cfg.scheme].data_init:
            self.notify("iterations belong to the lsuv and data_dependent schemes",
                        severity="warning", timeout=3)
            return
        shown = self.active_pane.shown
        total = shown.result.init_iterations if shown else 0
        order = list(range(total + 1)) + [-1]
        now = cfg.init_steps if cfg.init_steps in order else -1
        self.propose(init_steps=order[(order.index(now) + delta) % len(order)])

    def action_preset(self, name: str) -> None:
        self.apply_preset(name)

    def apply_preset(self, name: str) -> None:
        preset, cfg = PRESETS_BY_NAME[name], self.current_config()
        if self.propose(**{k: v for k, v in preset.apply(cfg).__dict__.items()
                           if getattr(cfg, k) != v}):
            self.notify(preset.description, title=preset.title, timeout=4)

    # ---- display settings: no new run ---------------------------------------------

    def set_view(self, view: str) -> None:
        for pane in self.display_panes():
            pane.view = view

    def action_show_view(self, view: str) -> None:
        self.set_view(view)

    def action_cycle_view(self, delta: int) -> None:
        now = self.active_pane.view
        self.set_view(VIEWS[(VIEWS.index(now) + delta) % len(VIEWS)])

    def action_toggle_range(self) -> None:
        shared = not self.active_pane.shared_range
        for pane in self.display_panes():
            pane.shared_range = shared

    def action_bins(self, delta: int) -> None:
        now = self.active_pane.bins
        if delta > 0:
            bins = next((b for b in BIN_LADDER if b > now), BIN_LADDER[-1])
        else:
            bins = next((b for b in reversed(BIN_LADDER) if b < now), BIN_LADDER[0])
        for pane in self.display_panes():
            pane.bins = bins

    # ---- selectors and dialogs ------------------------------------------------------

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
            try:
                value = coerce(field, text.strip())  # the parser every source uses
            except ConfigError:
                label = spec.label_of(self.current_config()).strip()
                self.say_error(f"{label} needs a number, not {text.strip()!r}")
                return
            self.propose(**{field: value})

        if not is_open(self.app, EditScreen):
            self.app.push_screen(EditScreen(spec.label_of(self.current_config()).strip(),
                                            show_value(self.current_config(), field)), done)

    def action_code(self) -> None:
        cfg = self.current_config()
        if not is_open(self.app, CodeScreen):
            self.app.push_screen(CodeScreen(snippets(cfg), encode(cfg), export_folder(),
                                            export_stem(cfg)))
