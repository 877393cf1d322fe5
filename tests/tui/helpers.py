"""Shared helpers for the pilot tests."""

from __future__ import annotations

from textual.worker import WorkerCancelled

from initscope.report import table_cells
from initscope.sim import Config, Simulator
from initscope.tui.app import InitScopeApp
from initscope.tui.scope.main import MainScreen
from initscope.tui.scope.pane import ScopePane
from initscope.tui.widgets.table import LayerTable

SMALL = Config(depth=6, width=(64,), inputs=32, batch=128)


def main(app: InitScopeApp) -> MainScreen:
    """The main screen, whatever is on top of it."""
    return app.screen_stack[0] if isinstance(app.screen_stack[0], MainScreen) else app.start


def pane(app: InitScopeApp) -> ScopePane:
    """The main screen's scope pane."""
    return main(app).pane


async def settle(app: InitScopeApp, pilot, rounds: int = 50, screen=None) -> None:
    """Wait for workers, and the messages they post, until the screen (default: the
    main screen) shows its current configs."""
    for _ in range(rounds):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass  # superseded by a newer worker: that is the point of exclusive workers
        await pilot.pause()
        if (screen or main(app)).settled() and not app.workers:
            return
    raise AssertionError("the app did not settle on the current config")


async def wait_for(pilot, condition, rounds: int = 400, seconds: float = 0.01) -> None:
    """Let the app run until `condition()` holds (at most `rounds` pauses)."""
    for _ in range(rounds):
        await pilot.pause(seconds)
        if condition():
            return
    raise AssertionError("condition not reached")


async def press_and_finish(app: InitScopeApp, pilot, *keys: str) -> None:
    """Press `keys`, then wait for the workers they started (exports, writes)."""
    await pilot.press(*keys)
    await app.workers.wait_for_complete()
    await pilot.pause()


def screen_rows(app: InitScopeApp) -> list[tuple[str, ...]]:
    """The per-layer table as drawn, split into cells."""
    return [tuple(line.split()) for line in app.query_one(LayerTable).lines()]


def core_rows(cfg: Config) -> list[tuple[str, ...]]:
    return table_cells(Simulator().run(cfg))


def plot_titles(app: InitScopeApp) -> list[str]:
    from initscope.tui.widgets.histograms import HistogramPlot

    return [str(p.render()).split("\n")[0] for p in app.query(HistogramPlot) if p.display]


_CHARS = {"left_square_bracket": "[", "right_square_bracket": "]",
          "left_curly_bracket": "{", "right_curly_bracket": "}", "question_mark": "?"}


async def burst(app: InitScopeApp, keys: list[str]) -> None:
    """Send key presses as fast as a person hammering the keyboard: queued at once,
    without waiting for the app to catch up (unlike `pilot.press`)."""
    import asyncio

    from textual import events

    for key in keys:
        char = _CHARS.get(key, key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)
        await asyncio.sleep(0)


def screen_text(app: InitScopeApp, region=None) -> list[str]:
    """The screen as text, one string per row (read back from Textual's own SVG), or
    only the part inside `region` (a widget's, say)."""
    import html
    import re

    svg = app.export_screenshot()
    cell = 12.2  # Textual's SVG: 0.61 of its 20 px font per cell
    width, height = app.size
    grid = [[" "] * width for _ in range(height)]
    texts = list(re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>',
                             svg))
    rows = sorted({float(m.group(2)) for m in texts})
    for m in texts:
        row, col = rows.index(float(m.group(2))), round(float(m.group(1)) / cell)
        for i, char in enumerate(html.unescape(m.group(3)).replace("\xa0", " ")):
            if row < height and col + i < width:
                grid[row][col + i] = char
    lines = ["".join(r) for r in grid]
    if region is not None:
        lines = [line[region.x:region.right] for line in lines[region.y:region.bottom]]
    return lines
