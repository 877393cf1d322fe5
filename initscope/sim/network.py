"""Forward and backward passes of the configured network, with per-layer statistics.

Weights are never materialized at their final scale: each layer multiplies by its
cached unit draw and scales the matmul's output instead, so a change of scheme,
gain, activation or bias reuses every random number and every buffer.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config, validate
from initscope.sim.datainit import DATA_INITS
from initscope.sim.diagnose import diagnose
from initscope.sim.draws import DrawCache
from initscope.sim.memory import check_budget, sample_cap
from initscope.sim.schemes import NORMAL, ONES, SCHEMES, UNIFORM, BiasSpec, WeightSpec, bias_spec
from initscope.sim.stats import Summarizer, Summary, fill_histograms
from initscope.sim.theory import LayerTheory, predict_layers, theory_note

QUANTITIES = ("preactivation", "activation", "gradient", "weight_gradient")
FORWARD, COMPLETE = "forward", "complete"


class Cancelled(Exception):
    """Raised inside a run whose cancel event was set; the run leaves no result."""


@dataclass
class LayerResult:
    """Everything measured (and predicted) for one hidden layer."""

    index: int  # 1-based, as on screen
    fan_in: int
    fan_out: int
    weight_std: float
    weight_target_std: float
    preactivation: Summary | None = None
    activation: Summary | None = None
    gradient: Summary | None = None
    weight_gradient: Summary | None = None
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    identical_units: bool = False  # every unit equal on every sample: no symmetry broken
    identical_gradients: bool = False  # every unit's activation gradient equal, likewise
    theory: LayerTheory | None = None

    def to_dict(self) -> dict:
        out = {"index": self.index, "fan_in": self.fan_in, "fan_out": self.fan_out}
        for q in QUANTITIES:
            s = getattr(self, q)
            out[q] = s.to_dict() if s is not None else None
        out.update(
            dead_fraction=self.dead_fraction,
            saturated_fraction=self.saturated_fraction,
            weight_std=self.weight_std,
            weight_target_std=self.weight_target_std,
            theory=self.theory.to_dict() if self.theory else None,
        )
        return out


@dataclass
class RunResult:
    """One run of one config. `phase` is FORWARD while only the forward half is in."""

    config: Config
    layers: list[LayerResult]
    phase: str = FORWARD
    overflow_layer: int | None = None
    overflow_pass: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    step: int = 0  # training steps taken before these numbers (0: as initialized)
    theory_note: str | None = None  # where the predictions do not hold, or only roughly
    init_trace: list[dict] | None = None  # data-dependent schemes: each iteration's stds
    init_iterations: int = 0  # how many iterations the whole data-dependent init takes
    hidden_norm: list[float | None] | None = None  # rnn: batch-mean |h_t| per step
    gradient_norm: list[float | None] | None = None  # rnn: batch-mean |dL/dh_t| per step

    def snapshot(self) -> RunResult:
        """A copy that later changes to this result (the backward pass) do not touch."""
        return dataclasses.replace(
            self, layers=[dataclasses.replace(lay) for lay in self.layers],
            warnings=list(self.warnings),
        )

    def to_dict(self) -> dict:
        """JSON-ready: every non-finite number becomes None (null)."""
        return finite_or_none(self._as_dict())

    def _as_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "overflow_layer": self.overflow_layer,
            "overflow_pass": self.overflow_pass,
            "theory_note": self.theory_note,
            **({"init_trace": self.init_trace} if self.init_trace is not None else {}),
            **({"steps": [{"step": t + 1, "hidden_norm": h, "gradient_norm": g}
                          for t, (h, g) in enumerate(zip(self.hidden_norm, self.gradient_norm))]}
               if self.hidden_norm is not None else {}),
            "warnings": list(self.warnings),
        }


class _Buffers:
    """Arrays reused from run to run while the shapes and dtype stay the same."""

    def __init__(self, cfg: Config) -> None:
        dt = np.dtype(cfg.dtype)
        widths = cfg.widths()
        widest = max(widths + [cfg.inputs])
        self.key = (cfg.batch, tuple(widths), cfg.inputs, cfg.dtype,
                    ACTIVATIONS[cfg.activation].derivative_needs_input)
        self.acts = [np.empty((cfg.batch, w), dt) for w in widths]
        self.derivs = ([np.empty((cfg.batch, w), dt) for w in widths]
                       if self.key[-1] else None)
        self.z = np.empty(cfg.batch * widest, dt)
        self.ping = np.empty(cfg.batch * widest, dt)
        self.pong = np.empty(cfg.batch * widest, dt)
        self.dz = np.empty(cfg.batch * widest, dt)
        self.dw = np.empty(widest * widest, dt)

    @staticmethod
    def view(buf: np.ndarray, rows: int, cols: int) -> np.ndarray:
        return buf[: rows * cols].reshape(rows, cols)


class Simulator:
    """Runs configs one at a time, keeping draws and buffers between runs.

    Thread-safe: concurrent calls are serialized, and a stale run checks its cancel
    event between layers, so a new run waits at most one layer for the old one.
    """

    def __init__(self) -> None:
        self.draws = DrawCache()
        self._buffers: _Buffers | None = None
        self._lock = threading.Lock()

    def run(
        self,
        cfg: Config,
        cancel: threading.Event | None = None,
        on_forward: Callable[[RunResult], None] | None = None,
    ) -> RunResult:
        """Forward pass, then backward pass, of `cfg`. Raises ConfigError or
        MemoryBudgetError before touching memory, Cancelled if `cancel` is set."""
        validate(cfg)
        check_budget(cfg)
        with self._lock, np.errstate(all="ignore"):
            if cfg.arch != "plain":
                from initscope.sim.architectures import RecurrentRun, ResidualRun

                self.draws.keep_only(set())  # these runs draw what they need afresh
                runner = ResidualRun if cfg.arch == "residual" else RecurrentRun
                return runner(self.draws, cfg, cancel, on_forward).execute()
            if SCHEMES[cfg.scheme].data_init:
                tuned = DATA_INITS[cfg.scheme](cfg, self.draws, cfg.init_steps)
                result = _Run(self, cfg, cancel, on_forward, (tuned.weights, tuned.biases),
                              note=theory_note(cfg)).execute()
                result.init_trace, result.init_iterations = tuned.trace, tuned.iterations
                return result
            return _Run(self, cfg, cancel, on_forward).execute()

    def run_weights(self, cfg: Config, weights: list[np.ndarray], biases: list[np.ndarray],
                    cancel: threading.Event | None = None, step: int = 0) -> RunResult:
        """The same statistics for given weights and biases (say, after `step` training
        steps) instead of the scheme's; extra trailing layers (a readout) are ignored."""
        validate(cfg)
        check_budget(cfg)
        with self._lock, np.errstate(all="ignore"):
            result = _Run(self, cfg, cancel, None, (weights, biases)).execute()
        result.step = step
        return result

    def _prepare(self, cfg: Config, keys: set[tuple]) -> _Buffers:
        """Free what this config will not use, then (re)allocate buffers."""
        self.draws.keep_only(keys)
        buffers = self._buffers
        act = ACTIVATIONS[cfg.activation]
        key = (cfg.batch, tuple(cfg.widths()), cfg.inputs, cfg.dtype, act.derivative_needs_input)
        if buffers is None or buffers.key != key:
            self._buffers = None
            buffers = self._buffers = _Buffers(cfg)
        return buffers


class _Run:
    """The state of one run: a short-lived helper of Simulator.run."""

    def __init__(self, sim: Simulator, cfg: Config, cancel, on_forward,
                 explicit: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
                 note: str | None = None) -> None:
        self.sim, self.cfg = sim, cfg
        self.explicit = explicit
        self.note = note
        self.cancel, self.on_forward = cancel, on_forward
        self.dt = np.dtype(cfg.dtype)
        self.act = ACTIVATIONS[cfg.activation]
        self.scheme = SCHEMES[cfg.scheme]
        self.fans = cfg.fans()
        self.wspecs = [self.scheme.weight_spec(cfg, fi, fo) for fi, fo in self.fans]
        self.bspecs = [bias_spec(cfg, fi) for fi, _ in self.fans]
        self.summarize = Summarizer(self.dt, sample_cap(cfg))

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def _draws_needed(self) -> list[tuple]:
        """(kind, seed, purpose, layer, shape, dtype) of every draw this run reads."""
        c, dt = self.cfg, self.dt
        out = [(kind, c.seed, purpose, 0, shape, dt) for kind, purpose, shape in (
            (UNIFORM if c.input_dist == "uniform" else NORMAL, "input", (c.batch, c.inputs)),
            (NORMAL, "upstream", (c.batch, c.widths()[-1])),
        )]
        if self.explicit is not None:
            return out
        for i, (w, b) in enumerate(zip(self.wspecs, self.bspecs)):
            if w.basis != ONES:
                out.append((w.basis, c.seed, "weight", i, (w.fan_in, w.fan_out), dt))
            if b.scale:
                out.append((b.basis, c.seed, "bias", i, (w.fan_out,), dt))
        return out

    def _draw_keys(self) -> set[tuple]:
        """Cache keys of the draws this run reads and of the normal draws they come from."""
        keys = set()
        for kind, *rest in self._draws_needed():
            keys.add(DrawCache.key_of(kind, *rest))
            keys.add(DrawCache.key_of(NORMAL, *rest))
        return keys

    def _input(self) -> np.ndarray:
        c = self.cfg
        if c.input_dist == "uniform":
            return self.sim.draws.basis(UNIFORM, c.seed, "input", 0, (c.batch, c.inputs), self.dt
                                        ) * self.dt.type(math.sqrt(3.0))
        return self.sim.draws.normal(c.seed, "input", 0, (c.batch, c.inputs), self.dt)

    def _weight_basis(self, i: int, w: WeightSpec) -> np.ndarray | None:
        """The matrix the layer multiplies by, before `_scale`."""
        if self.explicit is not None:
            return self.explicit[0][i]
        return self.sim.draws.basis(w.basis, self.cfg.seed, "weight", i,
                                    (w.fan_in, w.fan_out), self.dt)

    def _scale(self, i: int) -> float:
        return 1.0 if self.explicit is not None else self.wspecs[i].scale

    def _bias(self, i: int, b: BiasSpec, width: int) -> np.ndarray | float:
        if self.explicit is not None:
            return self.explicit[1][i]
        if not b.scale:
            return b.mean
        unit = self.sim.draws.basis(b.basis, self.cfg.seed, "bias", i, (width,), self.dt)
        vec = unit * self.dt.type(b.scale)
        if b.mean:
            vec = vec + self.dt.type(b.mean)
        return vec

    def execute(self) -> RunResult:
        start = time.perf_counter()
        cfg = self.cfg
        self.buf = self.sim._prepare(cfg, self._draw_keys())
        self.sim.draws.prefetch(self._draws_needed())
        # once the weights are trained, the initialization's predictions no longer apply
        theory = predict_layers(cfg) if self.explicit is None else None
        layers = []
        for i, w in enumerate(self.wspecs):
            if self.explicit is not None:
                measured = float(np.std(self.explicit[0][i], dtype=np.float64))
            else:
                measured = abs(w.scale) * self.sim.draws.measured_std(
                    w.basis, cfg.seed, "weight", i, (w.fan_in, w.fan_out), self.dt)
            layers.append(LayerResult(i + 1, w.fan_in, w.fan_out, measured, w.std,
                                      theory=theory[i] if theory else None))
        note = theory_note(cfg) if self.explicit is None else \
            self.note or "no prediction: the weights have been trained"
        result = RunResult(cfg, layers, theory_note=note)
        self._forward(result)
        fill_histograms([lay.preactivation for lay in layers], cfg.bins, cfg.hist_range == "shared")
        fill_histograms([lay.activation for lay in layers], cfg.bins, cfg.hist_range == "shared")
        result.seconds = time.perf_counter() - start
        if self.on_forward is not None:
            result.warnings = diagnose(result)
            self.on_forward(result.snapshot())
        if result.overflow_layer is None:
            self._backward(result)
            fill_histograms([lay.gradient for lay in layers], cfg.bins, cfg.hist_range == "shared")
            fill_histograms([lay.weight_gradient for lay in layers], cfg.bins,
                            cfg.hist_range == "shared")
        result.warnings = diagnose(result)
        result.phase = COMPLETE
        result.seconds = time.perf_counter() - start
        return result

    def _forward(self, result: RunResult) -> None:
        cfg, dt, act, buf = self.cfg, self.dt, self.act, self.buf
        h = self._input()
        for i, (w, b) in enumerate(zip(self.wspecs, self.bspecs)):
            self._check()
            lay = result.layers[i]
            z = buf.view(buf.z, cfg.batch, w.fan_out)
            basis = self._weight_basis(i, w)
            if basis is None:  # every weight equals w.scale: each unit sums its inputs
                z[...] = np.add.reduce(h, axis=1, dtype=dt, keepdims=True)
            else:
                np.matmul(h, basis, out=z)
            if self._scale(i) != 1.0:
                np.multiply(z, dt.type(self._scale(i)), out=z)
            bias = self._bias(i, b, w.fan_out)
            if not isinstance(bias, float) or bias != 0.0:
                np.add(z, bias if not isinstance(bias, float) else dt.type(bias), out=z)
            lay.preactivation, _ = self.summarize(z)
            a = buf.acts[i]
            act.forward(z, a, cfg.slope)
            if buf.derivs is not None:
                act.derivative(z, a, buf.derivs[i], cfg.slope)
            lay.activation, outside = self.summarize(a, act.saturation)
            if act.saturation is not None:
                lay.saturated_fraction = outside / a.size
            if act.can_die and lay.activation.finite:
                lay.dead_fraction = float(np.count_nonzero(a.max(axis=0) <= 0)) / w.fan_out
            lay.identical_units = w.fan_out > 1 and _all_columns_equal(a)
            if not (lay.preactivation.finite and lay.activation.finite):
                result.overflow_layer, result.overflow_pass = i + 1, "forward"
                return
            h = a

    def _backward(self, result: RunResult) -> None:
        cfg, dt, act, buf = self.cfg, self.dt, self.act, self.buf
        g = self.sim.draws.normal(cfg.seed, "upstream", 0, (cfg.batch, cfg.widths()[-1]), dt)
        x = self._input()
        spare = [buf.ping, buf.pong]
        for i in range(len(self.wspecs) - 1, -1, -1):
            self._check()
            w, lay = self.wspecs[i], result.layers[i]
            lay.gradient, _ = self.summarize(g)
            lay.identical_gradients = w.fan_out > 1 and _all_columns_equal(g)
            if not lay.gradient.finite:
                result.overflow_layer, result.overflow_pass = i + 1, "backward"
                return
            dz = buf.view(buf.dz, cfg.batch, w.fan_out)
            if buf.derivs is not None:
                np.multiply(g, buf.derivs[i], out=dz)
            else:
                act.derivative(None, buf.acts[i], dz, cfg.slope)
                np.multiply(dz, g, out=dz)
            h = x if i == 0 else buf.acts[i - 1]
            dw = buf.view(buf.dw, w.fan_in, w.fan_out)
            np.matmul(h.T, dz, out=dw)
            lay.weight_gradient, _ = self.summarize(dw)
            if not lay.weight_gradient.finite:
                result.overflow_layer, result.overflow_pass = i + 1, "backward"
                return
            if i == 0:
                break
            nxt = buf.view(spare[i % 2], cfg.batch, w.fan_in)
            basis = self._weight_basis(i, w)
            if basis is None:
                nxt[...] = np.add.reduce(dz, axis=1, dtype=dt, keepdims=True)
            else:
                np.matmul(dz, basis.T, out=nxt)
            if self._scale(i) != 1.0:
                np.multiply(nxt, dt.type(self._scale(i)), out=nxt)
            g = nxt


def finite_or_none(value):
    """JSON has no infinity or NaN: such numbers, however deep, become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


def _all_columns_equal(a: np.ndarray) -> bool:
    """True when every unit of the layer took the same value on every sample. The
    first row decides almost every case at the cost of one row."""
    if not np.all(a[0] == a[0, 0]):
        return False
    return bool(np.all(a == a[:, :1]))
