"""The per-layer table: the same columns as `initscope report`."""

from __future__ import annotations

from textual.widgets import DataTable

from initscope.report import TABLE


class LayerTable(DataTable):
    """Rows arrive preformatted (see tui/app.py), so an update is cheap."""

    def __init__(self) -> None:
        super().__init__(id="table", zebra_stripes=True, cursor_type="row")
        self.border_title = "Per layer"

    def on_mount(self) -> None:
        for header, key in TABLE:
            self.add_column(header, key=f"{key}-{header}")

    def show(self, rows: list[tuple[str, ...]]) -> None:
        keep = self.cursor_row
        self.clear()
        self.add_rows(rows)
        if rows:
            self.move_cursor(row=min(keep, len(rows) - 1), animate=False)
