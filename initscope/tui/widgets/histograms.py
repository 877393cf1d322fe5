"""The per-layer histogram grid: as many plots as fit, paged through the layers.

Only a page of plot widgets exists at a time, so a 1000-layer network costs no
more to show than a 10-layer one. The plot text itself arrives ready-made from a
worker (see plots.py); this widget only lays out and assigns it.
"""

from __future__ import annotations

import math

from textual.containers import Container
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

CELL_MIN_WIDTH = 24  # two plots side by side at 80x24
CELL_MIN_HEIGHT = 8


def grid_shape(width: int, height: int, layers: int) -> tuple[int, int]:
    """(columns, rows) of plots for a grid of `width` x `height` cells."""
    cols = max(1, width // CELL_MIN_WIDTH)
    rows = max(1, height // CELL_MIN_HEIGHT)
    cols = min(cols, layers)
    rows = min(rows, math.ceil(layers / cols))
    return cols, rows


class HistogramPlot(Static):
    """One layer's histogram: a title line and the plot."""

    DEFAULT_CSS = """
    HistogramPlot {
        padding: 0 1 0 0;
        height: 1fr;
        width: 1fr;
        overflow: hidden hidden;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """


class HistogramGrid(Container, can_focus=False):
    """Lays out one page of plots; tells its owner when the page or its size changes."""

    DEFAULT_CSS = """
    HistogramGrid {
        layout: grid;
        grid-size: 1 1;
        height: 1fr;
        min-height: 8;
        border: round $panel-lighten-2;
        border-title-color: $accent;
        border-subtitle-color: $text-muted;
    }
    """

    plots: reactive[list] = reactive(list, always_update=True, init=False)
    """Ready-made text of the visible page's plots, one Content per visible layer."""

    class LayoutChanged(Message):
        """The visible layers or the plot size changed: plots must be drawn again."""

        def __init__(self, grid: HistogramGrid) -> None:
            super().__init__()
            self.grid = grid

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layer_count = 1
        self.page = 0
        self.shape = (1, 1)
        self._cells: list[HistogramPlot] = []

    @property
    def capacity(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.layer_count / self.capacity))

    def visible_layers(self) -> list[int]:
        """0-based indices of the layers on the current page."""
        start = self.page * self.capacity
        return list(range(start, min(self.layer_count, start + self.capacity)))

    def cell_size(self) -> tuple[int, int]:
        """Plot area of one cell: its width, and its height below the title line."""
        cols, rows = self.shape
        width = max(1, self.content_size.width // cols - 1)
        height = max(1, self.content_size.height // rows - 1)
        return width, height

    def set_layers(self, layers: int) -> None:
        if layers != self.layer_count:
            self.layer_count = layers
            self.page = min(self.page, self.pages - 1)
            self._relayout()

    def turn(self, delta: int) -> bool:
        """Go `delta` pages on (or back); False when already at that end."""
        page = min(max(self.page + delta, 0), self.pages - 1)
        if page == self.page:
            return False
        self.page = page
        self._fill_cells()
        self.post_message(self.LayoutChanged(self))
        return True

    def jump(self, last: bool) -> None:
        self.turn(self.pages if last else -self.pages)

    def on_resize(self) -> None:
        self._relayout()

    def _relayout(self) -> None:
        size = self.content_size
        if size.width == 0 or size.height == 0:
            return
        self.shape = grid_shape(size.width, size.height, self.layer_count)
        self.page = min(self.page, self.pages - 1)
        self.styles.grid_size_columns = self.shape[0]
        self.styles.grid_size_rows = self.shape[1]
        self._fill_cells()
        self.post_message(self.LayoutChanged(self))

    def _fill_cells(self) -> None:
        """Keep one cell per grid slot; hide the slots past the last layer."""
        if len(self._cells) != self.capacity:
            self.remove_children()
            self._cells = [HistogramPlot() for _ in range(self.capacity)]
            self.mount_all(self._cells)
        want = len(self.visible_layers())
        for i, cell in enumerate(self._cells):
            cell.display = i < want

    def watch_plots(self, texts: list[Content]) -> None:
        for cell, text in zip(self._cells, texts):
            cell.update(text, layout=False)  # same size: no layout pass needed
