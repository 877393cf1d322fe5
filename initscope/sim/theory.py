"""What the variance recursion predicts for each layer.

Forward: a layer's pre-activations are taken as Gaussian, N(mu_l, q_l), with
    q_l = fan_in * Var(W) * E[h_{l-1}^2] + Var(b),   mu_l = E[b],
and E[h^2] = E[phi(z)^2] under that Gaussian (second moment, not variance: the
mean of the inputs passes through the weights' sum too). Backward, for the
gradient w.r.t. the activations,
    Var(g_{l-1}) = fan_out * Var(W) * E[phi'(z_l)^2] * Var(g_l),
and the weight gradient, a sum over the batch, has
    Var(dW_l) = batch * E[h_{l-1}^2] * E[phi'(z_l)^2] * Var(g_l).
Expectations are closed forms for linear and (leaky) ReLU, and Gauss-Legendre
quadrature on either side of the kink for everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.schemes import SCHEMES, bias_spec


@dataclass(frozen=True)
class LayerTheory:
    """Predicted stds of one layer's four quantities."""

    preactivation_std: float
    activation_std: float
    gradient_std: float
    weight_gradient_std: float

    def to_dict(self) -> dict:
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


def theory_note(cfg: Config) -> str | None:
    """Where the prediction does not hold, or only roughly, in a few words."""
    if SCHEMES[cfg.scheme].data_init:
        return "no prediction: the weights are tuned on the batch"
    if not theory_applies(cfg):
        return "no prediction: every weight has one value, not independent zero-mean draws"
    if cfg.scheme == "orthogonal":
        return "approximate: orthogonal weights are not independent (exact when wide)"
    if cfg.scheme == "zeros":
        return "zero weights: every layer only passes its bias on"
    return None


def theory_applies(cfg: Config) -> bool:
    """The recursion assumes zero-mean, independent weights: not for constant init."""
    return SCHEMES[cfg.scheme].zero_mean or cfg.value * cfg.gain == 0.0


def predict_layers(cfg: Config) -> list[LayerTheory] | None:
    """Predicted stds of every layer, or None where the theory does not apply."""
    if not theory_applies(cfg) or SCHEMES[cfg.scheme].data_init:
        return None
    act = ACTIVATIONS[cfg.activation]
    scheme = SCHEMES[cfg.scheme]
    second_moment_in = 1.0  # both input distributions have zero mean, unit variance
    forward = []
    m2 = second_moment_in
    for fi, fo in cfg.fans():
        w = scheme.weight_spec(cfg, fi, fo)
        b = bias_spec(cfg, fi)
        q = fi * w.var * m2 + b.var
        mom = gaussian_moments(act, b.mean, math.sqrt(q), cfg.slope)
        forward.append((q, mom, m2, w.var, fo))
        m2 = mom.phi2
    out = []
    g2 = 1.0  # the upstream gradient is unit Gaussian
    for q, mom, m2_in, w_var, fo in reversed(forward):
        act_var = max(mom.phi2 - mom.phi1 ** 2, 0.0)
        dw_var = cfg.batch * m2_in * mom.dphi2 * g2
        out.append(LayerTheory(math.sqrt(q), math.sqrt(act_var), math.sqrt(g2), math.sqrt(dw_var)))
        g2 = fo * w_var * mom.dphi2 * g2
    out.reverse()
    return out


def activation_table() -> list[dict]:
    """Every activation with its formula and gain, for `initscope activations`."""
    return [
        {"name": a.name, "formula": a.formula, "gain": a.gain()} for a in ACTIVATIONS.values()
    ]
