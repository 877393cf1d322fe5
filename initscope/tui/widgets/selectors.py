"""The selector pane: one row per config field, driven by keys alone.

A selector never changes the config itself: it posts `Selector.Changed` with the
field and the value it proposes, and the screen decides. After every change the
screen sets `SelectorPane.config`, so what the pane shows is always the config.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from initscope.report import fmt
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS, scheme_fits
from initscope.sim.config import (
    BIAS_MODES,
    BRANCHES,
    DISTRIBUTIONS,
    DTYPES,
    FAN_MODES,
    INPUT_DISTS,
    LAYER_NORMS,
    MASKS,
    NORM_PLACES,
    NORMS,
    OPTIMIZERS,
    RNN_INPUTS,
    SWITCH,
    TASKS,
    Config,
)
from initscope.sim.schemes import SCHEMES


@dataclass(frozen=True)
class Field:
    """How one config field is shown and stepped."""

    name: str
    label: str
    choices: tuple = ()  # a closed list to cycle through
    choices_for: Callable[[Config], tuple] | None = None  # the ones this config can take
    ladder: tuple = ()  # numbers to step along; exact values are typed with Enter
    factor: float = 0.0  # or: each step multiplies (divides) by this
    integer: bool = False
    minimum: int = 0  # the lowest an integer without a ladder steps to
    visible: Callable[[Config], bool] = lambda c: True
    label_for: Callable[[Config], str] | None = None  # a label that follows the config
    training: bool = False  # a training setting: shown where training is (the main screen)

    def label_of(self, cfg: Config) -> str:
        return self.label_for(cfg) if self.label_for is not None else self.label


def _uses(param: str) -> Callable[[Config], bool]:
    return lambda c: param in SCHEMES[c.scheme].params


def _arch(*names: str) -> Callable[[Config], bool]:
    return lambda c: c.arch in names


def _convolutional(c: Config) -> bool:
    return ARCHS[c.arch].convolutional


def _attends(c: Config) -> bool:
    return ARCHS[c.arch].attends


def _schemes_for(c: Config) -> tuple:
    """The schemes this network takes (stepping never lands on a refusal)."""
    return tuple(name for name in SCHEMES if scheme_fits(c.arch, name))


FIELDS: list[Field] = [
    Field("arch", "Network", choices=tuple(ARCHS)),
    Field("branch", "  branch", choices=BRANCHES, visible=lambda c: ARCHS[c.arch].blocks),
    Field("time_steps", "  steps", integer=True, visible=_arch("rnn"),
          ladder=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)),
    Field("rnn_input", "  input", choices=RNN_INPUTS, visible=_arch("rnn")),
    Field("channels", "  channels", integer=True, visible=_convolutional,
          ladder=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)),
    Field("image", "  image", integer=True, visible=_convolutional,
          ladder=(4, 8, 16, 28, 32, 64, 128, 256)),
    Field("kernel", "  kernel", integer=True, visible=_convolutional, ladder=(1, 3, 5, 7)),
    Field("stride", "  stride", integer=True, visible=_arch("conv"), ladder=(1, 2, 3, 4)),
    Field("padding", "  padding", integer=True, visible=_arch("conv"), minimum=-1),
    Field("tokens", "  tokens", integer=True, visible=_attends,
          ladder=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)),
    Field("heads", "  heads", integer=True, visible=_attends, ladder=(1, 2, 4, 8, 16, 32)),
    Field("mlp_ratio", "  mlp ratio", integer=True, visible=_attends, ladder=(1, 2, 4, 8, 16)),
    Field("mask", "  mask", choices=MASKS, visible=_attends),
    Field("correlation", "  corr", visible=_attends,
          ladder=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)),
    Field("skips", "  skips", choices=SWITCH, visible=_attends),
    Field("scheme", "Scheme", choices=tuple(SCHEMES), choices_for=_schemes_for),
    Field("std", "  std", ladder=(0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.3, 1.0, 3.0),
          visible=_uses("std")),
    Field("bound", "  bound", ladder=(0.001, 0.01, 0.05, 0.1, 0.3, 1.0, 3.0),
          visible=_uses("bound")),
    Field("value", "  value", ladder=(-0.1, -0.01, 0.0, 0.001, 0.01, 0.1, 1.0),
          visible=_uses("value")),
    Field("mode", "  mode", choices=FAN_MODES, visible=_uses("mode")),
    Field("distribution", "  dist", choices=DISTRIBUTIONS, visible=_uses("distribution")),
    Field("scale", "  scale", ladder=(0.5, 1.0, 2.0, 3.0), visible=_uses("scale")),
    Field("init_steps", "  iteration", integer=True, minimum=-1, visible=_uses("init_steps")),
    Field("gain", "Gain", ladder=(0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 5 / 3, 2.0, 3.0)),
    Field("activation", "Activation", choices=tuple(ACTIVATIONS)),
    Field("slope", "  slope", ladder=(0.0, 0.01, 0.1, 0.2, 0.3, 0.5),
          visible=lambda c: c.activation == "leaky_relu"),
    Field("norm", "Norm", choices=NORMS, visible=lambda c: ARCHS[c.arch].normalizes,
          choices_for=lambda c: ARCHS[c.arch].norms),
    Field("norm_at", "  at", choices=NORM_PLACES,
          visible=lambda c: ARCHS[c.arch].normalizes and c.norm in LAYER_NORMS),
    Field("nf_alpha", "  alpha", ladder=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
          visible=lambda c: ARCHS[c.arch].blocks and c.norm == "nf"),
    Field("depth", "Depth", integer=True, visible=lambda c: c.arch != "rnn",
          ladder=(1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000)),
    Field("width", "Width", integer=True, visible=lambda c: not _convolutional(c),
          ladder=(2, 4, 8, 16, 32, 64, 100, 128, 256, 500, 1000, 2000, 4096, 8192)),
    Field("bias", "Bias", choices=BIAS_MODES),
    Field("bias_value", "  value", ladder=(-1.0, -0.1, -0.01, 0.0, 0.01, 0.1, 0.5, 1.0),
          visible=lambda c: c.bias in ("constant", "normal"),
          label_for=lambda c: "  std" if c.bias == "normal" else "  value"),
    Field("seed", "Seed", integer=True),
    Field("batch", "Batch", integer=True,
          ladder=(1, 10, 32, 100, 256, 500, 1000, 2000, 5000, 10000, 65536)),
    Field("inputs", "Inputs", integer=True, visible=lambda c: c.arch in ("plain", "rnn"),
          ladder=(1, 2, 8, 32, 100, 256, 500, 1000, 2000, 4096, 8192)),
    Field("input_dist", "Input", choices=INPUT_DISTS),
    Field("dtype", "Dtype", choices=DTYPES),
    Field("memory_limit", "Memory GiB", ladder=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)),
    Field("optimizer", "Optimizer", choices=OPTIMIZERS, training=True),
    Field("lr", "  lr", factor=2.0, training=True),  # the l / L keys too
    Field("momentum", "  momentum", ladder=(0.0, 0.5, 0.9, 0.95, 0.99), training=True,
          visible=lambda c: c.optimizer == "sgd"),
    Field("task", "Task", choices=TASKS, training=True),
    Field("batch_size", "Minibatch", integer=True, training=True,
          ladder=(0, 1, 8, 16, 32, 64, 128, 256, 512, 1024)),
    Field("steps", "Steps", integer=True, training=True,
          ladder=(1, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)),
]
FIELDS_BY_NAME = {f.name: f for f in FIELDS}


# what a long value shows as where the pane is narrow (the README lists them)
SHORT_FORMS = {"variance_scaling": "var_scaling", "data_dependent": "data_dep",
               "xavier_uniform": "xavier_unif", "lecun_uniform": "lecun_unif",
               "xavier_normal": "xavier_norm"}


def current(cfg: Config, name: str):
    value = getattr(cfg, name)
    return value[0] if name == "width" else value


def show_value(cfg: Config, name: str) -> str:
    if name == "width" and len(cfg.width) > 1:
        return ",".join(map(str, cfg.width))
    if name == "padding" and cfg.padding < 0:
        return "same"
    if name == "init_steps" and cfg.init_steps < 0:
        return "all"
    if name == "memory_limit" and cfg.memory_limit == 0:
        return "auto"
    if name == "batch_size" and cfg.batch_size == 0:
        return "full"
    if name == "norm_at" and ARCHS[cfg.arch].blocks:  # pre-norm x + F(N x), post N(x + F x)
        return "pre" if cfg.norm_at == "before" else "post"
    value = current(cfg, name)
    if name == "gain" and abs(value - 5 / 3) < 1e-12:
        return "5/3"
    return fmt(value) if isinstance(value, float) else str(value)


def stepped(f: Field, value, delta: int, cfg: Config | None = None):
    """The value `delta` steps from `value`: the next choice (of those `cfg` can
    take), or the next rung of the ladder above (below) a value between rungs."""
    if f.choices:
        choices = f.choices_for(cfg) if f.choices_for and cfg is not None else f.choices
        i = choices.index(value) if value in choices else 0
        return choices[(i + delta) % len(choices)]
    if f.factor:
        return value * f.factor ** delta
    if not f.ladder:
        return max(f.minimum, value + delta)
    rungs = list(f.ladder)
    if delta > 0:
        i = bisect.bisect_right(rungs, value + 1e-12)
        return rungs[min(i, len(rungs) - 1)]
    i = bisect.bisect_left(rungs, value - 1e-12) - 1
    return rungs[max(i, 0)]


def as_config_value(name: str, value):
    """The value as the config stores it (width is a tuple)."""
    return (int(value),) if name == "width" else value


class Selector(Widget, can_focus=True):
    """One field: `label  ‹ value ›`. Left/right step, Enter types an exact value."""

    DEFAULT_CSS = """
    Selector {
        height: 1;
        width: 1fr;
    }
    Selector:focus {
        background: $primary 25%;
        text-style: bold;
    }
    """

    BINDINGS = [
        Binding("left,minus", "step(-1)", "previous", show=False),
        Binding("right,plus,equals_sign", "step(1)", "next", show=False),
        Binding("enter", "edit", "type a value", show=False),
    ]

    class Changed(Message):
        """The user asks for `field` to become `value`."""

        def __init__(self, field: str, value) -> None:
            super().__init__()
            self.field = field
            self.value = value

    class EditRequested(Message):
        def __init__(self, field: str) -> None:
            super().__init__()
            self.field = field

    def __init__(self, spec: Field, cfg: Config) -> None:
        super().__init__(id=f"sel-{spec.name}")
        self.spec = spec
        self.cfg = cfg
        self.tooltip = f"{spec.label.strip()}: left/right to step, Enter to type a value"

    def render(self) -> Text:
        """`label  ‹ value ›`, narrowed to fit: the label column first shrinks to the
        label, then the value takes its short form (SHORT_FORMS), so a value is
        never cut (at 80x24 the pane is 27 columns wide)."""
        label = self.spec.label_of(self.cfg)
        value = show_value(self.cfg, self.spec.name)
        room = self.size.width or 32
        column = 11
        if column + 4 + len(value) > room:
            column = len(label.rstrip()) + 1
            if column + 4 + len(value) > room:
                value = SHORT_FORMS.get(value, value)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{label:<{column}}", style="" if label[0] == " " else "bold")
        text.append("‹ " if self.has_focus else "  ", style="dim")
        text.append(value)
        text.append(" ›" if self.has_focus else "", style="dim")
        return text

    def show(self, cfg: Config, training: bool = True) -> None:
        before = (self.spec.label_of(self.cfg), show_value(self.cfg, self.spec.name))
        self.cfg = cfg
        visible = self.spec.visible(cfg) and (training or not self.spec.training)
        if visible != self.display:
            self.display = visible  # a layout change: only when it changes
        if (self.spec.label_of(cfg), show_value(cfg, self.spec.name)) != before:
            self.refresh()  # the other fields keep their lines as drawn

    def action_step(self, delta: int) -> None:
        value = stepped(self.spec, current(self.cfg, self.spec.name), delta, self.cfg)
        self.post_message(self.Changed(self.spec.name, as_config_value(self.spec.name, value)))

    def action_edit(self) -> None:
        self.post_message(self.EditRequested(self.spec.name))

    def on_click(self, event: events.Click) -> None:
        self.focus()

    def on_focus(self, event: events.Focus) -> None:
        self.refresh()

    def on_blur(self, event: events.Blur) -> None:
        self.refresh()


class SelectorPane(VerticalScroll, can_focus=False):
    """All selectors, top to bottom; up/down move between them."""

    DEFAULT_CSS = """
    SelectorPane {
        width: 34;
        min-width: 24;
        border: round $panel-lighten-2;
        border-title-color: $accent;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [
        Binding("up,k", "app.focus_previous", "previous field", show=False),
        Binding("down,j", "app.focus_next", "next field", show=False),
    ]

    config: reactive[Config] = reactive(Config, always_update=True, init=False)
    """The config the selectors show (set by the screen after every change)."""

    def __init__(self, cfg: Config, id: str | None = "selectors", training: bool = True) -> None:
        super().__init__(id=id)
        self.set_reactive(SelectorPane.config, cfg)
        self.border_title = "Experiment"
        self.training = training  # with the training settings (not in compare)

    def compose(self):
        for spec in FIELDS:
            selector = Selector(spec, self.config)
            selector.display = spec.visible(self.config) and (self.training or not spec.training)
            yield selector

    def watch_config(self, cfg: Config) -> None:
        for selector in self.query(Selector):
            selector.show(cfg, self.training)
