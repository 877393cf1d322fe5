"""The Simulator: runs configs one at a time on their architecture's runner, keeping
the unit draws and reusable buffers between runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from initscope.sim.arch import ARCHS
from initscope.sim.arch.base import OnForward
from initscope.sim.arch.plain import run_weights
from initscope.sim.budget import check_budget
from initscope.sim.config import Config, ConfigError
from initscope.sim.draws import DrawCache
from initscope.sim.result import RunResult
from initscope.sim.validation import validate


class Simulator:
    """Thread-safe: concurrent calls are serialized, and a stale run checks its cancel
    event between layers, so a new run waits at most one layer for the old one."""

    def __init__(self) -> None:
        self.draws = DrawCache()
        self._kept: tuple[tuple, object] | None = None
        self._lock = threading.Lock()

    def reuse(self, key: tuple, make: Callable[[], object]) -> object:
        """The object kept under `key`, or a new one from `make` that replaces it (the
        old one is freed first, so two never coexist)."""
        if self._kept is None or self._kept[0] != key:
            self._kept = None
            self._kept = (key, make())
        return self._kept[1]

    def run(self, cfg: Config, cancel: threading.Event | None = None,
            on_forward: OnForward = None) -> RunResult:
        """Forward pass, then backward pass, of `cfg`. Raises ConfigError or
        MemoryBudgetError before touching memory, Cancelled if `cancel` is set."""
        validate(cfg)
        check_budget(cfg)
        with self._lock, np.errstate(all="ignore"):
            return ARCHS[cfg.arch].run(self, cfg, cancel, on_forward)

    def run_weights(self, cfg: Config, weights: list[np.ndarray], biases: list[np.ndarray],
                    cancel: threading.Event | None = None, step: int = 0) -> RunResult:
        """The statistics of given weights and biases of a plain stack (say, after
        `step` training steps); extra trailing layers (a readout) are ignored."""
        validate(cfg)
        check_budget(cfg)
        if cfg.arch != "plain":
            raise ConfigError("given weights are run on the plain network only")
        with self._lock, np.errstate(all="ignore"):
            return run_weights(self, cfg, weights, biases, cancel, step)
