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


class TrainingProgress(Message):
    """Training moved on: the statistics of the current weights, and every step's
    record so far. A newer one replaces one still queued."""

    def __init__(self, state: object, display: Display, history: list,
                 stopped_by: object | None) -> None:
        super().__init__()
        self.state = state  # which network: a reset starts a new one
        self.display = display
        self.history = history
        self.stopped_by = stopped_by  # the worker that is done (paused, stepped, diverged)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.stopped_by is None
