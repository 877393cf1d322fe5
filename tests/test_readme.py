"""The README documents every key, command, scheme and activation the code has."""

from pathlib import Path

from initscope.cli import app
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.schemes import SCHEMES
from initscope.tui.app import InitScopeApp
from initscope.tui.scope.compare import CompareScreen
from initscope.tui.scope.editing import ScopeScreen
from initscope.tui.scope.main import MainScreen

README = (Path(__file__).parents[1] / "README.md").read_text()
KEY_NAMES = {"left_square_bracket": "[", "right_square_bracket": "]",
             "left_curly_bracket": "{", "right_curly_bracket": "}", "question_mark": "?",
             "pagedown": "PageDown", "pageup": "PageUp", "ctrl+home": "ctrl+Home",
             "ctrl+end": "ctrl+End", "full_stop": ".", "shift+right": "shift+Right",
             "shift+left": "shift+Left", "shift+up": "shift+Up", "shift+down": "shift+Down",
             "escape": "Esc"}
# keys bound in dialogs rather than the main screen are documented with them


def test_every_key_is_documented():
    for owner in (InitScopeApp, ScopeScreen, MainScreen, CompareScreen):
        for binding in owner.BINDINGS:
            key = KEY_NAMES.get(binding.key, binding.key)
            assert f"`{key}`" in README, key


def test_every_command_scheme_and_activation_is_documented():
    for command in app.registered_commands:
        assert f"initscope {command.name or command.callback.__name__}" in README
    for name in [*SCHEMES, *ACTIVATIONS]:
        assert f"`{name}`" in README, name
