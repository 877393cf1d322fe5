"""What every architecture provides, and the steps every runner shares.

An architecture is one module of this package that builds an `Arch`: its runner,
what a row of its result is, its memory estimate, its theory and its own checks.
The registry (`ARCHS`, in __init__.py) is what the CLI's choices, the app's Network
field, the docs and the tests read, so a new kind of network is one new module.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import NORMS, Config
from initscope.sim.diagnose import diagnose
from initscope.sim.draws import DrawCache
from initscope.sim.memory import Estimate, sample_cap
from initscope.sim.result import COMPLETE, Cancelled, LayerResult, RunResult
from initscope.sim.schemes import NORMAL
from initscope.sim.stats import Summarizer
from initscope.sim.theory import LayerTheory

OnForward = Callable[[RunResult], None] | None


class Workspace(Protocol):
    """What a runner gets from the Simulator: the cached draws, and one slot for
    arrays worth keeping from run to run (replaced when its key changes)."""

    draws: DrawCache

    def reuse(self, key: tuple, make: Callable[[], object]) -> object: ...


@dataclass(frozen=True)
class Arch:
    """One kind of network."""

    name: str
    description: str  # one line, for the CLI's help, the app and the README
    row_noun: str  # what a row of the result is, plural: "layers", "blocks"
    row_prefix: str  # its label on screen: L3, B3, t3
    run: Callable[[Workspace, Config, threading.Event | None, OnForward], RunResult]
    estimate: Callable[[Config], Estimate]  # peak bytes of one run, before allocating
    theory: Callable[[Config], list[LayerTheory] | None]  # predicted stds per row
    shape: Callable[[Config], str]  # the network in a few words, for titles
    check: Callable[[Config], None] = lambda cfg: None  # raises ConfigError
    trainable: bool = False  # training.Trainer covers it
    normalizes: bool = False  # takes the norm option (norm.py)
    norms: tuple[str, ...] = NORMS  # the norm option's values it takes, if it normalizes
    convolutional: bool = False  # takes the conv fields and the kernel-only schemes
    blocks: bool = False  # residual blocks: a branch mode, nf's alpha, a signal propagation plot
    tunes: bool = False  # takes the data-dependent schemes (datainit.py tunes a dense stack)
    attends: bool = False  # takes the transformer fields and recipes (recipes.py)
    # config fields whose default differs here, so a run stays interactive (a conv
    # network's batch of 1000 images is 30 times the work of a dense stack's)
    defaults: dict = field(default_factory=dict)

    def default(self, name: str):
        """The field's default on this architecture."""
        if name in self.defaults:
            return self.defaults[name]
        return next(f.default for f in dataclasses.fields(Config) if f.name == name)


class RowRun:
    """The parts of a run every architecture shares: summaries, cancel checks, unit
    flags, and the forward-then-backward ending."""

    def __init__(self, draws: DrawCache, cfg: Config, cancel: threading.Event | None,
                 on_forward: OnForward) -> None:
        self.draws, self.cfg, self.cancel, self.on_forward = draws, cfg, cancel, on_forward
        self.dt = np.dtype(cfg.dtype)
        self.act = ACTIVATIONS[cfg.activation]
        self.summarize = Summarizer(self.dt, sample_cap(cfg))
        self.start = time.perf_counter()

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def measure(self, lay: LayerResult, quantity: str, x: np.ndarray) -> bool:
        """Summarize `x` into `lay`; False when it is no longer finite."""
        summary, _ = self.summarize(x)
        setattr(lay, quantity, summary)
        return summary.finite

    def channel_means(self, lay: LayerResult, a: np.ndarray) -> None:
        """Each unit's (channel's) mean over the batch (and pixels) of a (rows, units)
        array: their spread is what batch norm removes."""
        ones = np.ones(a.shape[0], a.dtype)  # a BLAS product: far faster than a.mean(axis=0)
        means = (ones @ a) / a.dtype.type(a.shape[0])
        self.measure(lay, "channel_mean", means)

    def unit_flags(self, lay: LayerResult, a: np.ndarray) -> None:
        if self.act.can_die(self.cfg.slope):
            lay.dead_fraction = float(np.count_nonzero(a.max(axis=0) <= 0)) / a.shape[1]
        if self.act.saturation is not None:
            lo, hi = self.act.saturation
            lay.saturated_fraction = float(np.count_nonzero((a <= lo) | (a >= hi))) / a.size

    def finish(self, result: RunResult, backward: Callable[[], None]) -> RunResult:
        """Show the forward half (if asked), run the backward pass unless the forward
        one overflowed, and close the result."""
        result.seconds = time.perf_counter() - self.start
        if self.on_forward is not None:
            result.warnings = diagnose(result)
            self.on_forward(result.snapshot())
        if result.overflow_layer is None:
            backward()
        result.warnings = diagnose(result)
        result.phase = COMPLETE
        result.seconds = time.perf_counter() - self.start
        return result


def keep_draws(draws: DrawCache, wanted: list[tuple | None]) -> None:
    """Free every cached draw but the `wanted` ones, (kind, seed, purpose, layer, shape,
    dtype) each (None: a weight or bias that reads no draw), and the normal draws they
    derive from: a change of scheme, gain or bias then costs no new random numbers."""
    keys = set()
    for want in filter(None, wanted):
        kind, *rest = want
        keys.add(draws.key_of(kind, *rest))
        keys.add(draws.key_of(NORMAL, *rest))
    draws.keep_only(keys)


def fresh_draws_runner(run_class: type[RowRun]) -> Callable[..., RunResult]:
    """The runner of an architecture that draws what it needs afresh each run (it
    materializes its weights), freeing the draws of earlier runs first."""

    def run(space: Workspace, cfg: Config, cancel: threading.Event | None = None,
            on_forward: OnForward = None) -> RunResult:
        space.draws.keep_only(set())
        return run_class(space.draws, cfg, cancel, on_forward).execute()

    return run
