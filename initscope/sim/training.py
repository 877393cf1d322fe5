"""Training the configured network (SGD or Adam), to watch what initialization does later.

The network is the configured stack of hidden layers plus a linear readout, all
initialized by the configured scheme from the same cached draws the statistics use
(so step 0 is exactly the network `report` shows). Tasks need no download:

- `teacher`: regression onto a fixed random tanh network, mean squared error;
- `spiral`: two interleaved spirals, softmax cross-entropy; the 2-D points are
  rotated into the configured number of input features;
- `output`: the output itself is the loss (the toy objective of the course notes).

After every step the trainer records the loss and, per hidden layer, the std of the
activations and of their gradient, how many distinct units there are, how many are
dead or saturated, the weight gradient's norm, the update-to-data ratio, and how far
the weights have moved from their start.

Divergence: a step whose loss is not finite, or more than DIVERGENCE_FACTOR times the
initial loss in size, stops a run that asks for it (`stop_on_divergence`); the trainer
names the step and the first layer whose weights or gradient went non-finite (or grew
the most), and `suggest_lr` finds a learning rate that does not diverge.
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
from initscope.sim.config import MAX_STEPS, TASKS, Config, ConfigError
from initscope.sim.draws import DrawCache
from initscope.sim.layers import dense_parameters, input_batch
from initscope.sim.memory import budget_bytes
from initscope.sim.optim import make_optimizer
from initscope.sim.result import Cancelled
from initscope.sim.schemes import SCHEMES
from initscope.sim.stats import std_of
from initscope.sim.validation import validate

TASK_OUTPUTS = {"teacher": 1, "spiral": 2, "output": 1}
TEACHER_WIDTH = 32
SPIRAL_TURNS = 1.5
SPIRAL_NOISE = 0.1
AT_INIT = "non-finite loss at the initial weights"
DIVERGENCE_FACTOR = 1e3  # a loss this many times the initial one (in size) has diverged
LADDER_HALVINGS = 10  # suggest_lr tries lr/2, lr/4, ... this far down
LADDER_WORK = 2e10  # multiply-adds the ladder may spend; past it, suggest lr/10
# the heatmap of |activation| over the steps: log10(|a|) bins, a subsample per layer
HEAT_EDGES = tuple(np.linspace(-4.0, 1.0, 21))  # 1e-4 ... 10; below and above go to the ends
HEAT_SAMPLE = 4096


@dataclass
class LayerStep:
    """One hidden layer after one step."""

    distinct_units: int | None
    dead_units: int | None
    activation_std: float
    gradient_std: float
    weight_change: float  # ||W - W0|| / ||W0||, or ||W - W0|| when W0 = 0
    saturated_fraction: float | None = None  # of the activations, where the activation saturates
    gradient_norm: float = 0.0  # ||dL/dW|| (Frobenius) at this step
    update_ratio: float | None = None  # log10(||update|| / ||W||); None when either is 0
    heat: tuple[int, ...] = ()  # counts of log10|a| over HEAT_EDGES' bins (a subsample)

    def to_dict(self, heat: bool = False) -> dict:
        out = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
               for k, v in self.__dict__.items() if k != "heat"}
        if heat:
            out["heat"] = list(self.heat)
        return out


def heat_counts(a: np.ndarray) -> tuple[int, ...]:
    """Counts of log10|a| in the HEAT_EDGES bins, on an even subsample of at most
    HEAT_SAMPLE entries; zeros and values below the first edge count in the first
    bin, values above the last edge (infinities too) in the last, NaN nowhere."""
    flat = a.reshape(-1)
    flat = flat[:: max(1, flat.size // HEAT_SAMPLE)]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.abs(flat, dtype=np.float64))
    logs = np.clip(logs[~np.isnan(logs)], HEAT_EDGES[0], HEAT_EDGES[-1])
    counts, _ = np.histogram(logs, bins=np.array(HEAT_EDGES))
    return tuple(int(c) for c in counts)


@dataclass
class TrainStep:
    step: int  # 1-based: the state after this many updates
    loss: float
    layers: list[LayerStep] = field(default_factory=list)

    def to_dict(self, heat: bool = False) -> dict:
        return {"step": self.step, "loss": self.loss if math.isfinite(self.loss) else None,
                "layers": [lay.to_dict(heat) for lay in self.layers]}


@dataclass(frozen=True)
class Stop:
    """Why training stopped early: the step, what happened, and the first layer to go."""

    step: int
    reason: str  # "non-finite loss", "loss grew more than 1000x", or AT_INIT
    layer: int  # 1-based; the readout is depth + 1

    @property
    def at_init(self) -> bool:
        """The first loss is the initial weights': no learning rate can mend it."""
        return self.reason == AT_INIT

    def to_dict(self) -> dict:
        return {"step": self.step, "reason": self.reason, "layer": self.layer}


@dataclass(frozen=True)
class InitialLoss:
    """The loss before any update against what a well-scaled output would give:
    ln K for K-class cross-entropy (uniform predictions), and for the teacher's
    squared error 0.5 (Var(target) + Var(output)), with Var(target) = 1 and
    Var(output) = 0 for a well-scaled readout. A much larger initial loss means the
    last layer starts too large (Karpathy, "A recipe for training neural networks",
    2019: "verify loss @ init")."""

    value: float
    expected: float | None  # None for the output task: its loss has no scale to expect

    @property
    def far_off(self) -> bool:
        return (self.expected is not None and math.isfinite(self.value)
                and self.value > 2.0 * self.expected)

    def warning(self) -> str | None:
        if not self.far_off:
            return None
        return (f"initial loss {self.value:.3g} is {self.value / self.expected:.1f}x the "
                f"{self.expected:.3g} a well-scaled output gives: the last layer's init is "
                "too large")

    def to_dict(self) -> dict:
        value = self.value if math.isfinite(self.value) else None
        return {"value": value, "expected": self.expected, "far_off": self.far_off}


def expected_initial_loss(task: str) -> float | None:
    return {"spiral": math.log(TASK_OUTPUTS["spiral"]), "teacher": 0.5}.get(task)


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


def weight_copies(cfg: Config) -> int:
    """Copies of the weights training keeps: now, at the start, the gradients, and the
    optimizer's state (Adam's two moments, or SGD's velocity when it has momentum)."""
    state = 2 if cfg.optimizer == "adam" else (1 if cfg.momentum else 0)
    return 3 + state


def training_bytes(cfg: Config) -> int:
    """An upper bound on training's peak: what one run of the statistics needs (the
    app shows the trained weights with one), the weights several times
    (`weight_copies`), and a step's own arrays: every hidden layer's activations and
    their derivatives, the gradient flowing back, and the task's inputs and targets."""
    item = np.dtype(cfg.dtype).itemsize
    weights = (sum(fi * fo for fi, fo in cfg.fans()) + cfg.widths()[-1] * TASK_OUTPUTS[cfg.task]
               + sum(cfg.widths())) * item
    rows = cfg.batch if cfg.batch_size <= 0 else min(cfg.batch, cfg.batch_size)
    step = (2 * sum(cfg.widths()) + 2 * max(cfg.widths())) * rows * item
    task = cfg.batch * (cfg.inputs + TASK_OUTPUTS[cfg.task]) * item * 2
    return estimate(cfg).total + weight_copies(cfg) * weights + step + task


def check_training_budget(cfg: Config) -> None:
    need = training_bytes(cfg)
    limit = budget_bytes(cfg)
    if need > limit:
        raise over_budget(need, limit, "training")


class Trainer:
    """SGD or Adam on the configured network; `step()` advances one update and
    records it."""

    def __init__(self, cfg: Config, draws: DrawCache | None = None) -> None:
        self.cfg = validate(cfg)
        if not ARCHS[cfg.arch].trainable or SCHEMES[cfg.scheme].data_init:
            trainable = ", ".join(a.name for a in ARCHS.values() if a.trainable)
            raise ConfigError(f"training covers the {trainable} network with a fixed "
                              "scheme: choose it, and a scheme that is not tuned on the batch")
        if cfg.norm != "none":
            raise ConfigError("training covers networks without normalization: set norm "
                              "to none to train")
        if cfg.steps < 1:  # 0 is a sweep's (the init alone), not training's
            raise ConfigError(f"steps must be between 1 and {MAX_STEPS}, not {cfg.steps}")
        check_training_budget(cfg)
        self.draws = draws or DrawCache()
        self.dt = np.dtype(cfg.dtype)
        self.act = ACTIVATIONS[cfg.activation]
        self.x, self.y = make_task(cfg, cfg.task, self.draws)
        self.weights, self.biases = self._initial_weights()
        self.start = [w.copy() for w in self.weights]
        self.start_norms = [float(np.linalg.norm(w)) for w in self.start]  # fixed: once
        self.optimizer = make_optimizer(cfg.optimizer, self.weights + self.biases, cfg.lr,
                                        cfg.momentum)
        self.steps_done = 0
        self.initial_loss: InitialLoss | None = None
        self.stopped: Stop | None = None
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
        """One update; returns the record of the state it reached (the loss is the one
        measured before the update, on the batch the update used)."""
        with np.errstate(all="ignore"):
            x, y = self._batch()
            loss, gw, gb, hs, gh = self.gradients(x, y)
            if self.initial_loss is None:
                self.initial_loss = InitialLoss(loss, expected_initial_loss(self.cfg.task))
            norms = [float(np.linalg.norm(g)) for g in gw]
            updates = self.optimizer.update(self.weights + self.biases, gw + gb)
            self.steps_done += 1
            return TrainStep(self.steps_done, loss, self._records(hs, gh, norms, updates))

    def _records(self, hs: list[np.ndarray], gh: list[np.ndarray], norms: list[float],
                 updates: list[np.ndarray]) -> list[LayerStep]:
        out = []
        saturation = self.act.saturation
        for i in range(self.hidden):
            w, w0, a = self.weights[i], self.start[i], hs[i]
            start_norm = self.start_norms[i]
            moved = float(np.linalg.norm(w - w0))
            dead = (int(np.count_nonzero(a.max(axis=0) <= 0))
                    if self.act.can_die(self.cfg.slope) else None)
            saturated = None
            if saturation is not None:
                lo, hi = saturation
                saturated = float(np.count_nonzero((a <= lo) | (a >= hi))) / a.size
            out.append(LayerStep(
                distinct_units=distinct_units(w, self.biases[i], self.rel_tol),
                dead_units=dead,
                activation_std=std_of(a),
                gradient_std=std_of(gh[i]),
                weight_change=moved / start_norm if start_norm > 0 else moved,
                saturated_fraction=saturated,
                gradient_norm=norms[i],
                update_ratio=update_ratio(updates[i], w),
                heat=heat_counts(a),
            ))
        return out

    def diverged(self, record: TrainStep) -> Stop | None:
        """Whether `record` is the step training diverged at, and where."""
        start = self.initial_loss.value if self.initial_loss else record.loss
        # the scale a loss is measured against: the initial one, or the loss a
        # well-scaled output gives (1 for the output task's, which has none) if larger
        scale = max(abs(start), expected_initial_loss(self.cfg.task) or 1.0)
        if math.isfinite(record.loss):
            if abs(record.loss) <= DIVERGENCE_FACTOR * scale:
                return None
            reason = f"loss grew more than {DIVERGENCE_FACTOR:g}x"
        else:  # step 1's loss is measured before its update: on the initial weights
            reason = AT_INIT if record.step == 1 else "non-finite loss"
        return Stop(record.step, reason, self._first_bad_layer(record))

    def _first_bad_layer(self, record: TrainStep) -> int:
        """The first layer (1-based; the readout is depth + 1) whose weights or last
        gradient are not finite; if all are, the layer whose gradient is largest."""
        for i, w in enumerate(self.weights):
            grad_bad = i < len(record.layers) and not math.isfinite(record.layers[i].gradient_norm)
            if grad_bad or not np.isfinite(w).all():
                return i + 1
        norms = [lay.gradient_norm for lay in record.layers]
        return int(np.argmax(norms)) + 1 if norms else 1

    def run(self, steps: int, cancel: threading.Event | None = None,
            on_step: Callable[[TrainStep], None] | None = None,
            stop_on_divergence: bool = False, keep: bool = True) -> list[TrainStep]:
        """`steps` more updates, checking `cancel` between them; with
        `stop_on_divergence`, the step that diverges is the last one taken, and
        `stopped` says which and where. The records are returned, or (`keep=False`)
        only passed to `on_step`, so that memory stays bounded."""
        if not 1 <= steps <= MAX_STEPS:
            raise ConfigError(f"steps must be between 1 and {MAX_STEPS}, not {steps}")
        records = []
        for _ in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            record = self.step()
            if keep:
                records.append(record)
            if on_step is not None:
                on_step(record)
            if stop_on_divergence:
                self.stopped = self.diverged(record)
                if self.stopped is not None:
                    break
        return records

    def warnings(self, advice: str = "") -> list[str]:
        """What the run's numbers say that a reader must not miss; `advice` (what to
        try, in the words of the front end) ends the divergence's line."""
        out = []
        if self.initial_loss is not None and (w := self.initial_loss.warning()):
            out.append(w)
        if self.stopped is not None and self.stopped.at_init:
            out.append(f"the loss is not finite at the initial weights (from layer "
                       f"{self.stopped.layer}): the init overflows, and no learning rate "
                       "mends that: change the init")
        elif self.stopped is not None:
            out.append(f"diverged at step {self.stopped.step} ({self.stopped.reason}, from "
                       f"layer {self.stopped.layer}): training stopped{advice}")
        return out


def update_ratio(update: np.ndarray, w: np.ndarray) -> float | None:
    """log10(||update|| / ||W||), the update-to-data ratio: about -3 is the usual rule
    of thumb for a healthy rate (Karpathy, CS231n "Neural networks part 3", which
    compares these norms). For plain SGD the update is -lr dW, so this is
    log10(lr rms(dW) / rms(W)); for the zero-mean weights of every random scheme that
    is log10(lr std(dW) / std(W)) up to the means' share. Norms, not stds, keep it
    defined for constant weights, whose std is 0. None when either norm is 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        moved, size = float(np.linalg.norm(update)), float(np.linalg.norm(w))
    if not (moved > 0 and size > 0) or not math.isfinite(moved / size):
        return None
    return math.log10(moved / size)


def suggest_lr(cfg: Config, steps: int, draws: DrawCache | None = None,
               cancel: threading.Event | None = None) -> tuple[float, bool]:
    """A learning rate for `cfg`, which diverged within `steps` steps: the largest of
    lr/2, lr/4, ... that runs `steps` steps from the same init without diverging, when
    that is cheap (LADDER_WORK); otherwise lr/10. Also whether the ladder found it."""
    per_step = 3 * cfg.batch * sum(fi * fo for fi, fo in cfg.fans())
    if per_step * steps * LADDER_HALVINGS > LADDER_WORK:
        return cfg.lr / 10, False
    draws = draws or DrawCache()
    for k in range(1, LADDER_HALVINGS + 1):
        trial = Trainer(cfg.replace(lr=cfg.lr / 2 ** k), draws)
        trial.run(steps, cancel=cancel, stop_on_divergence=True, keep=False)
        if trial.stopped is None:
            return trial.cfg.lr, True
    return cfg.lr / 2 ** LADDER_HALVINGS, False
