"""The per-layer table: the same columns as `initscope report`.

The table arrives as one preformatted text (built off the UI thread, see display.py):
drawing it costs a fraction of a DataTable redraw, which stalled the screen for tens
of milliseconds on every recompute. It scrolls both ways in small terminals.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static


class LayerTable(ScrollableContainer):
    """Header line and one line per layer, plain aligned text."""

    DEFAULT_CSS = """
    LayerTable {
        height: 12;
        min-height: 5;
        border: round $panel-lighten-2;
        border-title-color: $accent;
        scrollbar-size: 1 1;
    }
    LayerTable:focus {
        background: $boost;
    }
    LayerTable > .table-body {
        width: auto;
        text-wrap: nowrap;
    }
    """

    text: reactive[Content] = reactive(Content, always_update=True, init=False)
    """The whole table, header first, as one preformatted text."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Per layer"

    def compose(self) -> ComposeResult:
        yield Static(classes="table-body")

    def watch_text(self, text: Content) -> None:
        self.query_one(".table-body", Static).update(text)

    def lines(self) -> list[str]:
        """The layer rows as shown, one string per layer (for tests and exports)."""
        body = self.query_one(".table-body", Static)
        return str(body.render()).splitlines()[1:]
