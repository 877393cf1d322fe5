"""Modal screens: the key help, and typing an exact value into a field."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class HelpScreen(ModalScreen[None]):
    """Every key of the app, from its bindings, plus the selector keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close", show=False)]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__(id="help")
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for key, description in self.rows:
            table.add_row(key, description)
        with VerticalScroll(id="help-box") as box:
            box.border_title = "initscope keys"
            box.border_subtitle = "Esc closes"
            yield Static(table)
            yield Static(Text(
                "Selectors (left pane): up/down or tab to move, left/right to step, "
                "Enter to type an exact value. ctrl+p opens the command palette: every "
                "scheme, activation, view, preset and theme by name.", style="italic"))


class EditScreen(ModalScreen[str | None]):
    """Asks for one value; returns the text typed, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def __init__(self, label: str, value: str) -> None:
        super().__init__(id="edit")
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box") as box:
            box.border_title = f"Set {self.label}"
            box.border_subtitle = "Enter to apply, Esc to cancel"
            yield Label(f"{self.label}:")
            yield Input(self.value, id="edit-input", select_on_focus=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
