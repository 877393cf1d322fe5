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

With a norm (`normed_layers`) the same recursion runs through the normalization, a
division by s = sqrt(v + eps) forward and backward, where v is the variance the norm
measures: over the batch (batch norm: the inputs' common mean passes the weights as a
constant, so v = fan_in Var(W) Var(h)), over the features (layer norm: v = fan_in Var(W)
E[h^2] + Var(b)), or the mean square (rms: plus E[b]^2). Batch norm before ReLU gives
    Var(g_{l-1}) / Var(g_l) = E[phi'^2] / Var(phi) = (1/2) / ((1 - 1/pi) / 2) = pi / (pi - 1)
per layer, whatever the weights' scale: the gradient explosion of Yang, Pennington,
Rao, Sohl-Dickstein and Schoenholz (2019, "A mean field theory of batch
normalization"), whose rate for ReLU tends to pi / (pi - 1) as the batch grows. Layer
norm gives E[phi'^2] / E[phi^2] = 1 for ReLU: no explosion. Scaled weight
standardization (nf) makes fan_in Var(W) = gamma^2 and removes the inputs' mean, so
Var(z) = gamma^2 Var(h) = 1, and its ReLU rate is also gamma^2 / 2 = pi / (pi - 1).
The terms of order 1/batch (batch norm) and 1/width (layer norm) are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.gaussian import Moments, gaussian_moments
from initscope.sim.norm import EPS, activation_gamma
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
    if cfg.norm != "none":
        return normed_layers(cfg)
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
        act_var = max(mom.phi2 - mom.phi1 * mom.phi1, 0.0)
        dw_var = cfg.batch * m2_in * mom.dphi2 * g2
        out.append(LayerTheory(math.sqrt(q), math.sqrt(act_var), math.sqrt(g2), math.sqrt(dw_var)))
        g2 = fo * w_var * mom.dphi2 * g2
    out.reverse()
    return out


@dataclass(frozen=True)
class NormedLayer:
    """One layer's forward terms, for the backward recursion."""

    pre_std: float
    act_std: float
    m2_in: float  # E[h^2] of the layer's input, or Var(h) where dz or dW is centered
    weight_var: float  # Var of the weights the layer multiplies by
    dz_factor: float  # E[dz^2] / Var(g), through phi' and the norm
    raw_factor: float  # Var(dW) / Var(dW_hat): 1, or the standardization's
    fan_out: int


def normed_forward(cfg: Config, m1: float, m2: float, i: int, fi: int, fo: int
                    ) -> tuple[NormedLayer, float, float]:
    """Layer i's terms, and the mean and second moment of what it passes on."""
    act, norm, eps = ACTIVATIONS[cfg.activation], cfg.norm, EPS
    w, b = SCHEMES[cfg.scheme].weight_spec(cfg, fi, fo), bias_spec(cfg, fi)
    raw = 1.0
    if norm == "nf":
        gamma2 = (1.0 if i == 0 else activation_gamma(cfg.activation, cfg.slope)) ** 2
        weight_var = gamma2 / fi if w.scale != 0 else 0.0
        spread = fi * weight_var * (m2 - m1 * m1)  # the standardized columns sum to 0
        raw = weight_var / w.var if w.var > 0 else 0.0
    else:
        weight_var = w.var
        spread = fi * weight_var * m2
    var_z = spread + b.var  # about the mean E[b]
    # dW = h^T dz sums over the batch: where dz has zero batch mean (batch norm before
    # phi) or dW's columns are centered (the standardization's backward), only the
    # inputs' spread counts
    centered = norm == "nf" or (norm == "batch" and cfg.norm_at == "before")
    m2_dw = m2 - m1 * m1 if centered else m2
    if norm in ("none", "nf"):
        mom = gaussian_moments(act, b.mean, math.sqrt(var_z), cfg.slope)
        layer = NormedLayer(math.sqrt(var_z), _std(mom), m2_dw, weight_var, mom.dphi2, raw, fo)
        return layer, mom.phi1, mom.phi2
    if cfg.norm_at == "before":
        if norm == "batch":  # a constant over the batch: the inputs' mean and the bias
            v, mean_y, var_y = fi * weight_var * (m2 - m1 * m1), 0.0, None
        elif norm == "layer":
            v, mean_y, var_y = var_z, 0.0, None
        else:
            v = var_z + b.mean * b.mean
            mean_y, var_y = b.mean / math.sqrt(v + eps), var_z / (v + eps)
        var_y = v / (v + eps) if var_y is None else var_y
        mom = gaussian_moments(act, mean_y, math.sqrt(var_y), cfg.slope)
        layer = NormedLayer(math.sqrt(var_y), _std(mom), m2_dw, weight_var,
                            mom.dphi2 / (v + eps), raw, fo)
        return layer, mom.phi1, mom.phi2
    mom = gaussian_moments(act, b.mean, math.sqrt(var_z), cfg.slope)
    if norm == "rms":
        v = mom.phi2
        m1_out, m2_out = mom.phi1 / math.sqrt(v + eps), v / (v + eps)
    else:
        v = max(mom.phi2 - mom.phi1 * mom.phi1, 0.0)
        m1_out, m2_out = 0.0, v / (v + eps)
    act_std = math.sqrt(max(m2_out - m1_out * m1_out, 0.0))
    layer = NormedLayer(math.sqrt(var_z), act_std, m2, weight_var, mom.dphi2 / (v + eps), raw, fo)
    return layer, m1_out, m2_out


def _std(mom: Moments) -> float:
    return math.sqrt(max(mom.phi2 - mom.phi1 * mom.phi1, 0.0))


def normed_layers(cfg: Config, fans: list[tuple[int, int]] | None = None,
                  samples: list[int] | None = None) -> list[LayerTheory]:
    """The recursion through a plain stack with a norm or weight standardization.
    `fans` default to the config's; `samples[i]`, the rows layer i's weight gradient
    sums over, to the batch (a convolution sums over every output pixel too)."""
    fans = cfg.fans() if fans is None else fans
    samples = [cfg.batch] * len(fans) if samples is None else samples
    m1, m2, forward = 0.0, 1.0, []  # the inputs: zero mean, unit variance
    for i, (fi, fo) in enumerate(fans):
        layer, m1, m2 = normed_forward(cfg, m1, m2, i, fi, fo)
        forward.append(layer)
    out, g2 = [], 1.0
    for lay, rows in zip(reversed(forward), reversed(samples)):
        dz2 = lay.dz_factor * g2
        dw_var = rows * lay.m2_in * dz2 * lay.raw_factor
        out.append(LayerTheory(lay.pre_std, lay.act_std, math.sqrt(g2), math.sqrt(dw_var)))
        g2 = lay.fan_out * lay.weight_var * dz2
    out.reverse()
    return out


def activation_table() -> list[dict]:
    """Every activation with its formula and gain, for `initscope activations`."""
    return [
        {"name": a.name, "formula": a.formula, "gain": a.gain()} for a in ACTIVATIONS.values()
    ]
