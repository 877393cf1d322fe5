"""The initscope app: themes, keys, the command palette, help and quitting.

Everything else lives in screens: the main screen (scope/main.py) holds the
selectors and one scope pane, the compare screen two. Data flows one way: a key or
a selector proposes a change; the screen validates it and replaces the pane's
frozen config; the pane's worker runs the core and posts the result; the pane's
widgets redraw.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import termios

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.driver import Driver
from textual.screen import Screen

from initscope.scenes import Scene
from initscope.sim import Config
from initscope.sim.budget import runnable
from initscope.tui.commands import AppCommands, SteadyCommandPalette
from initscope.tui.keymap import load_keymap
from initscope.tui.scope.compare import CompareScreen
from initscope.tui.scope.editing import ScopeScreen
from initscope.tui.scope.main import MainScreen
from initscope.tui.screens import HelpScreen, is_open
from initscope.tui.terminal import app_driver
from initscope.tui.themes import DEFAULT_THEME, load_themes, variable_defaults

TERMINAL_CHECK_SECONDS = 1.0  # how often the app asks whether its terminal is still there
IDLE_COLLECT_SECONDS = 10.0  # full garbage collections wait for a quiet moment
# below this many columns the selectors take 27 (not 34): the per-layer table's 88 fit
NARROW_BELOW = 130
KEY_NAMES = {"left_square_bracket": "[", "right_square_bracket": "]",
             "left_curly_bracket": "{", "right_curly_bracket": "}",
             "question_mark": "?", "full_stop": "."}


class InitScopeApp(App):
    """See what weight initialization does to a network, layer by layer."""

    TITLE = "initscope"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {AppCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True, id="action-quit", tooltip="quit at once"),
        Binding("question_mark", "help", "Help", id="action-help", tooltip="every key"),
        Binding("t", "cycle_theme", "Theme", id="action-theme", show=False,
                tooltip="next theme"),
    ]

    def __init__(self, config: Config | None = None, theme_name: str | None = None,
                 timings: bool = True, scene: Scene | None = None,
                 compare: tuple[Config, Config] | None = None,
                 ascii_only: bool = False, inspect: str | None = None) -> None:
        """`timings=False` keeps run times off the screen (for snapshot tests); a scene
        starts at its first step; `compare` opens A | B over the main screen;
        `ascii_only` writes every frame in ASCII (for terminals without Unicode)."""
        self.ascii_only = ascii_only
        super().__init__()
        self.start = MainScreen(runnable(config or Config()), scene=scene, compare=compare,
                                timings=timings, inspect=inspect)
        self.startup_errors: list[str] = []
        self._register_themes(theme_name)
        keymap, problem = load_keymap(binding_ids())
        self.set_keymap(keymap)
        if problem:
            self.startup_errors.append(problem)

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return app_driver(driver, self.ascii_only)

    def get_default_screen(self) -> Screen:
        return self.start

    def _register_themes(self, wanted: str | None) -> None:
        themes, errors = load_themes()
        self.startup_errors += errors
        for theme in themes:
            self.register_theme(theme)
        names = {t.name for t in themes} | set(self.available_themes)
        wanted = wanted or DEFAULT_THEME
        if wanted not in names:
            self.startup_errors.append(f"theme {wanted!r} not found")
            wanted = DEFAULT_THEME if DEFAULT_THEME in names else "textual-dark"
        self.theme = wanted

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return variable_defaults(self.current_theme)

    def on_mount(self) -> None:
        # Full garbage collections walked every widget and cached strip, stalling the
        # screen for 20-40 ms now and then: keep start-up objects out of them, and
        # collect the young generation less often...
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        # ...and collect the cycles that leaves behind while nothing is running
        self.set_interval(IDLE_COLLECT_SECONDS, self._idle_collect)
        if not self.is_headless:
            self._exit_on_signals()
            if os.isatty(sys.__stdin__.fileno()):
                self.set_interval(TERMINAL_CHECK_SECONDS, self._exit_if_terminal_gone)
        if self.startup_errors:
            self.notify("\n".join(self.startup_errors), title="Some settings did not load",
                        severity="warning", timeout=8)

    async def on_event(self, event: events.Event) -> None:
        # Keys still queued when the app shuts down would act on screens already gone
        if isinstance(event, events.InputEvent) and not self.is_running:
            return
        await super().on_event(event)

    def on_resize(self, event: events.Resize) -> None:
        # the event's size: the app's own is updated after this handler
        width, height = event.size
        self.set_class(width < NARROW_BELOW, "-narrow")
        self.set_class(height < 36, "-short")
        self.set_class(height < 22, "-tiny")

    def _exit_on_signals(self) -> None:
        """SIGTERM, SIGHUP and SIGINT end the app the way `q` does, so the terminal is
        restored (alternate screen left, mouse reporting off, cursor back), with the
        shell's codes for them: 143, 129, 130."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(signum, self.exit, None, 128 + signum)

    def _exit_if_terminal_gone(self) -> None:
        """A terminal that went away (an SSH drop, a closed window) hangs up: reads
        give nothing, and Textual's input thread would spin on them for ever. The
        SIGHUP that says so can be ignored (nohup) or come before its handler; a
        hung-up terminal also fails every ioctl, so ask it once a second."""
        try:
            termios.tcgetattr(sys.__stdin__.fileno())
        except (termios.error, OSError, ValueError):
            self.exit(None, 128 + signal.SIGHUP)

    def _idle_collect(self) -> None:
        if not any(w.is_running for w in self.workers):
            gc.collect()

    def action_cycle_theme(self) -> None:
        names = sorted(self.available_themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_command_palette(self) -> None:
        if self.use_command_palette and not is_open(self, SteadyCommandPalette):
            self.push_screen(SteadyCommandPalette(id="--command-palette"))

    def action_help(self) -> None:
        """Every key of the screen the help was asked on, with its binding id."""
        if is_open(self, HelpScreen):
            return
        rows, seen = [], set()
        for binding in bindings_of(self) + bindings_of(self.screen):
            if binding.id not in seen:
                seen.add(binding.id)
                rows.append((key_label(binding.key), binding.description, binding.id))
        rows.append(("ctrl+p", "command palette", ""))
        self.push_screen(HelpScreen(rows))


def key_label(key: str) -> str:
    """How a key is written on a keyboard: `[` for left_square_bracket."""
    return ",".join(KEY_NAMES.get(k, k) for k in key.split(","))


def bindings_of(node: object) -> list[Binding]:
    """The bindings with ids that a node's class and its bases declare."""
    return [b for cls in type(node).__mro__ for b in cls.__dict__.get("BINDINGS", [])
            if isinstance(b, Binding) and b.id]


def binding_ids() -> set[str]:
    """The ids of every binding of the app and its screens, for the user's keymap."""
    return {binding.id for owner in (InitScopeApp, ScopeScreen, MainScreen, CompareScreen)
            for binding in owner.BINDINGS if isinstance(binding, Binding) and binding.id}
