"""Modal screens: the key help, and typing an exact value into a field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from initscope.codegen import NAMING_NOTE
from initscope.tui.exporting import SERVED_NOTE, free_stem, served, write_new

Result = TypeVar("Result")


class ClosesOnce:
    """A screen that closes once. A key queued behind the one that closed it (Enter or
    Escape pressed twice fast) would dismiss it again, and dismissing pops whatever
    screen is on top: the app's own, once."""

    def dismiss(self, result=None):
        if self.is_active:
            return super().dismiss(result)
        return None


def is_open(app, kind: type) -> bool:
    """Whether a screen of this kind is up already (its key pressed twice fast)."""
    return any(isinstance(screen, kind) for screen in app.screen_stack)


class Dialog(ClosesOnce, ModalScreen[Result]):
    """A modal screen that closes once (ClosesOnce)."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
    }
    Dialog > .dialog-box {
        width: 80;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: round $accent;
        padding: 0 1;
        background: $surface;
    }
    """


class HelpScreen(Dialog[None]):
    """Every key of the app, from its bindings, plus the selector keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close", show=False)]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """`rows`: (key, what it does, binding id for keys.toml)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_column(style="dim")
        for key, description, binding_id in self.rows:
            table.add_row(key, description, binding_id)
        with VerticalScroll(id="help-box", classes="dialog-box") as box:
            box.border_title = "initscope keys"
            box.border_subtitle = "Esc closes"
            yield Static(table)
            yield Static(Text(
                "Selectors (left pane): up/down or tab to move, left/right to step, "
                "Enter to type an exact value. ctrl+p opens the command palette: every "
                "scheme, activation, view, preset and theme by name. Your own keys: "
                "~/.config/initscope/keys.toml, binding id = \"keys\" (ids in the last "
                "column).", style="italic"))


class EditScreen(Dialog[str | None]):
    """Asks for one value; returns the text typed, or None on Escape."""

    DEFAULT_CSS = """
    EditScreen > #edit-box {
        width: 50;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def __init__(self, label: str, value: str) -> None:
        super().__init__()
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box", classes="dialog-box") as box:
            box.border_title = f"Set {self.label}"
            box.border_subtitle = "Enter to apply, Esc to cancel"
            yield Label(f"{self.label}:")
            yield Input(self.value, id="edit-input", select_on_focus=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


CLIPBOARD_NOTE = ("sent to the terminal's clipboard (OSC 52): it arrives where the terminal "
                  "takes it; in tmux, `set -g set-clipboard on` first. `w` writes files, "
                  "which always works")
FILE_SUFFIXES = {"pytorch": "-pytorch.py", "keras": "-keras.py", "jax": "-jax.py",
                 "share": "-share.txt"}


class CodeScreen(Dialog[None]):
    """The config as PyTorch, Keras and JAX code, and its share string. Number keys
    send a snippet, `y` the share string, to the terminal's clipboard; `w` writes them
    all to files (the clipboard reaches only terminals that accept OSC 52)."""

    BINDINGS = [
        Binding("escape,c,q", "dismiss", "close", show=False),
        Binding("1", "copy('pytorch')", "copy PyTorch", show=False),
        Binding("2", "copy('keras')", "copy Keras", show=False),
        Binding("3", "copy('jax')", "copy JAX", show=False),
        Binding("y", "copy('share')", "copy the share string", show=False),
        Binding("w", "write", "write them to files", show=False),
    ]

    DEFAULT_CSS = """
    CodeScreen > #code-box {
        width: 100;
    }
    CodeScreen .code-title {
        color: $accent;
        text-style: bold;
        margin: 1 0 0 0;
    }
    CodeScreen .code-body {
        background: $panel;
        padding: 0 1;
    }
    CodeScreen #share-string {
        text-wrap: nowrap;  /* one unbroken line, to select with the mouse */
        text-overflow: clip;
    }
    """

    def __init__(self, snippets: dict[str, str], share: str, folder: Path,
                 stem: str) -> None:
        """`folder` and `stem`: where `w` writes (stem-pytorch.py, ..., stem-share.txt)."""
        super().__init__()
        self.snippets = {**snippets, "share": share}
        self.folder, self.stem = folder, stem

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="code-box", classes="dialog-box") as box:
            box.border_title = "Copy as code"
            box.border_subtitle = ("1 PyTorch · 2 Keras · 3 JAX · y share string · w files · "
                                   "Esc closes")
            yield Static(Text(NAMING_NOTE, style="italic"), classes="code-note")
            for key, name in (("1", "pytorch"), ("2", "keras"), ("3", "jax")):
                yield Label(f"{key}  {name}", classes="code-title")
                yield Static(Text(self.snippets[name]), classes="code-body")
            yield Label("y  share string (initscope --config ...)", classes="code-title")
            yield Static(Text(self.snippets["share"]), id="share-string", classes="code-body")

    def action_copy(self, name: str) -> None:
        self.app.copy_to_clipboard(self.snippets[name])
        self.notify(f"{name} {CLIPBOARD_NOTE}", timeout=6)

    def action_write(self) -> None:
        """Every snippet and the share string, each to a file of its own."""
        if served():
            self.notify(SERVED_NOTE, severity="warning", timeout=6)
            return
        stem = free_stem(self.folder, self.stem, tuple(FILE_SUFFIXES.values()))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for name, suffix in FILE_SUFFIXES.items():
                write_new(self.folder / f"{stem}{suffix}", self.snippets[name] + "\n")
        except OSError as e:
            self.notify(f"could not write to {self.folder}: {e}", severity="error")
            return
        self.notify(f"wrote {self.folder / stem}-pytorch.py, -keras.py, -jax.py, -share.txt",
                    title="Written", timeout=6)
