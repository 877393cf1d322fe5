"""The per-layer table: the same columns as `initscope report`.

The rows arrive as one preformatted text (built off the UI thread, see display.py):
drawing it costs a fraction of a DataTable redraw, which would stall the screen for
tens of milliseconds on every recompute. The header stays put while the body scrolls.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static


class LayerTable(Vertical):
    """A fixed header line over a scrollable body, both plain aligned text."""

    def __init__(self) -> None:
        super().__init__(id="table")
        self.border_title = "Per layer"

    def compose(self) -> ComposeResult:
        yield Static(id="table-header")
        with VerticalScroll(id="table-scroll"):
            yield Static(id="table-body")

    def show(self, header: Content, body: Content) -> None:
        self.query_one("#table-header", Static).update(header, layout=False)
        self.query_one("#table-body", Static).update(body)

    def lines(self) -> list[str]:
        """The body as shown, one string per layer (for tests and exports)."""
        body = self.query_one("#table-body", Static)
        return str(body.render()).splitlines()
