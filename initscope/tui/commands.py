"""The command palette (ctrl+p): every scheme, network, activation, view, preset,
theme and action by name, from the same registries the keys and the CLI use. The
app provides its themes and actions; a scope screen provides what changes its
panes."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from rich.align import Align
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.widgets import Button, Input
from textual.widgets.option_list import Option

from initscope.presets import PRESETS
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS
from initscope.sim.config import NORMS
from initscope.sim.norm import describe
from initscope.sim.schemes import SCHEMES
from initscope.views import VIEW_TITLES

if TYPE_CHECKING:
    from initscope.tui.scope.editing import ScopeScreen

MEMORY_BUDGETS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
TASK_WORDS = {"teacher": "regression onto a fixed random tanh network (squared error)",
              "spiral": "two interleaved spirals (2-class cross-entropy)",
              "output": "the output itself is the loss (the notes' toy; no floor)"}


def actions_of(node) -> list[tuple[str, object, str]]:
    """A node's own key actions (bindings with an `action-` id), as commands."""
    return [(b.description, partial(node.run_action, b.action), b.tooltip)
            for b in node.BINDINGS
            if isinstance(b, Binding) and b.id and b.id.startswith("action-")]


class _Listed(Provider):
    """A provider whose commands are (name, callback, help) triples, built fresh on
    each opening, so new themes and the screen's current state show up."""

    def _commands(self) -> list[tuple[str, object, str]]:
        raise NotImplementedError

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)

    async def discover(self) -> Hits:
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)


class AppCommands(_Listed):
    """Themes and the app's own actions."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        out = [(f"Theme: {name}", partial(setattr, app, "theme", name), "switch theme")
               for name in sorted(app.available_themes)]
        return out + actions_of(app)


class ScopeCommands(_Listed):
    """Every scheme, network, activation, view, preset, memory budget and key action
    of the screen the palette was opened on, from the registries the CLI uses."""

    def _commands(self) -> list[tuple[str, object, str]]:
        screen: ScopeScreen = self.screen  # type: ignore[assignment]
        out = []
        for name, scheme in SCHEMES.items():
            out.append((f"Scheme: {name}", partial(screen.propose, scheme=name), scheme.formula))
        for name, arch in ARCHS.items():
            out.append((f"Network: {name}", partial(screen.propose, arch=name), arch.description))
        for name in NORMS:
            out.append((f"Norm: {name}", partial(screen.propose, norm=name),
                        describe(name, "before", 0.2, False) or "no normalization"))
        for name, act in ACTIVATIONS.items():
            out.append((f"Activation: {name}", partial(screen.propose, activation=name),
                        act.formula))
        for view, title in VIEW_TITLES.items():
            out.append((f"View: {title}", partial(screen.set_view, view),
                        f"histograms of the {title.lower()}"))
        for p in PRESETS:
            label = f"Preset {p.key}: {p.title}" if p.key else f"Preset: {p.title}"
            out.append((label, partial(screen.apply_preset, p.name), p.description))
        for gib in MEMORY_BUDGETS:
            label = "auto (2 GiB or half the free memory)" if gib == 0 else f"{gib:g} GiB"
            out.append((f"Memory budget: {label}", partial(screen.propose, memory_limit=gib),
                        "how much memory one run may take"))
        if screen.trains:
            out += training_commands(screen)
        return out + actions_of(screen)


def training_commands(screen: ScopeScreen) -> list[tuple[str, object, str]]:
    """The training settings (each change starts a new network, untrained)."""
    from initscope.sim.config import OPTIMIZERS, TASKS

    out = []
    for lr in LEARNING_RATES:
        out.append((f"Learning rate (lr): {lr:g}", partial(screen.propose, lr=lr),
                    "training's step size; l doubles it, L halves it"))
    for name in OPTIMIZERS:
        what = ("Adam, betas 0.9 and 0.999, eps 1e-8" if name == "adam"
                else "stochastic gradient descent, with the momentum field")
        out.append((f"Optimizer: {name}", partial(screen.propose, optimizer=name), what))
    for momentum in (0.0, 0.5, 0.9, 0.99):
        out.append((f"Momentum (SGD): {momentum:g}", partial(screen.propose, momentum=momentum),
                    "SGD's velocity decay; 0 is plain SGD"))
    for task in TASKS:
        out.append((f"Task: {task}", partial(screen.propose, task=task), TASK_WORDS[task]))
    for size in (0, 32, 128, 512):
        label = "full batch" if size == 0 else str(size)
        out.append((f"Minibatch: {label}", partial(screen.propose, batch_size=size),
                    "samples per training step"))
    for steps in (10, 100, 500, 1000, 10000):
        out.append((f"Steps: {steps}", partial(screen.propose, steps=steps),
                    "how many steps space trains before it pauses"))
    return out


class SteadyCommandPalette(CommandPalette):
    """Textual's command palette, minus four crashes that took the app down:

    - Enter pressed twice fast on a command: the second, queued behind the first,
      ran the command again and dismissed the palette again, popping the app's own
      screen (ScreenStackError). Once the palette has closed, its Enter is dropped.
    - PageUp or PageDown while the hits were still arriving: the option list's line
      map lags its options by a refresh (KeyError). Such a key is dropped.
    - Hits arriving after the palette began to close: its search, still running,
      looked for the list already taken down (NoMatches). They are let go.
    - Its "No matches found" countdown firing after the palette began to close
      (NoMatches, seen in a key storm): the countdown's note is let go likewise.
    """

    def _start_no_matches_countdown(self, search_value: str) -> None:
        self._stop_no_matches_countdown()

        def show_no_matches() -> None:
            if not search_value:  # discovering, not searching: nothing to report
                self._list_visible = False
                return
            try:
                command_list = self.query_one(CommandList)
            except NoMatches:
                return  # the palette closed while the countdown ran
            command_list.add_option(Option(Align.center(Text("No matches found",
                                                             style="not bold")),
                                           disabled=True, id=self._NO_MATCHES))
            self._list_visible = True

        self._no_matches_timer = self.set_timer(self._NO_MATCHES_COUNTDOWN, show_no_matches)

    def _watch__list_visible(self) -> None:
        try:
            super()._watch__list_visible()
        except NoMatches:
            pass

    async def _watch__show_busy(self) -> None:
        try:
            await super()._watch__show_busy()
        except NoMatches:
            pass

    @on(Input.Submitted)
    @on(Button.Pressed)
    def _drop_once_closed(self, event: Input.Submitted | Button.Pressed) -> None:
        if not self.is_active:
            event.stop()
            event.prevent_default()  # the palette's own handler must not run

    def _select_or_command(self, event: Input.Submitted | Button.Pressed | None = None) -> None:
        if self.is_active:  # also called directly, when an option is picked
            super()._select_or_command(event)

    def _action_command_list(self, action: str) -> None:
        try:
            super()._action_command_list(action)
        except KeyError:
            pass
