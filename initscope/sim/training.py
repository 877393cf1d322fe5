"""Training the configured network with SGD, to watch what initialization does later.

The network is the configured stack of hidden layers plus a linear readout, all
initialized by the configured scheme from the same cached draws the statistics use
(so step 0 is exactly the network `report` shows). Tasks need no download:

- `teacher`: regression onto a fixed random tanh network, mean squared error;
- `spiral`: two interleaved spirals, softmax cross-entropy; the 2-D points are
  rotated into the configured number of input features;
- `output`: the output itself is the loss (the toy objective of the course notes).

After every step the trainer records the loss and, per hidden layer, the std of the
activations and of their gradient, how many distinct units there are, how many are
dead, and how far the weights have moved from their start.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS
from initscope.sim.budget import estimate, over_budget
from initscope.sim.config import TASKS, Config, ConfigError
from initscope.sim.draws import DrawCache
from initscope.sim.layers import dense_parameters, input_batch
from initscope.sim.memory import budget_bytes
from initscope.sim.result import Cancelled
from initscope.sim.schemes import SCHEMES
from initscope.sim.stats import std_of
from initscope.sim.validation import validate

TASK_OUTPUTS = {"teacher": 1, "spiral": 2, "output": 1}
TEACHER_WIDTH = 32
SPIRAL_TURNS = 1.5
SPIRAL_NOISE = 0.1


MAX_STEPS = 100_000


@dataclass
class LayerStep:
    """One hidden layer after one step."""

    distinct_units: int | None
    dead_units: int | None
    activation_std: float
    gradient_std: float
    weight_change: float  # ||W - W0|| / ||W0||, or ||W - W0|| when W0 = 0

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                for k, v in self.__dict__.items()}


@dataclass
class TrainStep:
    step: int  # 1-based: the state after this many updates
    loss: float
    layers: list[LayerStep] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"step": self.step, "loss": self.loss if math.isfinite(self.loss) else None,
                "layers": [lay.to_dict() for lay in self.layers]}


def distinct_units(w: np.ndarray, b: np.ndarray, rel_tol: float) -> int | None:
    """How many different units a layer has: units whose incoming weights and bias
    agree within `rel_tol` of the largest magnitude count as one. Each unit is first
    reduced to one number, its weights' projection on a fixed random direction; only
    units whose numbers are close are compared entry by entry. None once the weights
    are no longer finite (training diverged)."""
    full = np.vstack([w, b[None, :]])
    biggest = float(np.max(np.abs(full))) if full.size else 0.0
    if not math.isfinite(biggest):
        return None
    if biggest == 0.0:
        return 1
    tol = rel_tol * biggest
    direction = np.random.default_rng(12345).standard_normal(full.shape[0]).astype(full.dtype)
    keys = direction @ full
    order = np.argsort(keys)
    close = np.flatnonzero(np.diff(keys[order]) <= tol * float(np.abs(direction).sum()))
    same = sum(
        1 for k in close
        if float(np.max(np.abs(full[:, order[k]] - full[:, order[k + 1]]))) <= tol
    )
    return full.shape[1] - same


def _spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points on two interleaved spirals, labels 0 and 1."""
    labels = np.arange(n) % 2
    r = (np.arange(n) // 2 + 0.5) / math.ceil(n / 2)
    theta = SPIRAL_TURNS * 2 * math.pi * r + math.pi * labels
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    pts += SPIRAL_NOISE * r[:, None] * rng.standard_normal((n, 2))
    return pts, labels


def make_task(cfg: Config, task: str, draws: DrawCache) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (batch, inputs) and targets of a task, deterministic under the seed."""
    dt = np.dtype(cfg.dtype)
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(7, TASKS.index(task))))
    if task == "spiral":
        pts, labels = _spiral(cfg.batch, rng)
        basis = np.linalg.qr(rng.standard_normal((max(cfg.inputs, 2), 2)))[0][: cfg.inputs]
        x = pts @ basis.T if cfg.inputs >= 2 else pts[:, :1]
        x *= 1.0 / math.sqrt(max(float(np.mean(x * x)), 1e-12))
        return x.astype(dt), labels
    x = np.array(input_batch(cfg, draws, dt))  # the very inputs `report` runs on
    if task == "output":
        return x, np.zeros((cfg.batch, 1), dt)
    w1 = rng.standard_normal((cfg.inputs, TEACHER_WIDTH)) / math.sqrt(cfg.inputs)
    w2 = rng.standard_normal((TEACHER_WIDTH, 1)) / math.sqrt(TEACHER_WIDTH)
    y = np.tanh(x.astype(np.float64) @ w1) @ w2
    y /= max(float(y.std()), 1e-12)
    return x, y.astype(dt)


def check_training_budget(cfg: Config) -> None:
    """Training keeps the weights three times (now, at the start, velocity) on top of
    what one run needs."""
    weights = sum(fi * fo for fi, fo in cfg.fans()) * np.dtype(cfg.dtype).itemsize
    need = estimate(cfg).total + 3 * weights
    limit = budget_bytes(cfg)
    if need > limit:
        raise over_budget(need, limit, "training")


class Trainer:
    """SGD on the configured network; `step()` advances one update and records it."""

    def __init__(self, cfg: Config, draws: DrawCache | None = None) -> None:
        self.cfg = validate(cfg)
        if not ARCHS[cfg.arch].trainable or SCHEMES[cfg.scheme].data_init:
            trainable = ", ".join(a.name for a in ARCHS.values() if a.trainable)
            raise ConfigError(f"training covers the {trainable} network with a fixed "
                              "scheme: choose it, and a scheme that is not tuned on the batch")
        check_training_budget(cfg)
        self.draws = draws or DrawCache()
        self.dt = np.dtype(cfg.dtype)
        self.act = ACTIVATIONS[cfg.activation]
        self.x, self.y = make_task(cfg, cfg.task, self.draws)
        self.weights, self.biases = self._initial_weights()
        self.start = [w.copy() for w in self.weights]
        self.velocity = [np.zeros_like(w) for w in self.weights] + \
            [np.zeros_like(b) for b in self.biases]
        self.steps_done = 0
        self.rel_tol = 1e-9 if self.dt == np.float64 else 1e-5
        self._order = np.random.default_rng(
            np.random.SeedSequence(cfg.seed, spawn_key=(8,))).permutation(cfg.batch)

    def _initial_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The hidden layers exactly as `report` builds them, plus a readout."""
        cfg = self.cfg
        fans = cfg.fans() + [(cfg.widths()[-1], TASK_OUTPUTS[cfg.task])]
        return dense_parameters(cfg, self.draws, self.dt, fans)

    @property
    def hidden(self) -> int:
        return self.cfg.depth

    def _batch(self) -> tuple[np.ndarray, np.ndarray]:
        size = self.cfg.batch_size
        if size <= 0 or size >= self.cfg.batch:
            return self.x, self.y
        start = (self.steps_done * size) % self.cfg.batch
        idx = np.take(self._order, range(start, start + size), mode="wrap")
        return self.x[idx], self.y[idx]

    def _loss_and_gradient(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n = out.shape[0]
        if self.cfg.task == "spiral":
            shifted = out - out.max(axis=1, keepdims=True)
            p = np.exp(shifted)
            p /= p.sum(axis=1, keepdims=True)
            loss = -float(np.mean(np.log(np.maximum(p[np.arange(n), target], 1e-30))))
            p[np.arange(n), target] -= 1.0
            return loss, p / n
        if self.cfg.task == "output":
            return float(np.mean(out)), np.full_like(out, 1.0 / n)
        diff = out - target
        return 0.5 * float(np.mean(diff * diff)), diff / n

    def gradients(self, x: np.ndarray, y: np.ndarray):
        """Loss, gradients of every weight and bias, and the hidden activations and
        activation gradients (for the records)."""
        hs, ds = [], []
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = h @ w
            z += b
            if i == self.hidden:
                h = z
                break
            a = self.act.apply(z, self.cfg.slope)
            d = np.empty_like(z)
            self.act.derivative(z, a, d, self.cfg.slope)
            hs.append(a)
            ds.append(d)
            h = a
        loss, g = self._loss_and_gradient(h, y)
        gw, gb, gh = [None] * len(self.weights), [None] * len(self.biases), [None] * self.hidden
        ones = np.ones(x.shape[0], g.dtype)
        for i in range(self.hidden, -1, -1):
            below = x if i == 0 else hs[i - 1]
            gw[i] = below.T @ g
            gb[i] = ones @ g  # the column sums, by BLAS
            if i == 0:
                break
            gh[i - 1] = g @ self.weights[i].T
            g = np.multiply(gh[i - 1], ds[i - 1], out=ds[i - 1])
        return loss, gw, gb, hs, gh

    def step(self) -> TrainStep:
        """One SGD update; returns the record of the state it reached."""
        with np.errstate(all="ignore"):
            x, y = self._batch()
            loss, gw, gb, hs, gh = self.gradients(x, y)
            lr, mu = self.dt.type(self.cfg.lr), self.dt.type(self.cfg.momentum)
            for param, grad, vel in zip(self.weights + self.biases, gw + gb, self.velocity):
                grad *= -lr
                if mu:
                    vel *= mu
                    vel += grad
                    param += vel
                else:
                    param += grad
            self.steps_done += 1
            return TrainStep(self.steps_done, loss, self._records(hs, gh))

    def _records(self, hs: list[np.ndarray], gh: list[np.ndarray]) -> list[LayerStep]:
        out = []
        for i in range(self.hidden):
            w, w0 = self.weights[i], self.start[i]
            start_norm = float(np.linalg.norm(w0))
            moved = float(np.linalg.norm(w - w0))
            dead = (int(np.count_nonzero(hs[i].max(axis=0) <= 0))
                    if self.act.can_die(self.cfg.slope) else None)
            out.append(LayerStep(
                distinct_units=distinct_units(w, self.biases[i], self.rel_tol),
                dead_units=dead,
                activation_std=std_of(hs[i]),
                gradient_std=std_of(gh[i]),
                weight_change=moved / start_norm if start_norm > 0 else moved,
            ))
        return out

    def run(self, steps: int, cancel: threading.Event | None = None,
            on_step: Callable[[TrainStep], None] | None = None,
            stop_on_divergence: bool = False) -> list[TrainStep]:
        """`steps` more updates, checking `cancel` between them; with
        `stop_on_divergence`, the first non-finite loss is the last step taken."""
        if not 1 <= steps <= MAX_STEPS:
            raise ConfigError(f"steps must be between 1 and {MAX_STEPS}, not {steps}")
        records = []
        for _ in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            record = self.step()
            records.append(record)
            if on_step is not None:
                on_step(record)
            if stop_on_divergence and not math.isfinite(record.loss):
                break
        return records

