"""Residual blocks: the stream x (width units) passes `depth` blocks
x <- x + alpha F(x), F(x) = phi(x W1 + b1) W2 + b2.

A row of the result is a block: its pre-activations (x W1 + b1), its output (the
stream after the block), the gradient w.r.t. that output, and the gradient of W1.
The branch mode sets how the block starts: both layers from the scheme (plain), the
last layer at zero (zero_last), Fixup (He first layer scaled by L^(-1/2), zero last
layer, zero biases) or ReZero (alpha = 0). The prediction follows the variance
recursion through the block: Var x' = Var x + alpha^2 Var F.
"""

from __future__ import annotations

import math

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, RowRun, fresh_draws_runner
from initscope.sim.arch.common import check_single_width
from initscope.sim.config import Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.result import LayerResult, RunResult
from initscope.sim.schemes import NORMAL, SCHEMES, BiasSpec, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, theory_applies


def specs(cfg: Config) -> tuple[list[WeightSpec], list[WeightSpec], float]:
    """(W1 specs, W2 specs, alpha) per block, by the branch mode."""
    w = cfg.width[0]
    scheme = SCHEMES[cfg.scheme]
    first = [scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
    last = [scheme.weight_spec(cfg, w, w) for _ in range(cfg.depth)]
    alpha = 0.0 if cfg.branch == "rezero" else 1.0
    if cfg.branch in ("zero_last", "fixup"):
        last = [WeightSpec(NORMAL, 0.0, w, w) for _ in last]
    if cfg.branch == "fixup":  # He, scaled by L^(-1/2) for two-layer branches
        std = math.sqrt(2.0 / w) * cfg.depth ** -0.5
        first = [WeightSpec(NORMAL, std, w, w) for _ in first]
    return first, last, alpha


def _bias_spec(cfg: Config) -> BiasSpec:
    return BiasSpec() if cfg.branch == "fixup" else bias_spec(cfg, cfg.width[0])  # Fixup: 0


def theory(cfg: Config) -> list[LayerTheory] | None:
    if not theory_applies(cfg) and cfg.branch not in ("zero_last", "fixup", "rezero"):
        return None
    first, last, alpha = specs(cfg)
    width, act = cfg.width[0], ACTIVATIONS[cfg.activation]
    b = _bias_spec(cfg)
    b_mean, b_var = b.mean, b.var
    q, rows = 1.0, []  # both input distributions have unit variance
    for w1, w2 in zip(first, last):
        pre = width * w1.var * q + b_var
        mom = gaussian_moments(act, b_mean, math.sqrt(pre), cfg.slope)
        branch = alpha ** 2 * (width * w2.var * mom.phi2 + b_var)
        rows.append([pre, q, q + branch, mom, w1, w2])
        q = q + branch
    g2, out = 1.0, []
    for pre, q_in, q_out, mom, w1, w2 in reversed(rows):
        dz1 = alpha ** 2 * width * w2.var * g2 * mom.dphi2
        dw1 = cfg.batch * q_in * dz1
        out.append(LayerTheory(math.sqrt(pre), math.sqrt(q_out), math.sqrt(g2), math.sqrt(dw1)))
        g2 = g2 + width * w1.var * dz1
    out.reverse()
    return out


class ResidualRun(RowRun):
    def execute(self) -> RunResult:
        cfg, dt, draws = self.cfg, self.dt, self.draws
        width = cfg.width[0]
        first, last, alpha = specs(cfg)
        predicted = theory(cfg)
        b = _bias_spec(cfg)
        w1s = [weight_matrix(cfg, draws, 2 * k, s, dt) for k, s in enumerate(first)]
        w2s = [weight_matrix(cfg, draws, 2 * k + 1, s, dt) for k, s in enumerate(last)]
        bs = [(bias_vector(cfg, draws, 2 * k, b, width, dt),
               bias_vector(cfg, draws, 2 * k + 1, b, width, dt)) for k in range(cfg.depth)]
        layers = [LayerResult(k + 1, width, width, float(np.std(w1s[k], dtype=np.float64)),
                              first[k].std, theory=predicted[k] if predicted else None)
                  for k in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=None if predicted else
                           "no prediction: every weight has one value")
        x = np.asarray(input_batch(cfg, draws, dt, features=width))
        xs, zs = [x], []
        for k in range(cfg.depth):
            self.check()
            lay = layers[k]
            z = x @ w1s[k]
            z += bs[k][0]
            a = self.act.apply(z, cfg.slope)
            branch = a @ w2s[k]
            branch += bs[k][1]
            x = x + dt.type(alpha) * branch
            zs.append(z)
            xs.append(x)
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
                da = (g * dt.type(alpha)) @ w2s[k].T
                dz = da * self.act.slope_of(zs[k], cfg.slope)
                self.measure(lay, "weight_gradient", xs[k].T @ dz)
                g = g + dz @ w1s[k].T

        return self.finish(result, backward)


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
    return Estimate(draws, kept, scratch, samples_bytes(cfg, [(w, w)] * rows),
                    basis_transient(spec.basis, w * w, item))


RESIDUAL = Arch(
    name="residual",
    description="residual blocks x + F(x), F two dense layers; depth counts blocks",
    row_noun="blocks",
    row_prefix="B",
    run=fresh_draws_runner(ResidualRun),
    estimate=estimate,
    shape=lambda cfg: f"{cfg.depth} {cfg.branch} residual blocks",
    theory=theory,
    check=lambda cfg: check_single_width(cfg, "residual network"),
)
