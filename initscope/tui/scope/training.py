"""The training session: one network trained from one config, its records, and the
worker that steps it.

`Trainer.run` is the only training loop; the worker passes it the worker's cancel
event and a callback that keeps the records and, a few times a second, posts the
statistics of the current weights. A failure raises out of the worker, and the
screen that started it hears of it by the worker's group ("train").
"""

from __future__ import annotations

import threading
import time
from functools import partial

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker, get_current_worker

from initscope.sim import Cancelled, Config
from initscope.sim.remote import AnySimulator
from initscope.sim.training import Trainer, TrainStep, suggest_lr
from initscope.tui.display import Display, build_display
from initscope.tui.workers import forget_when_done

TRAIN_POST_SECONDS = 0.25  # how often training shows its progress
HISTORY_POINTS = 512  # records kept: more than a sparkline or heatmap has columns
SUGGESTION_STEPS = 50  # a suggested learning rate runs at least this many steps (or Steps)
TRAIN_GROUP = "train"


class TrainingSession:
    """The network being trained and its records. Only the training worker touches
    `trainer` and `history`, under `lock` (a cancelled worker may still be finishing
    a step when the next one starts)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.trainer: Trainer | None = None
        self.history: list[TrainStep] = []  # the first, every `stride`-th, and the last
        self.stride = 1
        self.suggested_lr: float | None = None  # once it diverged: a rate that does not
        self.lock = threading.Lock()

    def add(self, record: TrainStep) -> None:
        """Keep `record`, and at most HISTORY_POINTS records however long training
        runs: past that, every other one goes (the stride doubles), evenly."""
        history = self.history
        if len(history) > 1 and history[-1].step % self.stride:
            history.pop()  # kept only as the latest until now
        history.append(record)
        if len(history) > HISTORY_POINTS:
            self.stride *= 2
            self.history = [r for i, r in enumerate(history)
                            if i == 0 or r.step % self.stride == 0 or r is record]

    def notes(self) -> list[str]:
        """The trainer's warnings (initial loss, divergence), with the rate to try."""
        if self.trainer is None:
            return []
        if self.suggested_lr is None:
            return self.trainer.warnings()
        return self.trainer.warnings(
            advice=f"; try lr {self.suggested_lr:g} (L halves it; R resets)")


class TrainingProgress(Message):
    """Training moved on: the statistics of the current weights, and every step's
    record so far. A newer one replaces one still queued."""

    def __init__(self, session: TrainingSession, display: Display, history: list[TrainStep],
                 stopped_by: Worker | None, notes: list[str] | None = None) -> None:
        super().__init__()
        self.notes = notes or []  # warnings: the initial loss, the divergence
        self.stop = session.trainer.stopped if session.trainer else None  # why it stopped
        self.session = session  # which network: a reset starts a new one
        self.display = display
        self.history = history
        self.stopped_by = stopped_by  # the worker that is done (paused, stepped, diverged)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.stopped_by is None


def start_training(node: DOMNode, session: TrainingSession, sim: AnySimulator,
                   steps: int | None) -> Worker:
    """Take `steps` steps (None: the config's `steps`) in a worker of `node`'s,
    replacing any training worker it has running."""
    return node.run_worker(forget_when_done(partial(_train, node, session, sim, steps)),
                           thread=True, exclusive=True, group=TRAIN_GROUP,
                           name=TRAIN_GROUP, exit_on_error=False)


def _train(node: DOMNode, session: TrainingSession, sim: AnySimulator, steps: int | None) -> None:
    worker = get_current_worker()
    with session.lock:
        if session.trainer is None:
            session.trainer = Trainer(session.cfg, draws=sim.draws)
        last_post = time.perf_counter()

        def on_step(record: TrainStep) -> None:
            nonlocal last_post
            session.add(record)
            if time.perf_counter() - last_post >= TRAIN_POST_SECONDS:
                _post(node, session, sim, None)
                last_post = time.perf_counter()

        trainer = session.trainer
        if trainer.stopped is not None:
            _post(node, session, sim, worker)  # diverged: nothing more to take
            return
        try:
            trainer.run(steps or session.cfg.steps, cancel=worker.cancelled_event,
                        on_step=on_step, stop_on_divergence=True)
            if trainer.stopped is not None and not trainer.stopped.at_init:
                _post(node, session, sim, None)  # the message first, then the search
                # the suggestion must hold well past the step this rate failed at
                check = min(session.cfg.steps, max(SUGGESTION_STEPS, 4 * trainer.stopped.step))
                session.suggested_lr, _ = suggest_lr(session.cfg, check, sim.draws,
                                                     worker.cancelled_event)
        except Cancelled:
            pass  # paused: show where it stopped
        _post(node, session, sim, worker)


def _post(node: DOMNode, session: TrainingSession, sim: AnySimulator,
          stopped_by: Worker | None) -> None:
    trainer = session.trainer
    result = sim.run_weights(session.cfg, trainer.weights, trainer.biases,
                             step=trainer.steps_done)
    node.post_message(TrainingProgress(session, build_display(result), list(session.history),
                                       stopped_by, session.notes()))
