"""The command palette (ctrl+p): every scheme, activation, view, preset, theme and
action by name, from the same registries the keys and the CLI use."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual import on
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.widgets import Button, Input

from initscope.presets import PRESETS
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import ARCHS
from initscope.sim.schemes import SCHEMES
from initscope.tui.display import VIEW_TITLES

if TYPE_CHECKING:
    from initscope.tui.app import InitScopeApp


class InitScopeCommands(Provider):
    """Commands built fresh on each opening, so new themes show up too."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app: InitScopeApp = self.app  # type: ignore[assignment]
        out = []
        for name, scheme in SCHEMES.items():
            out.append((f"Scheme: {name}", partial(app.propose, scheme=name), scheme.formula))
        for arch in ARCHS:
            out.append((f"Network: {arch}", partial(app.propose, arch=arch),
                        "plain stack, residual blocks, or a recurrent net"))
        for name, act in ACTIVATIONS.items():
            out.append((f"Activation: {name}", partial(app.propose, activation=name),
                        act.formula))
        for view, title in VIEW_TITLES.items():
            out.append((f"View: {title}", partial(app.set_view, view),
                        f"histograms of the {title.lower()}"))
        for p in PRESETS:
            label = f"Preset {p.key}: {p.title}" if p.key else f"Preset: {p.title}"
            out.append((label, partial(app.apply_preset, p.name), p.description))
        for name in sorted(app.available_themes):
            out.append((f"Theme: {name}", partial(setattr, app, "theme", name), "switch theme"))
        for binding in app.BINDINGS:
            if binding.id and binding.id.startswith("action-"):
                out.append((binding.description, partial(app.run_action, binding.action),
                            binding.tooltip))
        return out

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)

    async def discover(self) -> Hits:
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)


class SteadyCommandPalette(CommandPalette):
    """Textual's command palette, minus three crashes that took the app down:

    - Enter pressed twice fast on a command: the second, queued behind the first,
      ran the command again and dismissed the palette again, popping the app's own
      screen (ScreenStackError). Once the palette has closed, its Enter is dropped.
    - PageUp or PageDown while the hits were still arriving: the option list's line
      map lags its options by a refresh (KeyError). Such a key is dropped.
    - Hits arriving after the palette began to close: its search, still running,
      looked for the list already taken down (NoMatches). They are let go.
    """

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
