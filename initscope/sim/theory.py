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
from functools import lru_cache

import numpy as np

from initscope.sim.activations import ACTIVATIONS, Activation
from initscope.sim.config import Config
from initscope.sim.schemes import SCHEMES, bias_spec

_QUAD_POINTS = 24  # Gauss-Legendre nodes per piece
_QUAD_LIMIT = 12.0  # standard deviations: the Gaussian weight beyond is < 1e-32
# Where activations change character, in z. The integral is split at these points
# (mapped to standard units) as well as at every standard deviation, so a narrow
# feature of phi (tanh's slope around 0 when z is spread over +-50) and a narrow
# Gaussian are both resolved.
_Z_FEATURES = (-16.0, -8.0, -4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class Moments:
    """E[phi(z)], E[phi(z)^2] and E[phi'(z)^2] for one Gaussian z."""

    phi1: float
    phi2: float
    dphi2: float


@dataclass(frozen=True)
class LayerTheory:
    """Predicted stds of one layer's four quantities."""

    preactivation_std: float
    activation_std: float
    gradient_std: float
    weight_gradient_std: float

    def to_dict(self) -> dict:
        return {k: (v if math.isfinite(v) else None) for k, v in self.__dict__.items()}


def _norm_cdf(t: float) -> float:
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


def _norm_pdf(t: float) -> float:
    return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _relu_moments(mu: float, sd: float) -> tuple[float, float, float]:
    """E[relu(z)], E[relu(z)^2], P(z > 0) for z ~ N(mu, sd^2), sd > 0."""
    t = mu / sd
    cdf, pdf = _norm_cdf(t), _norm_pdf(t)
    return mu * cdf + sd * pdf, (mu * mu + sd * sd) * cdf + mu * sd * pdf, cdf


@lru_cache(maxsize=1)
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(_QUAD_POINTS)


def _nodes(mu: float, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes t and weights (Gaussian density included) over [-L, L], with
    Gauss-Legendre on every piece between consecutive cut points."""
    cuts = {float(t) for t in np.arange(-_QUAD_LIMIT, _QUAD_LIMIT + 1.0)}
    cuts.update(t for t in ((z - mu) / sd for z in _Z_FEATURES) if -_QUAD_LIMIT < t < _QUAD_LIMIT)
    edges = np.array(sorted(cuts))
    lo, hi = edges[:-1, None], edges[1:, None]
    x, w = _legendre()
    t = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    weight = w * 0.5 * (hi - lo) * np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    return t.ravel(), weight.ravel()


def gaussian_moments(act: Activation, mu: float, sd: float, slope: float = 0.01) -> Moments:
    """Moments of phi and phi' for z ~ N(mu, sd^2)."""
    return _moments(act.name, float(mu), float(sd), float(slope))


@lru_cache(maxsize=8192)
def _moments(name: str, mu: float, sd: float, slope: float) -> Moments:
    act = ACTIVATIONS.get(name) or _DISGUISED[name]
    if sd <= 0.0 or not math.isfinite(sd):
        # a point mass at mu; or, infinitely wide, half the mass at each end
        z = np.array([mu] if sd <= 0.0 else [-math.inf, math.inf])
        with np.errstate(all="ignore"):
            a, d = act.apply(z, slope), act.slope_of(z, slope)
        return Moments(float(a.mean()), float((a * a).mean()), float((d * d).mean()))
    if name == "linear":
        return Moments(mu, mu * mu + sd * sd, 1.0)
    if name in ("relu", "leaky_relu"):
        k = 0.0 if name == "relu" else slope
        p1, p2, pos = _relu_moments(mu, sd)
        n1, n2, neg = _relu_moments(-mu, sd)
        return Moments(p1 - k * n1, p2 + k * k * n2, pos + k * k * neg)
    t, weight = _nodes(mu, sd)
    z = mu + sd * t
    a = act.apply(z, slope)
    d = act.slope_of(z, slope)
    return Moments(float(a @ weight), float((a * a) @ weight), float((d * d) @ weight))


# activations under another name, so tests can run the generic quadrature on ReLU
_DISGUISED: dict[str, Activation] = {}


def register_for_quadrature(name: str, act: Activation) -> None:
    """Make `act` known to the quadrature under `name` (it then skips closed forms)."""
    _DISGUISED[name] = act


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
        q = fi * w.std ** 2 * m2 + b.std ** 2
        mom = gaussian_moments(act, b.mean, math.sqrt(q), cfg.slope)
        forward.append((q, mom, m2, w.std ** 2, fo))
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
