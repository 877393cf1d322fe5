"""Residual blocks: the stream x (width units) passes `depth` blocks
x <- x + alpha F(x), F(x) = phi(x W1 + b1) W2 + b2.

A row of the result is a block: its pre-activations (x W1 + b1), its output (the
stream after the block), the gradient w.r.t. that output, and the gradient of W1.
The branch mode sets how the block starts: both layers from the scheme (plain), the
last layer at zero (zero_last), Fixup (He first layer scaled by L^(-1/2), zero last
layer, zero biases) or ReZero (alpha = 0). The prediction follows the variance
recursion through the block: Var x' = Var x + alpha^2 Var F.

A norm (norm.py) sits before the branch (pre-norm, x + F(N(x))) or after the add
(post-norm, N(x + F(x))). With nf the block is x + alpha F(x / beta) with both
branch weights standardized (gamma 1 for W1, which reads the stream; the
activation's gamma for W2) and beta_k = sqrt(1 + k alpha^2), the stream's expected
std before block k (Brock, De, Smith 2021): F keeps unit variance, so the stream's
variance grows by alpha^2 per block. Where the stream is normalized the recursion
divides by s^2 = v + eps as the plain stack's does (theory.py); pre-norm makes the
branch's input unit-variance, so the stream's variance grows linearly in depth,
while post-norm resets it to 1 after every block (Xiong et al. 2020, "On layer
normalization in the transformer architecture", section 3, for the same contrast in
transformers).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, RowRun, fresh_draws_runner
from initscope.sim.arch.common import check_single_width
from initscope.sim.config import LAYER_NORMS, Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.norm import (
    EPS,
    activation_gamma,
    describe,
    normalize,
    normalize_backward,
    standardize,
)
from initscope.sim.result import LayerResult, RunResult, SignalPropagation
from initscope.sim.schemes import NORMAL, SCHEMES, BiasSpec, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, theory_applies


def specs(cfg: Config) -> tuple[list[WeightSpec], list[WeightSpec], float]:
    """(W1 specs, W2 specs, alpha) per block, by the branch mode."""
    w = cfg.width[0]
    scheme = SCHEMES[cfg.scheme]
    first = [scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
    last = [scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
    alpha = 0.0 if cfg.branch == "rezero" else cfg.nf_alpha if cfg.norm == "nf" else 1.0
    if cfg.branch in ("zero_last", "fixup"):
        last = [WeightSpec(NORMAL, 0.0, w, w) for _ in last]
    if cfg.branch == "fixup":  # He, scaled by L^(-1/2) for two-layer branches
        std = math.sqrt(2.0 / w) * cfg.depth ** -0.5
        first = [WeightSpec(NORMAL, std, w, w) for _ in first]
    return first, last, alpha


def _bias_spec(cfg: Config) -> BiasSpec:
    return BiasSpec() if cfg.branch == "fixup" else bias_spec(cfg, cfg.width[0])  # Fixup: 0


def placement(cfg: Config) -> tuple[str | None, bool, bool]:
    """(the norm layer's kind, or None; pre-norm; post-norm)."""
    kind = cfg.norm if cfg.norm in LAYER_NORMS else None
    return kind, kind is not None and cfg.norm_at == "before", \
        kind is not None and cfg.norm_at == "after"


def beta(cfg: Config, k: int, alpha: float) -> float:
    """nf: the stream's expected std before block k (0-based)."""
    return math.sqrt(1.0 + k * alpha * alpha)


def theory(cfg: Config) -> list[LayerTheory] | None:
    predicted = _recursion(cfg)
    return None if predicted is None else predicted[0]


def spp_theory(cfg: Config) -> list[tuple[float, float, float] | None] | None:
    """Per block: the predicted squared channel mean m, channel variance v, and the
    branch's channel variance (before alpha); None from the first block whose branch
    input carries a per-unit constant (a random bias, or a mean left by an earlier
    branch without batch norm), where only their sum, the stream's second moment, is
    predicted."""
    predicted = _recursion(cfg)
    return None if predicted is None else predicted[1]


def _recursion(cfg: Config) -> tuple[list[LayerTheory], list[tuple]] | None:
    """The recursion block by block. The stream's second moment q = v + m splits into
    v, its variance over the batch, and m, what each unit carries on every sample (a
    bias, or phi's mean through W2): batch norm sees and removes only v. In a signal
    propagation plot v is the average channel variance and m the average squared
    channel mean."""
    if not theory_applies(cfg) and cfg.branch not in ("zero_last", "fixup", "rezero"):
        return None
    first, last, alpha = specs(cfg)
    width, act, norm = cfg.width[0], ACTIVATIONS[cfg.activation], cfg.norm
    _, pre, post = placement(cfg)
    gamma2 = activation_gamma(cfg.activation, cfg.slope) ** 2
    b = _bias_spec(cfg)
    v, m, rows, spp = 1.0, 0.0, [], []  # both input distributions: zero mean, unit variance
    for k, (w1, w2) in enumerate(zip(first, last)):
        var1, var2 = w1.var, w2.var
        if norm == "nf":  # standardized: fan_in Var(W) = gamma^2, or 0 for zero weights
            var1 = 1.0 / width if w1.scale else 0.0
            var2 = gamma2 / width if w2.scale else 0.0
        q = v + m
        # the split of phi's moments into per-unit constant and batch-varying parts is
        # exact only when z has no per-unit constant (else it needs a double integral)
        split = b.var == 0 and (m == 0 or (pre and norm == "batch"))
        seen = v if norm == "batch" else q  # what the norm divides by (squared)
        q_u = seen / (seen + EPS) if pre else q / beta(cfg, k, alpha) ** 2 \
            if norm == "nf" else q
        z_var = width * var1 * q_u + b.var
        mom = gaussian_moments(act, b.mean, math.sqrt(z_var), cfg.slope)
        spread = max(mom.phi2 - mom.phi1 * mom.phi1, 0.0)
        # phi's mean passes W2 as a per-unit constant, except through nf's centered W2
        offset = 0.0 if norm == "nf" else mom.phi1 * mom.phi1
        v_sum = v + alpha * alpha * width * var2 * spread
        m_sum = m + alpha * alpha * (width * var2 * offset + b.var + b.mean * b.mean)
        summed = v_sum if norm == "batch" else v_sum + m_sum
        if post:
            v, m = (v_sum / (v_sum + EPS), 0.0) if norm == "batch" else \
                (summed / (summed + EPS) - m_sum / (summed + EPS), m_sum / (summed + EPS))
        else:
            v, m = v_sum, m_sum
        rows.append((z_var, q_u, seen, summed, v + m, mom, var1, var2, k))
        # as measured on a batch of n: E[(batch mean)^2] = m + v / n, E[biased var] = v (1 - 1/n)
        # (batch norm after the add sets each unit's batch mean and variance exactly)
        n = cfg.batch
        exact = post and norm == "batch"
        stream = (0.0, v) if exact else (m + v / n, v * (1 - 1 / n))
        spp.append((*stream, width * var2 * spread * (1 - 1 / n))
                   if split and (not spp or spp[-1]) else None)
    g2, out = 1.0, []
    for z_var, q_u, seen, summed, q_out, mom, var1, var2, k in reversed(rows):
        ds2 = g2 / (summed + EPS) if post else g2
        dz1 = alpha * alpha * width * var2 * ds2 * mom.dphi2
        du2 = width * var1 * dz1
        raw = var1 / first[k].var if norm == "nf" and first[k].var > 0 else 1.0
        dw1 = cfg.batch * q_u * dz1 * raw
        out.append(LayerTheory(math.sqrt(z_var), math.sqrt(q_out), math.sqrt(g2), math.sqrt(dw1)))
        through = du2 / (seen + EPS) if pre else du2 / beta(cfg, k, alpha) ** 2 \
            if norm == "nf" else du2
        g2 = ds2 + through
    out.reverse()
    return out, spp


class ResidualRun(RowRun):
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
        width, norm = cfg.width[0], cfg.norm
        kind, pre, post = placement(cfg)
        first, last, alpha = specs(cfg)
        recursion = _recursion(cfg)
        predicted = recursion[0] if recursion else None
        spp_predicted = recursion[1] if recursion else None
        b = _bias_spec(cfg)
        w1s = self._weights(first, 0, 1.0)
        w2s = self._weights(last, 1, activation_gamma(cfg.activation, cfg.slope))
        bs = [(bias_vector(cfg, draws, 2 * k, b, width, dt),
               bias_vector(cfg, draws, 2 * k + 1, b, width, dt)) for k in range(cfg.depth)]
        # nf: the standardized W1 is what the block multiplies by, std 1 / sqrt(width)
        target = [math.sqrt(1.0 / width) if norm == "nf" and s.scale else s.std for s in first]
        layers = [LayerResult(k + 1, width, width, float(np.std(w1s[k][0], dtype=np.float64)),
                              target[k], theory=predicted[k] if predicted else None)
                  for k in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=None if predicted else
                           "no prediction: every weight has one value", spp=[])
        x = np.asarray(input_batch(cfg, draws, dt, features=width))
        us, zs, caches = [], [], []  # per block: the branch's input, its z, the norm's cache
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
            z = u @ w1s[k][0]
            z += bs[k][0]
            a = self.act.apply(z, cfg.slope)
            branch = a @ w2s[k][0]
            branch += bs[k][1]
            x = x + dt.type(alpha) * branch
            if post:
                x, cache = normalize(kind, x)
            squared_mean, variance = channel_moments(x)
            result.spp.append(SignalPropagation(
                k + 1, squared_mean, variance, channel_moments(branch)[1],
                spp_predicted[k] if spp_predicted else None))
            us.append(u)
            zs.append(z)
            caches.append(cache)
            self.unit_flags(lay, a)
            ok = self.measure(lay, "preactivation", z) & self.measure(lay, "activation", x)
            if not ok:
                result.overflow_layer, result.overflow_pass = k + 1, "forward"
                break

        def backward() -> None:
            g = np.asarray(upstream_gradient(cfg, draws, dt, width))
            for k in range(cfg.depth - 1, -1, -1):
                self.check()
                lay = layers[k]
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = k + 1, "backward"
                    return
                if post:
                    g = normalize_backward(g, caches[k])
                da = (g * dt.type(alpha)) @ w2s[k][0].T
                dz = da * self.act.slope_of(zs[k], cfg.slope)
                dw = us[k].T @ dz
                ws = w1s[k][1]  # nf: the raw weight's gradient, through the standardization
                self.measure(lay, "weight_gradient",
                             dw if ws is None else normalize_backward(dw, ws))
                du = dz @ w1s[k][0].T
                if pre:
                    du = normalize_backward(du, caches[k])
                elif norm == "nf":
                    du *= dt.type(1.0 / beta(cfg, k, alpha))
                g = g + du

        return self.finish(result, backward)


def channel_moments(x: np.ndarray) -> tuple[float, float]:
    """(mean_c (mean_N x_c)^2, mean_c var_N x_c) of a (batch, units) array."""
    means = x.mean(axis=0, dtype=np.float64)
    centered = x - means.astype(x.dtype)
    variances = np.einsum("ij,ij->j", centered, centered) / x.shape[0]
    return float(np.mean(means * means)), float(np.mean(variances, dtype=np.float64))


def estimate(cfg: Config) -> Estimate:
    """Every block's weights materialized, and every block's z and stream kept."""
    item = np.dtype(cfg.dtype).itemsize
    w, rows = cfg.width[0], cfg.depth
    spec = SCHEMES[cfg.scheme].weight_spec(cfg, w, w)
    # the branch's last layer starts at zero under zero_last and fixup
    last = 1 if cfg.branch in ("zero_last", "fixup") else copies(spec)
    first = 2 if cfg.branch == "fixup" else copies(spec)
    inputs = 3 if cfg.input_dist == "uniform" else 2  # + the cached U(-1, 1) draw
    draws = ((first + last) * cfg.depth * w * w + inputs * cfg.batch * w
             + 4 * cfg.depth * w) * item
    kept = (3 * rows + 1) * cfg.batch * w * item  # the stream, and each block's z, phi(z)
    scratch = (4 * cfg.batch * w + w * w) * item + 2 * 65536 * 8
    transient = basis_transient(spec.basis, w * w, item)
    if cfg.norm == "nf" or (cfg.norm != "none" and cfg.norm_at == "before"):
        kept += rows * cfg.batch * w * item  # each block's branch input, a new array
    if cfg.norm == "nf":  # W1's standardized unit draw, for its gradient; float64 stats
        draws += cfg.depth * w * w * item
        transient = max(transient, w * w * (8 + 2 * item))
    elif cfg.norm != "none":
        scratch += 2 * cfg.batch * w * item + cfg.batch * 8 * 2
    return Estimate(draws, kept, scratch, samples_bytes(cfg, [(w, w)] * rows), transient)


RESIDUAL = Arch(
    name="residual",
    description="residual blocks x + F(x), F two dense layers; depth counts blocks",
    row_noun="blocks",
    row_prefix="B",
    run=fresh_draws_runner(ResidualRun),
    estimate=estimate,
    shape=lambda cfg: ", ".join(filter(None, [
        f"{cfg.depth} {cfg.branch} residual blocks",
        describe(cfg.norm, cfg.norm_at, cfg.nf_alpha, True)])),
    theory=theory,
    check=lambda cfg: check_single_width(cfg, "residual network"),
    normalizes=True,
)
