"""Residual and recurrent networks: the same per-row statistics as the plain stack.

Residual (`--arch residual`): the stream x (width units, unit-Gaussian at the input)
passes `depth` blocks x <- x + alpha F(x), F(x) = phi(x W1 + b1) W2 + b2. A row of the
result is a block: its pre-activations (x W1 + b1), its output (the stream after the
block), the gradient w.r.t. that output, and the gradient of W1.

Recurrent (`--arch rnn`): h_t = phi(h_{t-1} W + x_t U + b), h_0 = 0, for `time_steps`
steps. A row is a time step: z_t, h_t, dL/dh_t (backpropagation through time of the
unit-Gaussian gradient at the last step) and the step's share of dL/dW. Each row also
carries the batch-mean norm of h_t and of dL/dh_t.

The predictions follow the same variance recursion as theory.py, through the block
(Var x' = Var x + alpha^2 Var F) or through time.
"""

from __future__ import annotations

import math
import time

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.diagnose import diagnose
from initscope.sim.draws import DrawCache
from initscope.sim.memory import sample_cap
from initscope.sim.network import COMPLETE, Cancelled, LayerResult, RunResult
from initscope.sim.schemes import NORMAL, ONES, SCHEMES, WeightSpec, bias_spec
from initscope.sim.stats import Summarizer, fill_histograms
from initscope.sim.theory import LayerTheory, gaussian_moments, theory_applies

QUANTITIES = ("preactivation", "activation", "gradient", "weight_gradient")


class _ArchRun:
    """What the residual and recurrent runs share: draws, weights, summaries, ending."""

    def __init__(self, draws: DrawCache, cfg: Config, cancel, on_forward) -> None:
        self.draws, self.cfg, self.cancel, self.on_forward = draws, cfg, cancel, on_forward
        self.dt = np.dtype(cfg.dtype)
        self.act = ACTIVATIONS[cfg.activation]
        self.scheme = SCHEMES[cfg.scheme]
        self.width = cfg.width[0]
        self.summarize = Summarizer(self.dt, sample_cap(cfg))

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def matrix(self, index: int, spec: WeightSpec) -> np.ndarray:
        shape = (spec.fan_in, spec.fan_out)
        if spec.basis == ONES or spec.scale == 0:
            return np.full(shape, spec.scale if spec.basis == ONES else 0.0, self.dt)
        unit = self.draws.basis(spec.basis, self.cfg.seed, "weight", index, shape, self.dt)
        return unit * self.dt.type(spec.scale)

    def bias(self, index: int, fan_in: int, fan_out: int) -> np.ndarray:
        spec = bias_spec(self.cfg, fan_in)
        vec = np.full(fan_out, spec.mean, self.dt)
        if spec.scale:
            vec += self.draws.basis(spec.basis, self.cfg.seed, "bias", index, (fan_out,),
                                    self.dt) * self.dt.type(spec.scale)
        return vec

    def measure(self, lay: LayerResult, quantity: str, x: np.ndarray) -> bool:
        """Summarize `x` into `lay`; False when it is no longer finite."""
        summary, _ = self.summarize(x)
        setattr(lay, quantity, summary)
        return summary.finite

    def finish(self, result: RunResult, start: float, backward) -> RunResult:
        shared = self.cfg.hist_range == "shared"
        for q in QUANTITIES[:2]:
            fill_histograms([getattr(lay, q) for lay in result.layers], self.cfg.bins, shared)
        result.seconds = time.perf_counter() - start
        if self.on_forward is not None:
            result.warnings = diagnose(result)
            self.on_forward(result.snapshot())
        if result.overflow_layer is None:
            backward()
            for q in QUANTITIES[2:]:
                fill_histograms([getattr(lay, q) for lay in result.layers], self.cfg.bins,
                                shared)
        result.warnings = diagnose(result)
        result.phase = COMPLETE
        result.seconds = time.perf_counter() - start
        return result

    def unit_flags(self, lay: LayerResult, a: np.ndarray) -> None:
        if self.act.can_die:
            lay.dead_fraction = float(np.count_nonzero(a.max(axis=0) <= 0)) / a.shape[1]
        if self.act.saturation is not None:
            lo, hi = self.act.saturation
            lay.saturated_fraction = float(np.count_nonzero((a <= lo) | (a >= hi))) / a.size


class ResidualRun(_ArchRun):
    def specs(self) -> tuple[list, list, float]:
        """(W1 specs, W2 specs, alpha) per block, by the branch mode."""
        cfg, w = self.cfg, self.width
        first = [self.scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
        last = [self.scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
        alpha = 0.0 if cfg.branch == "rezero" else 1.0
        if cfg.branch in ("zero_last", "fixup"):
            last = [WeightSpec(NORMAL, 0.0, w, w) for _ in last]
        if cfg.branch == "fixup":  # He, scaled by L^(-1/2) for two-layer branches
            std = math.sqrt(2.0 / w) * cfg.depth ** -0.5
            first = [WeightSpec(NORMAL, std, w, w) for _ in first]
        return first, last, alpha

    def biases(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cfg.branch == "fixup":  # Fixup's scalar biases start at 0
            return np.zeros(self.width, self.dt), np.zeros(self.width, self.dt)
        return self.bias(2 * block, self.width, self.width), \
            self.bias(2 * block + 1, self.width, self.width)

    def theory(self, first, last, alpha) -> list[LayerTheory] | None:
        cfg = self.cfg
        if not theory_applies(cfg) and cfg.branch not in ("zero_last", "fixup", "rezero"):
            return None
        b = bias_spec(cfg, self.width) if cfg.branch != "fixup" else None
        b_mean, b_var = (b.mean, b.std ** 2) if b else (0.0, 0.0)
        q, rows = 1.0, []
        for w1, w2 in zip(first, last):
            pre = self.width * w1.std ** 2 * q + b_var
            mom = gaussian_moments(self.act, b_mean, math.sqrt(pre), cfg.slope)
            branch = alpha ** 2 * (self.width * w2.std ** 2 * mom.phi2 + b_var)
            rows.append([pre, q, q + branch, mom, w1, w2])
            q = q + branch
        g2, out = 1.0, []
        for pre, q_in, q_out, mom, w1, w2 in reversed(rows):
            dz1 = alpha ** 2 * self.width * w2.std ** 2 * g2 * mom.dphi2
            dw1 = cfg.batch * q_in * dz1
            out.append(LayerTheory(math.sqrt(pre), math.sqrt(q_out), math.sqrt(g2),
                                   math.sqrt(dw1)))
            g2 = g2 + self.width * w1.std ** 2 * dz1
        out.reverse()
        return out

    def execute(self) -> RunResult:
        start = time.perf_counter()
        cfg, dt = self.cfg, self.dt
        first, last, alpha = self.specs()
        theory = self.theory(first, last, alpha)
        w1s = [self.matrix(2 * b, s) for b, s in enumerate(first)]
        w2s = [self.matrix(2 * b + 1, s) for b, s in enumerate(last)]
        bs = [self.biases(b) for b in range(cfg.depth)]
        layers = [LayerResult(b + 1, self.width, self.width,
                              float(np.std(w1s[b], dtype=np.float64)), first[b].std,
                              theory=theory[b] if theory else None) for b in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=None if theory else
                           "no prediction: every weight has one value")
        x = np.asarray(self.draws.normal(cfg.seed, "input", 0, (cfg.batch, self.width), dt))
        self.xs, self.zs, self.hs = [x], [], []
        for b in range(cfg.depth):
            self.check()
            lay = layers[b]
            z = x @ w1s[b]
            z += bs[b][0]
            a = self.act.apply(z, cfg.slope)
            branch = a @ w2s[b]
            branch += bs[b][1]
            x = x + dt.type(alpha) * branch
            self.zs.append(z)
            self.hs.append(a)
            self.xs.append(x)
            self.unit_flags(lay, a)
            ok = self.measure(lay, "preactivation", z) & self.measure(lay, "activation", x)
            if not ok:
                result.overflow_layer, result.overflow_pass = b + 1, "forward"
                break

        def backward() -> None:
            g = np.asarray(self.draws.normal(cfg.seed, "upstream", 0, (cfg.batch, self.width),
                                             dt))
            for b in range(cfg.depth - 1, -1, -1):
                self.check()
                lay = layers[b]
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = b + 1, "backward"
                    return
                da = (g * dt.type(alpha)) @ w2s[b].T
                dz = da * self.act.slope_of(self.zs[b], cfg.slope)
                self.measure(lay, "weight_gradient", self.xs[b].T @ dz)
                g = g + dz @ w1s[b].T

        return self.finish(result, start, backward)


class RecurrentRun(_ArchRun):
    def inputs(self, t: int) -> np.ndarray | None:
        if self.cfg.rnn_input == "first" and t > 0:
            return None
        return np.asarray(self.draws.normal(self.cfg.seed, "input", t,
                                            (self.cfg.batch, self.cfg.inputs), self.dt))

    def theory(self, w: WeightSpec, u: WeightSpec) -> list[LayerTheory] | None:
        cfg = self.cfg
        if not theory_applies(cfg):
            return None
        b = bias_spec(cfg, self.width)
        m2, rows = 0.0, []
        for t in range(cfg.time_steps):
            drive = u.fan_in * u.std ** 2 if self.inputs_on(t) else 0.0
            pre = self.width * w.std ** 2 * m2 + drive + b.std ** 2
            mom = gaussian_moments(self.act, b.mean, math.sqrt(pre), cfg.slope)
            rows.append((pre, mom, m2))
            m2 = mom.phi2
        g2, out = 1.0, []
        for pre, mom, m2_prev in reversed(rows):
            out.append(LayerTheory(math.sqrt(pre), math.sqrt(max(mom.phi2 - mom.phi1 ** 2, 0)),
                                   math.sqrt(g2), math.sqrt(cfg.batch * m2_prev * mom.dphi2 * g2)))
            g2 = self.width * w.std ** 2 * mom.dphi2 * g2
        out.reverse()
        return out

    def inputs_on(self, t: int) -> bool:
        return self.cfg.rnn_input == "all" or t == 0

    def execute(self) -> RunResult:
        start = time.perf_counter()
        cfg, dt, n = self.cfg, self.dt, self.width
        wspec = self.scheme.weight_spec(cfg, n, n)
        uspec = self.scheme.weight_spec(cfg, cfg.inputs, n)
        w, u = self.matrix(0, wspec), self.matrix(1, uspec)
        b = self.bias(0, n, n)
        theory = self.theory(wspec, uspec)
        layers = [LayerResult(t + 1, n, n, float(np.std(w, dtype=np.float64)), wspec.std,
                              theory=theory[t] if theory else None)
                  for t in range(cfg.time_steps)]
        result = RunResult(cfg, layers, theory_note=None if theory else
                           "no prediction: every weight has one value")
        result.hidden_norm = [None] * cfg.time_steps
        result.gradient_norm = [None] * cfg.time_steps
        h = np.zeros((cfg.batch, n), dt)
        self.hs, self.zs = [h], []
        for t in range(cfg.time_steps):
            self.check()
            z = h @ w
            x = self.inputs(t)
            if x is not None:
                z += x @ u
            z += b
            h = self.act.apply(z, cfg.slope)
            self.zs.append(z)
            self.hs.append(h)
            lay = layers[t]
            self.unit_flags(lay, h)
            result.hidden_norm[t] = float(np.mean(np.linalg.norm(h.astype(np.float64), axis=1)))
            if not (self.measure(lay, "preactivation", z) & self.measure(lay, "activation", h)):
                result.overflow_layer, result.overflow_pass = t + 1, "forward"
                break

        def backward() -> None:
            g = np.asarray(self.draws.normal(cfg.seed, "upstream", 0, (cfg.batch, n), dt))
            for t in range(cfg.time_steps - 1, -1, -1):
                self.check()
                lay = layers[t]
                result.gradient_norm[t] = float(np.mean(np.linalg.norm(g.astype(np.float64),
                                                                       axis=1)))
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = t + 1, "backward"
                    return
                dz = g * self.act.slope_of(self.zs[t], cfg.slope)
                self.measure(lay, "weight_gradient", self.hs[t].T @ dz)
                g = dz @ w.T

        return self.finish(result, start, backward)
