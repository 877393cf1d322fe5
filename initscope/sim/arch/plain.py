"""The plain stack: depth dense layers, h_l = phi(h_{l-1} W_l + b_l).

Weights are never materialized at their final scale: each layer multiplies by its
cached unit draw and scales the matmul's output instead, so a change of scheme,
gain, activation or bias reuses every random number and every buffer. The
data-dependent schemes (lsuv, data_dependent) tune their weights on the batch first
and then run with those.

With a norm (norm.py) each layer is h = phi(N(h W + b)) (norm before the activation)
or h = N(phi(h W + b)) (after); the row's pre-activation is what phi reads and its
activation what the layer passes on. With nf every weight is standardized, gamma 1
in the first layer (it reads the data) and the activation's gamma after that, and
the weight gradient is the raw weight's, through the standardization.
"""

from __future__ import annotations

import threading

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, OnForward, RowRun, Workspace
from initscope.sim.config import LAYER_NORMS, Config, ConfigError
from initscope.sim.datainit import DATA_INITS, has_replay
from initscope.sim.layers import (
    bias_draw,
    bias_term,
    dense_specs,
    input_batch,
    input_draw,
    upstream_draw,
    upstream_gradient,
    weight_basis,
    weight_draw,
)
from initscope.sim.memory import Estimate, basis_transient, samples_bytes
from initscope.sim.norm import (
    NormCache,
    activation_gamma,
    describe,
    normalize,
    normalize_backward,
    standardize,
)
from initscope.sim.result import LayerResult, RunResult
from initscope.sim.schemes import NORMAL, ONES, SCHEMES
from initscope.sim.theory import predict_layers, theory_note


class Buffers:
    """Arrays reused from run to run while the shapes and dtype stay the same."""

    def __init__(self, cfg: Config) -> None:
        dt = np.dtype(cfg.dtype)
        widths = cfg.widths()
        widest = max(widths + [cfg.inputs])
        self.acts = [np.empty((cfg.batch, w), dt) for w in widths]
        self.derivs = ([np.empty((cfg.batch, w), dt) for w in widths]
                       if ACTIVATIONS[cfg.activation].derivative_needs_input else None)
        self.z = np.empty(cfg.batch * widest, dt)
        self.ping = np.empty(cfg.batch * widest, dt)
        self.pong = np.empty(cfg.batch * widest, dt)
        self.dz = np.empty(cfg.batch * widest, dt)
        self.dw = np.empty(widest * widest, dt)

    @staticmethod
    def key(cfg: Config) -> tuple:
        return ("plain", cfg.batch, tuple(cfg.widths()), cfg.inputs, cfg.dtype,
                ACTIVATIONS[cfg.activation].derivative_needs_input)

    @staticmethod
    def view(buf: np.ndarray, rows: int, cols: int) -> np.ndarray:
        return buf[: rows * cols].reshape(rows, cols)


def run(space: Workspace, cfg: Config, cancel: threading.Event | None = None,
        on_forward: OnForward = None) -> RunResult:
    """The scheme's network; a data-dependent scheme is tuned on the batch first."""
    if SCHEMES[cfg.scheme].data_init:
        if not has_replay(cfg):
            space.draws.keep_only(set())  # the tuning draws what it needs afresh
        tuned = DATA_INITS[cfg.scheme](cfg, space.draws, cfg.init_steps)
        result = PlainRun(space, cfg, cancel, on_forward,
                          (tuned.weights, tuned.biases), theory_note(cfg)).execute()
        result.init_trace, result.init_iterations = tuned.trace, tuned.iterations
        return result
    return PlainRun(space, cfg, cancel, on_forward).execute()


def run_weights(space: Workspace, cfg: Config, weights: list[np.ndarray],
                biases: list[np.ndarray], cancel: threading.Event | None = None,
                step: int = 0) -> RunResult:
    """The same statistics for given weights and biases (say, after `step` training
    steps) instead of the scheme's; extra trailing layers (a readout) are ignored."""
    result = PlainRun(space, cfg, cancel, None, (weights, biases)).execute()
    result.step = step
    return result


class PlainRun(RowRun):
    """One run: a short-lived helper of `run`."""

    def __init__(self, space: Workspace, cfg: Config, cancel, on_forward,
                 explicit: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
                 note: str | None = None) -> None:
        super().__init__(space.draws, cfg, cancel, on_forward)
        self.space = space
        self.explicit = explicit
        self.note = note
        self.specs = dense_specs(cfg)
        # a normalization layer's kind, where it sits, and what the backward pass needs
        self.norm = cfg.norm if cfg.norm in LAYER_NORMS else None
        self.norm_first = cfg.norm_at == "before"
        self.caches: list[NormCache | None] = [None] * len(self.specs)
        self.standardized: list[tuple[np.ndarray, NormCache] | None] = [None] * len(self.specs)

    def _draws_needed(self) -> list[tuple]:
        """(kind, seed, purpose, layer, shape, dtype) of every draw this run reads."""
        c, dt = self.cfg, self.dt
        out = [input_draw(c, dt), upstream_draw(c, dt, c.widths()[-1])]
        if self.explicit is None:
            for i, (w, b) in enumerate(self.specs):
                out += [k for k in (weight_draw(c, i, w, dt), bias_draw(c, i, b, w.fan_out, dt))
                        if k is not None]
        return out

    def _weight_basis(self, i: int) -> np.ndarray | None:
        """The matrix the layer multiplies by, before `_scale`."""
        if self.explicit is not None:
            return self.explicit[0][i]
        basis = weight_basis(self.cfg, self.draws, i, self.specs[i][0], self.dt)
        if self.cfg.norm != "nf" or basis is None:
            return basis
        if self.standardized[i] is None:
            self.standardized[i] = self._standardize(i, basis)
        return self.standardized[i][0]

    def _standardize(self, i: int, basis: np.ndarray) -> tuple[np.ndarray, NormCache]:
        """Layer i's standardized weights: gamma 1 where the layer reads the data."""
        return standardize(basis, self.specs[i][0].scale, self._gamma(i))

    def _gamma(self, i: int) -> float:
        return 1.0 if i == 0 else activation_gamma(self.cfg.activation, self.cfg.slope)

    def _scale(self, i: int) -> float:
        if self.explicit is not None or self.cfg.norm == "nf":
            return 1.0
        return self.specs[i][0].scale

    def _bias(self, i: int) -> np.ndarray | float:
        if self.explicit is not None:
            return self.explicit[1][i]
        w, b = self.specs[i]
        return bias_term(self.cfg, self.draws, i, b, w.fan_out, self.dt)

    def execute(self) -> RunResult:
        cfg = self.cfg
        wanted = self._draws_needed()
        keys = set()
        for kind, *rest in wanted:  # the draws read, and the normal draws they come from
            keys.add(self.draws.key_of(kind, *rest))
            keys.add(self.draws.key_of(NORMAL, *rest))
        self.draws.keep_only(keys)
        self.buf = self.space.reuse(Buffers.key(cfg), lambda: Buffers(cfg))
        self.draws.prefetch(wanted)
        # once the weights are given, the initialization's predictions no longer apply
        theory = predict_layers(cfg) if self.explicit is None else None
        layers = []
        for i, (w, _) in enumerate(self.specs):
            target = w.std
            if self.explicit is not None:
                measured = float(np.std(self.explicit[0][i], dtype=np.float64))
            elif cfg.norm == "nf" and w.basis != ONES:  # what the layer multiplies by
                standardized = self._weight_basis(i)
                measured = float(np.std(standardized, dtype=np.float64))
                target = abs(self._gamma(i)) / np.sqrt(w.fan_in) if w.scale else 0.0
            else:
                key = weight_draw(cfg, i, w, self.dt)
                measured = 0.0 if key is None else abs(w.scale) * self.draws.measured_std(*key)
            layers.append(LayerResult(i + 1, w.fan_in, w.fan_out, measured, target,
                                      theory=theory[i] if theory else None))
        note = theory_note(cfg) if self.explicit is None else \
            self.note or "no prediction: the weights have been trained"
        result = RunResult(cfg, layers, theory_note=note)
        self._forward(result)
        return self.finish(result, lambda: self._backward(result))

    def _forward(self, result: RunResult) -> None:
        cfg, dt, act, buf = self.cfg, self.dt, self.act, self.buf
        h = input_batch(cfg, self.draws, dt)
        self.outputs: list[np.ndarray] = []  # what each layer passes on
        for i, (w, _) in enumerate(self.specs):
            self.check()
            lay = result.layers[i]
            z = buf.view(buf.z, cfg.batch, w.fan_out)
            basis = self._weight_basis(i)
            if basis is None:  # every weight equals w.scale: each unit sums its inputs
                z[...] = np.add.reduce(h, axis=1, dtype=dt, keepdims=True)
            else:
                np.matmul(h, basis, out=z)
            if self._scale(i) != 1.0:
                np.multiply(z, dt.type(self._scale(i)), out=z)
            bias = self._bias(i)
            if not isinstance(bias, float) or bias != 0.0:
                np.add(z, bias if not isinstance(bias, float) else dt.type(bias), out=z)
            if self.norm and self.norm_first:
                z, self.caches[i] = normalize(self.norm, z)
            lay.preactivation, _ = self.summarize(z)
            a = buf.acts[i]
            act.forward(z, a, cfg.slope)
            if buf.derivs is not None:
                act.derivative(z, a, buf.derivs[i], cfg.slope)
            out = a
            if self.norm and not self.norm_first:
                out, self.caches[i] = normalize(self.norm, a)
            if out is a:  # the summary counts the saturated units in the same pass
                lay.activation, outside = self.summarize(a, act.saturation)
            else:
                lay.activation, _ = self.summarize(out)
                outside = self.summarize(a, act.saturation)[1] if act.saturation else 0
            if act.saturation is not None:
                lay.saturated_fraction = outside / a.size
            if act.can_die(cfg.slope) and lay.activation.finite:
                lay.dead_fraction = float(np.count_nonzero(a.max(axis=0) <= 0)) / w.fan_out
            lay.identical_units = w.fan_out > 1 and _all_columns_equal(out)
            if not (lay.preactivation.finite and lay.activation.finite):
                result.overflow_layer, result.overflow_pass = i + 1, "forward"
                return
            self.outputs.append(out)
            h = out

    def _backward(self, result: RunResult) -> None:
        cfg, dt, act, buf = self.cfg, self.dt, self.act, self.buf
        g = upstream_gradient(cfg, self.draws, dt, cfg.widths()[-1])
        x = input_batch(cfg, self.draws, dt)
        spare = [buf.ping, buf.pong]
        for i in range(len(self.specs) - 1, -1, -1):
            self.check()
            w, lay = self.specs[i][0], result.layers[i]
            lay.gradient, _ = self.summarize(g)
            lay.identical_gradients = w.fan_out > 1 and _all_columns_equal(g)
            if not lay.gradient.finite:
                result.overflow_layer, result.overflow_pass = i + 1, "backward"
                return
            if self.norm and not self.norm_first:
                g = normalize_backward(g, self.caches[i])
            dz = buf.view(buf.dz, cfg.batch, w.fan_out)
            if buf.derivs is not None:
                np.multiply(g, buf.derivs[i], out=dz)
            else:
                act.derivative(None, buf.acts[i], dz, cfg.slope)
                np.multiply(dz, g, out=dz)
            if self.norm and self.norm_first:
                dz = normalize_backward(dz, self.caches[i])
            h = x if i == 0 else self.outputs[i - 1]
            dw = buf.view(buf.dw, w.fan_in, w.fan_out)
            np.matmul(h.T, dz, out=dw)
            raw = self.standardized[i]
            lay.weight_gradient, _ = self.summarize(
                dw if raw is None else normalize_backward(dw, raw[1]))
            if not lay.weight_gradient.finite:
                result.overflow_layer, result.overflow_pass = i + 1, "backward"
                return
            if i == 0:
                break
            nxt = buf.view(spare[i % 2], cfg.batch, w.fan_in)
            basis = self._weight_basis(i)
            if basis is None:
                nxt[...] = np.add.reduce(dz, axis=1, dtype=dt, keepdims=True)
            else:
                np.matmul(dz, basis.T, out=nxt)
            if self._scale(i) != 1.0:
                np.multiply(nxt, dt.type(self._scale(i)), out=nxt)
            g = nxt


def _all_columns_equal(a: np.ndarray) -> bool:
    """True when every unit of the layer took the same value on every sample. The
    first row decides almost every case at the cost of one row."""
    if not np.all(a[0] == a[0, 0]):
        return False
    return bool(np.all(a == a[:, :1]))


def _check(cfg: Config) -> None:
    if cfg.norm != "none" and SCHEMES[cfg.scheme].data_init:
        raise ConfigError(f"{cfg.scheme} tunes a stack without normalization: set norm to "
                          "none or choose another scheme")


def estimate(cfg: Config) -> Estimate:
    """Peak bytes of one run: cached draws, kept activations, per-run scratch,
    histogram samples and the temporaries of making the weights."""
    item = np.dtype(cfg.dtype).itemsize
    widths = cfg.widths()
    fans = cfg.fans()
    scheme = SCHEMES[cfg.scheme]
    basis = scheme.weight_spec(cfg, *fans[0]).basis  # one kind for every layer
    weights = sum(fi * fo for fi, fo in fans)
    copies = 0 if basis == ONES else 1 if basis == NORMAL else 2
    largest = max(fi * fo for fi, fo in fans)
    transient = basis_transient(basis, largest, item)
    # a data-dependent init keeps only its tuned copy of the weights for the run
    kept_copies = 1 if scheme.data_init else copies
    draws = (weights * kept_copies + cfg.batch * (cfg.inputs + widths[-1])
             + 2 * sum(widths)) * item
    if cfg.input_dist == "uniform":
        draws += cfg.batch * cfg.inputs * item
    act = ACTIVATIONS[cfg.activation]
    per_layer = 2 if act.derivative_needs_input else 1
    widest = max(widths + [cfg.inputs])
    if scheme.data_init:
        # The tuning comes first: it holds the draws and their basis besides the tuned
        # copy, with a forward pass's tensors or the QR's temporaries. A pass keeps
        # every layer's z and phi(z); the widest layer adds temporaries, some in
        # float64 (the stds); data_dependent squares weights in float64.
        passes = 2 * cfg.batch * sum(widths) * item + cfg.batch * widest * (2 * item + 16)
        if cfg.scheme == "data_dependent":
            passes += 2 * largest * 8
        transient = weights * copies * item + max(transient, passes)
    activations = per_layer * cfg.batch * sum(widths) * item
    scratch = (4 * cfg.batch * widest + widest * widest) * item + 2 * 65536 * 8
    if cfg.norm in LAYER_NORMS:  # each layer's xhat kept, two temporaries
        activations += cfg.batch * sum(widths) * item
        scratch += 2 * cfg.batch * widest * item + 2 * cfg.batch * 8 + 2 * widest * 8
    elif cfg.norm == "nf":  # each layer's standardized weights and unit draw's xhat
        draws += 2 * weights * item
        transient = max(transient, largest * (8 + 2 * item))
    return Estimate(draws, activations, scratch, samples_bytes(cfg, fans), transient)


PLAIN = Arch(
    name="plain",
    description="a stack of dense layers, h = phi(h W + b); depth counts layers",
    row_noun="layers",
    row_prefix="L",
    run=run,
    estimate=estimate,
    shape=lambda cfg: ", ".join(filter(None, [
        f"depth {cfg.depth}", describe(cfg.norm, cfg.norm_at, cfg.nf_alpha, False)])),
    theory=predict_layers,
    check=lambda cfg: _check(cfg),
    trainable=True,
    normalizes=True,
    tunes=True,
)

