"""A recurrent net: h_t = phi(h_{t-1} W + x_t U + b), h_0 = 0, for `time_steps` steps.

A row of the result is a time step: z_t, h_t, dL/dh_t (backpropagation through time
of the unit-Gaussian gradient at the last step) and the step's share of dL/dW; each
row also carries the batch-mean norm of h_t and of dL/dh_t. The inputs x_t come at
every step or only the first (`rnn_input`). The prediction follows the variance
recursion through time.
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
from initscope.sim.schemes import SCHEMES, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, theory_applies


def specs(cfg: Config) -> tuple[WeightSpec, WeightSpec]:
    """(W, U): the recurrent and the input weights."""
    n, scheme = cfg.width[0], SCHEMES[cfg.scheme]
    return scheme.weight_spec(cfg, n, n), scheme.weight_spec(cfg, cfg.inputs, n)


def inputs_on(cfg: Config, t: int) -> bool:
    return cfg.rnn_input == "all" or t == 0


def theory(cfg: Config) -> list[LayerTheory] | None:
    if not theory_applies(cfg):
        return None
    w, u = specs(cfg)
    n, act = cfg.width[0], ACTIVATIONS[cfg.activation]
    b = bias_spec(cfg, n)
    m2, rows = 0.0, []
    for t in range(cfg.time_steps):
        drive = u.fan_in * u.var if inputs_on(cfg, t) else 0.0  # unit-variance x_t
        pre = n * w.var * m2 + drive + b.var
        mom = gaussian_moments(act, b.mean, math.sqrt(pre), cfg.slope)
        rows.append((pre, mom, m2))
        m2 = mom.phi2
    g2, out = 1.0, []
    for pre, mom, m2_prev in reversed(rows):
        out.append(LayerTheory(math.sqrt(pre), math.sqrt(max(mom.phi2 - mom.phi1 ** 2, 0)),
                               math.sqrt(g2), math.sqrt(cfg.batch * m2_prev * mom.dphi2 * g2)))
        g2 = n * w.var * mom.dphi2 * g2
    out.reverse()
    return out


class RecurrentRun(RowRun):
    def execute(self) -> RunResult:
        cfg, dt, draws, n = self.cfg, self.dt, self.draws, self.cfg.width[0]
        wspec, uspec = specs(cfg)
        w, u = weight_matrix(cfg, draws, 0, wspec, dt), weight_matrix(cfg, draws, 1, uspec, dt)
        b = bias_vector(cfg, draws, 0, bias_spec(cfg, n), n, dt)
        predicted = theory(cfg)
        layers = [LayerResult(t + 1, n, n, float(np.std(w, dtype=np.float64)), wspec.std,
                              theory=predicted[t] if predicted else None)
                  for t in range(cfg.time_steps)]
        result = RunResult(cfg, layers, theory_note=None if predicted else
                           "no prediction: every weight has one value")
        result.hidden_norm = [None] * cfg.time_steps
        result.gradient_norm = [None] * cfg.time_steps
        h = np.zeros((cfg.batch, n), dt)
        hs, zs = [h], []
        for t in range(cfg.time_steps):
            self.check()
            z = h @ w
            if inputs_on(cfg, t):
                z += input_batch(cfg, draws, dt, step=t) @ u
            z += b
            h = self.act.apply(z, cfg.slope)
            zs.append(z)
            hs.append(h)
            lay = layers[t]
            self.unit_flags(lay, h)
            result.hidden_norm[t] = float(np.mean(np.linalg.norm(h.astype(np.float64), axis=1)))
            if not (self.measure(lay, "preactivation", z) & self.measure(lay, "activation", h)):
                result.overflow_layer, result.overflow_pass = t + 1, "forward"
                break

        def backward() -> None:
            g = np.asarray(upstream_gradient(cfg, draws, dt, n))
            for t in range(cfg.time_steps - 1, -1, -1):
                self.check()
                lay = layers[t]
                result.gradient_norm[t] = float(np.mean(np.linalg.norm(g.astype(np.float64),
                                                                       axis=1)))
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = t + 1, "backward"
                    return
                dz = g * self.act.slope_of(zs[t], cfg.slope)
                self.measure(lay, "weight_gradient", hs[t].T @ dz)
                g = dz @ w.T

        return self.finish(result, backward)


def estimate(cfg: Config) -> Estimate:
    """W and U materialized, every step's h and z kept, and the inputs' draws."""
    item = np.dtype(cfg.dtype).itemsize
    w, rows = cfg.width[0], cfg.time_steps
    spec = SCHEMES[cfg.scheme].weight_spec(cfg, w, w)
    steps_with_input = rows if cfg.rnn_input == "all" else 1
    input_copies = 2 if cfg.input_dist == "uniform" else 1  # + the cached U(-1, 1) draw
    draws = (copies(spec) * (w * w + cfg.inputs * w)
             + input_copies * cfg.batch * cfg.inputs * steps_with_input
             + cfg.batch * w + 2 * w) * item
    kept = (2 * rows + 1) * cfg.batch * w * item  # h_0..h_T and z_1..z_T
    temporaries = 3 + (cfg.inputs / w if cfg.input_dist == "uniform" else 0)
    scratch = int((temporaries * cfg.batch * w + w * w) * item) + 2 * 65536 * 8
    return Estimate(draws, kept, scratch, samples_bytes(cfg, [(w, w)] * rows),
                    basis_transient(spec.basis, max(w, cfg.inputs) * w, item))


RNN = Arch(
    name="rnn",
    description="a recurrent net h_t = phi(h_{t-1} W + x_t U + b) over time_steps steps",
    row_noun="time steps",
    row_prefix="t",
    run=fresh_draws_runner(RecurrentRun),
    estimate=estimate,
    shape=lambda cfg: f"rnn over {cfg.time_steps} steps",
    theory=theory,
    check=lambda cfg: check_single_width(cfg, "rnn network"),
)
