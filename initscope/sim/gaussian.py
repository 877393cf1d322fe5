"""Expectations of an activation and its derivative under a Gaussian input.

E[phi(z)], E[phi(z)^2] and E[phi'(z)^2] for z ~ N(mu, sd^2): closed forms for
linear and (leaky) ReLU, Gauss-Legendre quadrature on either side of every kink and
feature for everything else. A leaf of the core: it knows an activation only by its
name and its `apply` / `slope_of` methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from initscope.sim.activations import Activation

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


def _norm_cdf(t: float) -> float:
    """Phi(t) through erfc, accurate in relative terms far into the lower tail, where
    1 + erf(t / sqrt 2) cancels to nothing (t < -6)."""
    return 0.5 * math.erfc(-t / math.sqrt(2.0))


def _norm_pdf(t: float) -> float:
    return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _relu_moments(mu: float, sd: float) -> tuple[float, float, float]:
    """E[relu(z)], E[relu(z)^2], P(z > 0) for z ~ N(mu, sd^2), sd > 0."""
    t = mu / sd
    cdf, pdf = _norm_cdf(t), _norm_pdf(t)
    # both moments are positive; far below 0 their terms nearly cancel, and rounding
    # must not leave them negative
    first = max(mu * cdf + sd * pdf, 0.0)
    second = max((mu * mu + sd * sd) * cdf + mu * sd * pdf, 0.0)
    return first, second, cdf


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
    """Moments of phi and phi' for z ~ N(mu, sd^2). Closed forms are chosen by the
    activation's name; an activation under another name goes through quadrature."""
    return _moments(act, float(mu), float(sd), float(slope))


@lru_cache(maxsize=8192)
def _moments(act: Activation, mu: float, sd: float, slope: float) -> Moments:
    name = act.name
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
