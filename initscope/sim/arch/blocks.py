"""Residual blocks, dense or convolutional: the branch modes, the norms' placements,
nf's alpha and beta, the variance recursion through a block and the runner.

residual.py (dense layers) and resconv.py (convolutions) build their networks from
this: the recursion takes how a layer mixes variances (`DenseMixing` here, a grid
over the image for convolutions), the runner how a layer is applied (`linear`,
`linear_back`, `weight_grad`), so the block's logic is written once.

x <- x + alpha F(x), F(x) = phi(x W1 + b1) W2 + b2. The branch mode sets how the
block starts: both layers from the scheme (plain), the last layer at zero
(zero_last), Fixup (He first layer scaled by L^(-1/2), zero last layer, zero biases)
or ReZero (alpha = 0). A norm (norm.py) sits before the branch (pre-norm,
x + F(N(x))) or after the add (post-norm, N(x + F(x))). With nf the block is
x + alpha F(x / beta) with both branch weights standardized (gamma 1 for W1, which
reads the stream; the activation's gamma for W2) and beta_k = sqrt(1 + k alpha^2),
the stream's expected std before block k (Brock, De, Smith 2021): F keeps unit
variance, so the stream's variance grows by alpha^2 per block. Where the stream is
normalized the recursion divides by s^2 = v + eps as the plain stack's does
(theory.py); pre-norm makes the branch's input unit-variance, so the stream's
variance grows linearly in depth, while post-norm resets it to 1 after every block
(Xiong et al. 2020, "On layer normalization in the transformer architecture",
section 3, for the same contrast in transformers).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import RowRun, Workspace, keep_draws
from initscope.sim.config import LAYER_NORMS, Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.layers import (
    bias_draw,
    bias_vector,
    input_batch,
    input_draw,
    upstream_draw,
    upstream_gradient,
    weight_draw,
    weight_matrix,
)
from initscope.sim.norm import (
    EPS,
    activation_gamma,
    normalize,
    normalize_backward,
    standardize,
)
from initscope.sim.result import LayerResult, RunResult, SignalPropagation
from initscope.sim.schemes import NORMAL, SCHEMES, BiasSpec, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, theory_applies


def specs(cfg: Config, fan_in: int | None = None, fan_out: int | None = None
          ) -> tuple[list[WeightSpec], list[WeightSpec], float]:
    """(W1 specs, W2 specs, alpha) per block, by the branch mode; the fans default to
    the width (a convolution's are channels k^2 in, channels out)."""
    w = cfg.width[0]
    fan_in, fan_out = fan_in or w, fan_out or w
    scheme = SCHEMES[cfg.scheme]

    def spec() -> WeightSpec:  # a conv's fan_out for the scheme is channels k^2 too
        return replace(scheme.weight_spec(cfg, fan_in, fan_in), fan_out=fan_out)

    first = [spec() for _ in range(cfg.depth)]
    last = [spec() for _ in range(cfg.depth)]
    alpha = 0.0 if cfg.branch == "rezero" else cfg.nf_alpha if cfg.norm == "nf" else 1.0
    if cfg.branch in ("zero_last", "fixup"):
        last = [WeightSpec(NORMAL, 0.0, fan_in, fan_out) for _ in last]
    if cfg.branch == "fixup":  # He, scaled by L^(-1/2) for two-layer branches
        std = math.sqrt(2.0 / fan_in) * cfg.depth ** -0.5
        first = [WeightSpec(NORMAL, std, fan_in, fan_out) for _ in first]
    return first, last, alpha


def _bias_spec(cfg: Config, fan_in: int) -> BiasSpec:
    return BiasSpec() if cfg.branch == "fixup" else bias_spec(cfg, fan_in)  # Fixup: 0


def placement(cfg: Config) -> tuple[str | None, bool, bool]:
    """(the norm layer's kind, or None; pre-norm; post-norm)."""
    kind = cfg.norm if cfg.norm in LAYER_NORMS else None
    return kind, kind is not None and cfg.norm_at == "before", \
        kind is not None and cfg.norm_at == "after"


def beta(cfg: Config, k: int, alpha: float) -> float:
    """nf: the stream's expected std before block k (0-based)."""
    return math.sqrt(1.0 + k * alpha * alpha)


class DenseMixing:
    """How variances pass a dense layer, for the recursion: each unit sums `width`
    inputs. A convolution's (resconv.py) sums a window of pixels instead, so its
    variances are grids over the image."""

    def __init__(self, cfg: Config) -> None:
        self.units = cfg.width[0]
        self.rows = cfg.batch  # samples per unit: what a batch norm and a dW sum over

    def start(self, value: float):
        return value

    def mix(self, q, var: float):
        """The variance a layer with weights of variance `var` makes of inputs `q`."""
        return self.units * var * q

    def back(self, g, var: float):
        """The same, backward: the variance of the input's gradient."""
        return self.units * var * g

    def moments(self, act, mean: float, var, slope: float):
        mom = gaussian_moments(act, mean, math.sqrt(var), slope)
        return mom.phi1, mom.phi2, mom.dphi2

    def per_channel(self, v):
        """What a batch norm divides by: a unit's variance over the batch (and pixels)."""
        return v

    def mean(self, x) -> float:
        return float(x)

    def weight_sum(self, q, dz) -> float:
        """E[dW^2] / rows: the layer's input times dz, summed over what dW sums."""
        return float(q * dz)


def theory(cfg: Config) -> list[LayerTheory] | None:
    predicted = recursion(cfg)
    return None if predicted is None else predicted[0]


def spp_theory(cfg: Config) -> list[tuple[float, float, float] | None] | None:
    """Per block: the predicted squared channel mean m, channel variance v, and the
    branch's channel variance (before alpha); None from the first block whose branch
    input carries a per-unit constant (a random bias, or a mean left by an earlier
    branch without batch norm), where only their sum, the stream's second moment, is
    predicted."""
    predicted = recursion(cfg)
    return None if predicted is None else predicted[1]


def recursion(cfg: Config, ops=None, first_last=None
              ) -> tuple[list[LayerTheory], list[tuple]] | None:
    """The recursion block by block. The stream's second moment q = v + m splits into
    v, its variance over the batch, and m, what each unit carries on every sample (a
    bias, or phi's mean through W2): batch norm sees and removes only v. In a signal
    propagation plot v is the average channel variance and m the average squared
    channel mean. `ops` says how a layer mixes variances (DenseMixing by default)."""
    if not theory_applies(cfg) and cfg.branch not in ("zero_last", "fixup", "rezero"):
        return None
    ops = ops or DenseMixing(cfg)
    first, last, alpha = first_last or specs(cfg)
    act, norm = ACTIVATIONS[cfg.activation], cfg.norm
    _, pre, post = placement(cfg)
    gamma2 = activation_gamma(cfg.activation, cfg.slope) ** 2
    b = _bias_spec(cfg, first[0].fan_in)
    # both input distributions: zero mean, unit variance
    v, m, rows, spp = ops.start(1.0), ops.start(0.0), [], []
    for k, (w1, w2) in enumerate(zip(first, last)):
        var1, var2 = w1.var, w2.var
        if norm == "nf":  # standardized: fan_in Var(W) = gamma^2, or 0 for zero weights
            var1 = 1.0 / w1.fan_in if w1.scale else 0.0
            var2 = gamma2 / w2.fan_in if w2.scale else 0.0
        q = v + m
        # the split of phi's moments into per-unit constant and batch-varying parts is
        # exact only when z has no per-unit constant (else it needs a double integral)
        split = b.var == 0 and (not np.any(m) or (pre and norm == "batch"))
        seen = ops.per_channel(v) if norm == "batch" else q  # what the norm divides by
        q_u = seen / (seen + EPS) if pre else q / beta(cfg, k, alpha) ** 2 \
            if norm == "nf" else q
        z_var = ops.mix(q_u, var1) + b.var
        phi1, phi2, dphi2 = ops.moments(act, b.mean, z_var, cfg.slope)
        spread = np.maximum(phi2 - phi1 * phi1, 0.0)
        # phi's mean passes W2 as a per-unit constant, except through nf's centered W2
        offset = 0.0 * phi1 if norm == "nf" else phi1 * phi1
        branch = ops.mix(spread, var2)
        v_sum = v + alpha * alpha * branch
        m_sum = m + alpha * alpha * (ops.mix(offset, var2) + b.var + b.mean * b.mean)
        summed = ops.per_channel(v_sum) if norm == "batch" else v_sum + m_sum
        if post:
            v, m = (v_sum / (summed + EPS), 0.0 * m_sum) if norm == "batch" else \
                (summed / (summed + EPS) - m_sum / (summed + EPS), m_sum / (summed + EPS))
        else:
            v, m = v_sum, m_sum
        rows.append((z_var, q_u, seen, summed, v + m, dphi2, var1, var2, k))
        # as measured on a batch of n: E[(batch mean)^2] = m + v / n, E[biased var] = v (1 - 1/n)
        # (batch norm after the add sets each unit's batch mean and variance exactly)
        n = ops.rows
        exact = post and norm == "batch"
        stream = (0.0, ops.mean(v)) if exact else \
            (ops.mean(m) + ops.mean(v) / n, ops.mean(v) * (1 - 1 / n))
        spp.append((*stream, ops.mean(branch) * (1 - 1 / n))
                   if split and (not spp or spp[-1]) else None)
    g2, out = ops.start(1.0), []
    for z_var, q_u, seen, summed, q_out, dphi2, var1, var2, k in reversed(rows):
        ds2 = g2 / (summed + EPS) if post else g2
        dz1 = alpha * alpha * ops.back(ds2, var2) * dphi2
        du2 = ops.back(dz1, var1)
        raw = var1 / first[k].var if norm == "nf" and first[k].var > 0 else 1.0
        dw1 = cfg.batch * ops.weight_sum(q_u, dz1) * raw
        out.append(LayerTheory(math.sqrt(ops.mean(z_var)), math.sqrt(ops.mean(q_out)),
                               math.sqrt(ops.mean(g2)), math.sqrt(max(dw1, 0.0))))
        through = du2 / (seen + EPS) if pre else du2 / beta(cfg, k, alpha) ** 2 \
            if norm == "nf" else du2
        g2 = ds2 + through
    out.reverse()
    return out, spp


class ResidualRun(RowRun):
    """The residual stack's run. A layer is `linear` (forward), `linear_back` (the
    input's gradient) and `weight_grad`: matmuls here, convolutions in resconv.py."""

    def __init__(self, space: Workspace, cfg: Config, cancel, on_forward) -> None:
        super().__init__(space.draws, cfg, cancel, on_forward)
        self.space = space
        self.units = cfg.width[0]
        self.inputs_kept: dict[int, np.ndarray] = {}  # what each W1 read, for its dW

    def specs(self) -> tuple[list[WeightSpec], list[WeightSpec], float]:
        return specs(self.cfg)

    def recursion(self, first_last) -> tuple[list[LayerTheory], list[tuple]] | None:
        return recursion(self.cfg, first_last=first_last)

    def features(self) -> int:
        """Numbers per sample of the input and the upstream gradient."""
        return self.units

    def linear(self, k: int, which: int, x: np.ndarray) -> np.ndarray:
        """Block k's layer `which` (0: W1, 1: W2) applied to x, (rows, units)."""
        if which == 0:
            self.inputs_kept[k] = x
        return x @ self.weights[which][k][0]

    def linear_back(self, k: int, which: int, dz: np.ndarray) -> np.ndarray:
        return dz @ self.weights[which][k][0].T

    def weight_grad(self, k: int, dz: np.ndarray) -> np.ndarray:
        """dL/dW1 of block k."""
        return self.inputs_kept[k].T @ dz

    def _weights(self, specs, offset: int, gamma: float) -> list:
        """(weights, standardization cache or None) of one branch layer per block."""
        cfg, dt, draws = self.cfg, self.dt, self.draws
        if cfg.norm != "nf":
            return [(weight_matrix(cfg, draws, 2 * k + offset, s, dt), None)
                    for k, s in enumerate(specs)]
        out = []
        for k, s in enumerate(specs):
            w, cache = standardize(weight_matrix(cfg, draws, 2 * k + offset,
                                                 replace(s, scale=1.0), dt), s.scale, gamma)
            out.append((w, cache if offset == 0 else None))  # W2's gradient is not shown
        return out

    def execute(self) -> RunResult:
        cfg, dt, draws = self.cfg, self.dt, self.draws
        units, norm = self.units, cfg.norm
        kind, pre, post = placement(cfg)
        first, last, alpha = self.specs()
        predicted_both = self.recursion((first, last, alpha))
        predicted = predicted_both[0] if predicted_both else None
        spp_predicted = predicted_both[1] if predicted_both else None
        b = _bias_spec(cfg, first[0].fan_in)
        keep_draws(draws, [input_draw(cfg, dt, features=self.features()),
                           upstream_draw(cfg, dt, self.features())]
                   + [weight_draw(cfg, 2 * k + i, spec, dt)
                      for k, pair in enumerate(zip(first, last)) for i, spec in enumerate(pair)]
                   + [bias_draw(cfg, j, b, units, dt) for j in range(2 * cfg.depth)])
        self.weights = (self._weights(first, 0, 1.0),
                        self._weights(last, 1, activation_gamma(cfg.activation, cfg.slope)))
        w1s = self.weights[0]
        bs = [(bias_vector(cfg, draws, 2 * k, b, units, dt),
               bias_vector(cfg, draws, 2 * k + 1, b, units, dt)) for k in range(cfg.depth)]
        # nf: the standardized W1 is what the block multiplies by, std 1 / sqrt(fan_in)
        target = [math.sqrt(1.0 / s.fan_in) if norm == "nf" and s.scale else s.std
                  for s in first]
        layers = [LayerResult(k + 1, first[k].fan_in, units,
                              float(np.std(w1s[k][0], dtype=np.float64)),
                              target[k], theory=predicted[k] if predicted else None)
                  for k in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=self.note(predicted), spp=[])
        x = np.asarray(input_batch(cfg, draws, dt, features=self.features())).reshape(-1, units)
        zs, caches = [], []  # per block: the branch's z, the norm's cache
        for k in range(cfg.depth):
            self.check()
            lay = layers[k]
            cache = None
            if pre:
                u, cache = normalize(kind, x)
            elif norm == "nf":
                u = x * dt.type(1.0 / beta(cfg, k, alpha))
            else:
                u = x
            z = self.linear(k, 0, u)
            z += bs[k][0]
            a = self.act.apply(z, cfg.slope)
            branch = self.linear(k, 1, a)
            branch += bs[k][1]
            x = x + dt.type(alpha) * branch
            if post:
                x, cache = normalize(kind, x)
            squared_mean, variance = channel_moments(x)
            result.spp.append(SignalPropagation(
                k + 1, squared_mean, variance, channel_moments(branch)[1],
                spp_predicted[k] if spp_predicted else None))
            zs.append(z)
            caches.append(cache)
            self.unit_flags(lay, a)
            self.channel_means(lay, x)
            ok = self.measure(lay, "preactivation", z) & self.measure(lay, "activation", x)
            if not ok:
                result.overflow_layer, result.overflow_pass = k + 1, "forward"
                break

        def backward() -> None:
            g = np.asarray(upstream_gradient(cfg, draws, dt, self.features())).reshape(-1, units)
            for k in range(cfg.depth - 1, -1, -1):
                self.check()
                lay = layers[k]
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = k + 1, "backward"
                    return
                if post:
                    g = normalize_backward(g, caches[k])
                da = self.linear_back(k, 1, g * dt.type(alpha))
                dz = da * self.act.slope_of(zs[k], cfg.slope)
                dw = self.weight_grad(k, dz)
                ws = w1s[k][1]  # nf: the raw weight's gradient, through the standardization
                self.measure(lay, "weight_gradient",
                             dw if ws is None else normalize_backward(dw, ws))
                du = self.linear_back(k, 0, dz)
                if pre:
                    du = normalize_backward(du, caches[k])
                elif norm == "nf":
                    du *= dt.type(1.0 / beta(cfg, k, alpha))
                g = g + du

        return self.finish(result, backward)

    def note(self, predicted) -> str | None:
        return None if predicted else "no prediction: every weight has one value"


def channel_moments(x: np.ndarray) -> tuple[float, float]:
    """(mean_c (mean_N x_c)^2, mean_c var_N x_c) of a (batch, units) array."""
    means = x.mean(axis=0, dtype=np.float64)
    centered = x - means.astype(x.dtype)
    variances = np.einsum("ij,ij->j", centered, centered) / x.shape[0]
    return float(np.mean(means * means)), float(np.mean(variances, dtype=np.float64))
