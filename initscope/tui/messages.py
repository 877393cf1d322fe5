"""Messages the worker threads post to the app (posting is thread-safe)."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message

from initscope.sim.config import Config
from initscope.tui.display import Display, PlotRequest


class SimulationResult(Message):
    """A run's numbers, ready to show: after the forward pass, then when complete.
    A newer one replaces one still queued."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SimulationResult)


class SimulationFailed(Message):
    def __init__(self, config: Config, error: str) -> None:
        super().__init__()
        self.config = config
        self.error = error


class PlotsReady(Message):
    """Plot text for one request; dropped if the request is no longer current."""

    def __init__(self, request: PlotRequest, texts: list[Content]) -> None:
        super().__init__()
        self.request = request
        self.texts = texts

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PlotsReady)
