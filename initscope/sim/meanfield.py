"""Mean-field signal propagation (Poole et al. 2016, Schoenholz et al. 2017).

Weights N(0, sigma_w^2 / N), biases N(0, sigma_b^2), infinitely wide layers:
- the length map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 and its fixed point q*;
- chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]: below 1 the ordered phase (gradients
  vanish, inputs become alike), above 1 the chaotic phase (gradients explode);
- the correlation map of two inputs, and the depth scales xi_q and xi_c;
- the critical line sigma_w^2(sigma_b^2) where chi_1 = 1.
Closed forms for (leaky) ReLU, quadrature (gaussian.gaussian_moments) for the rest.

A constant bias b (the same for every unit) is not a random bias: it shifts every
pre-activation's mean, z ~ N(b, q), as the per-layer theory treats it. The maps
below take that shift as `mu` (Poole et al.'s maps are the case mu = 0):
    q_{l+1} = sigma_w^2 E[phi(z)^2] + sigma_b^2,   chi_1 = sigma_w^2 E[phi'(z)^2],
with z ~ N(mu, q_l), since zero-mean weights carry the second moment E[phi^2] on.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from initscope.sim.activations import ACTIVATIONS, Activation
from initscope.sim.config import Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.result import Cancelled
from initscope.sim.schemes import SCHEMES, bias_spec

_Q_MAX = 1e12  # a length map past this has no fixed point: it grows for ever
_PIECEWISE_LINEAR = ("relu", "leaky_relu", "linear")
# sigma_w^2 from a config is fan_in Var(W) in floating point: He at width 500 gives
# 1.9999999999999996, which must count as the critical 2
_CRITICAL_TOL = 1e-9


def length_map(act: Activation, sw2: float, sb2: float, q: float, slope: float = 0.01,
               mu: float = 0.0) -> float:
    """q_{l+1} from q_l (mu: a constant bias, the pre-activations' mean)."""
    return sw2 * gaussian_moments(act, mu, math.sqrt(q), slope).phi2 + sb2


def _second_moment_factor(name: str, slope: float) -> float:
    """m in E[phi(sqrt(q) z)^2] = m q for the piecewise-linear activations."""
    return 1.0 if name == "linear" else (1.0 + (0.0 if name == "relu" else slope) ** 2) / 2


@lru_cache(maxsize=4096)
def _fixed_point(name: str, sw2: float, sb2: float, slope: float, mu: float = 0.0) -> float:
    act = ACTIVATIONS[name]
    if name in _PIECEWISE_LINEAR and mu == 0.0:
        gain = sw2 * _second_moment_factor(name, slope)
        if gain > 1.0 + _CRITICAL_TOL:
            return math.inf
        if gain >= 1.0 - _CRITICAL_TOL:  # critical: every q is fixed when sigma_b^2 = 0
            return math.inf if sb2 > 0 else 1.0
        return sb2 / (1.0 - gain)
    q = 1.0
    for _ in range(30):  # plain iteration first: it finds the attracting fixed point
        new = length_map(act, sw2, sb2, q, slope, mu)
        if not math.isfinite(new) or new > _Q_MAX:
            return math.inf
        if abs(new - q) <= 1e-13 * max(1.0, q):
            return new
        q = new
    if sb2 == 0.0 and mu == 0.0 and q < 1.0 and float(act.apply(np.zeros(1), slope)[0]) == 0.0:
        # heading down to q = 0, which is fixed and attracts when the map's slope
        # there, sigma_w^2 phi'(0)^2, is at most 1 (where the iteration would crawl)
        d0 = float(act.slope_of(np.zeros(1), slope)[0])
        if sw2 * d0 * d0 <= 1.0:
            return 0.0
    # then the secant method on f(q) = L(q) - q, which converges fast even where the
    # iteration crawls (near the critical line)
    a, fa = q, length_map(act, sw2, sb2, q, slope, mu) - q
    b = max(q * (1 + 1e-3), q + 1e-9)
    fb = length_map(act, sw2, sb2, b, slope, mu) - b
    for _ in range(200):
        if fb == fa:
            break
        c = b - fb * (b - a) / (fb - fa)
        if not math.isfinite(c) or c < 0:
            break
        if c > _Q_MAX:
            return math.inf
        a, fa, b = b, fb, c
        fb = length_map(act, sw2, sb2, b, slope, mu) - b
        if abs(b - a) <= 1e-13 * max(1.0, b):
            return b
    return b


def fixed_point(act: Activation, sw2: float, sb2: float, slope: float = 0.01,
                mu: float = 0.0) -> float:
    """q*, the variance the pre-activations settle to (inf when they grow for ever).
    For (leaky) ReLU exactly at sigma_b^2 = 0 and the critical gain every q is fixed:
    the map keeps the input's length, taken here as 1."""
    return _fixed_point(act.name, float(sw2), float(sb2), float(slope), float(mu))


def chi_1(act: Activation, sw2: float, sb2: float, slope: float = 0.01,
          mu: float = 0.0) -> float:
    """sigma_w^2 E[phi'(z)^2], z ~ N(mu, q*): the growth of gradients per layer."""
    if act.name in _PIECEWISE_LINEAR and mu == 0.0:
        k = {"linear": 1.0, "relu": 0.0}.get(act.name, slope)
        return sw2 * (1.0 + k * k) / 2 if act.name != "linear" else sw2
    q = fixed_point(act, sw2, sb2, slope, mu)
    if not math.isfinite(q):
        q = _Q_MAX
    return sw2 * gaussian_moments(act, mu, math.sqrt(q), slope).dphi2


def _pair_moment(act: Activation, q: float, c: float, slope: float) -> tuple[float, float]:
    """E[phi(u1) phi(u2)] and E[phi'(u1) phi'(u2)] for u1, u2 ~ N(0, q) with correlation c."""
    c = min(max(c, -1.0), 1.0)
    if act.name in ("relu", "leaky_relu"):
        k = 0.0 if act.name == "relu" else slope
        t = math.acos(c)
        # E[relu(u1) relu(u2)], and the same for the other three sign combinations
        pos = q / (2 * math.pi) * (math.sin(t) + (math.pi - t) * math.cos(t))
        cross = q / (2 * math.pi) * (math.sin(t) - t * math.cos(t))
        both = (math.pi - t) / (2 * math.pi)
        return pos * (1 + k * k) - 2 * k * cross, both * (1 + k * k) + 2 * k * (t / (2 * math.pi))
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / math.sqrt(2 * math.pi)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    weight = np.outer(w, w)
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(1 - c * c, 0.0)) * z2)
    p = (act.apply(u1, slope) * act.apply(u2, slope) * weight).sum()
    d = (act.slope_of(u1, slope) * act.slope_of(u2, slope) * weight).sum()
    return float(p), float(d)


def correlation_map(act: Activation, sw2: float, sb2: float, c: float,
                    slope: float = 0.01) -> float:
    """The correlation of two inputs' pre-activations one layer on, at q*."""
    q = fixed_point(act, sw2, sb2, slope)
    if not math.isfinite(q) or q <= 0:
        return 1.0
    p, _ = _pair_moment(act, q, c, slope)
    return (sw2 * p + sb2) / q


@dataclass(frozen=True)
class PhasePoint:
    """Where (sigma_w^2, sigma_b^2) sits for one activation."""

    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi_1: float
    xi_q: float  # depth scale of the length's approach to q*
    xi_c: float  # depth scale of correlations (ordered phase: -1 / log chi_1)
    phase: str  # "ordered", "chaotic" or "critical"
    bias_mean: float = 0.0  # a constant bias: the numbers above take it as a mean shift

    @property
    def approximate_position(self) -> bool:
        """A constant bias has no place on axes of random biases: it is drawn at
        sigma_b^2 = b^2 (its numbers are exact, its position is not)."""
        return self.bias_mean != 0.0

    def to_dict(self) -> dict:
        out = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
               for k, v in self.__dict__.items()}
        out["approximate_position"] = self.approximate_position
        return out


def phase_point(act: Activation, sw2: float, sb2: float, slope: float = 0.01,
                mu: float = 0.0) -> PhasePoint:
    """The point's q*, chi_1, depth scales and phase (mu: a constant bias)."""
    q = fixed_point(act, sw2, sb2, slope, mu)
    chi = chi_1(act, sw2, sb2, slope, mu)
    xi_q = math.inf
    if math.isfinite(q) and q > 0:
        h = 1e-4 * q
        lo = max(q - h, 0.0)
        slope_q = (length_map(act, sw2, sb2, q + h, slope, mu)
                   - length_map(act, sw2, sb2, lo, slope, mu)) / (q + h - lo)
        if 0 < slope_q < 1:
            xi_q = -1.0 / math.log(slope_q)
    xi_c = -1.0 / math.log(chi) if 0 < chi < 1.0 - _CRITICAL_TOL else math.inf
    phase = "critical" if abs(chi - 1) < 1e-3 else "ordered" if chi < 1 else "chaotic"
    return PhasePoint(sw2, sb2, q, chi, xi_q, xi_c, phase, mu)


def critical_sigma_w2(act: Activation, sb2: float, slope: float = 0.01) -> float:
    """The sigma_w^2 where chi_1 = 1 at this sigma_b^2 (chi_1 grows with sigma_w^2)."""
    if act.name in _PIECEWISE_LINEAR:
        k = {"linear": 1.0, "relu": 0.0}.get(act.name, slope)
        return 1.0 if act.name == "linear" else 2.0 / (1.0 + k * k)
    lo, hi = 1e-3, 1000.0
    if chi_1(act, hi, sb2, slope) < 1:
        return math.inf
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if chi_1(act, mid, sb2, slope) < 1:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def critical_line(act: Activation, sb2_values, slope: float = 0.01) -> list[dict]:
    """Per sigma_b^2: the critical sigma_w^2, and whether q* is finite there."""
    out = []
    for b in sb2_values:
        w = critical_sigma_w2(act, float(b), slope)
        q = fixed_point(act, w, float(b), slope) if math.isfinite(w) else math.inf
        out.append({"sigma_b2": float(b), "sigma_w2": w, "fixed_point": math.isfinite(q)})
    return out


@dataclass(frozen=True)
class PhaseGrid:
    activation: str
    sigma_w2: list[float]
    sigma_b2: list[float]
    chi_1: list[list[float]]  # [i_b][i_w]
    critical: list[dict]
    critical_note: str = "critical line: chi_1 = 1"

    def to_dict(self) -> dict:
        return {"activation": self.activation, "sigma_w2": self.sigma_w2,
                "sigma_b2": self.sigma_b2, "chi_1": self.chi_1, "critical_line": self.critical,
                "critical_note": self.critical_note}


def critical_note(act: Activation) -> str:
    """What the critical line means for this activation. For (leaky) ReLU and linear
    units chi_1 = sigma_w^2 m does not depend on q, so chi_1 = 1 on the whole line;
    but the length map q -> sigma_w^2 m q + sigma_b^2 has slope 1 there, and with
    sigma_b^2 > 0 no fixed point: only (sigma_w^2, 0) on the line is a critical point,
    and q* is unbounded on and to the right of it."""
    if act.name in _PIECEWISE_LINEAR:
        return ("chi_1 = 1 on the line, but q* is unbounded on it (for sigma_b^2 > 0) and "
                "to its right: only its sigma_b^2 = 0 end is a critical point")
    return "critical line: chi_1 = 1"


SW2_RANGE = (0.25, 4.0)
SB2_RANGE = (0.0, 0.5)
SW2_LIMIT = 100.0  # the widest the sigma_w^2 axis grows to take a config in


def sw2_range_for(sw2: float) -> tuple[float, float]:
    """The sigma_w^2 axis: the usual 0.25-4, widened to take in a config outside it
    (N(0, 0.01^2) weights at width 500 have sigma_w^2 = 0.05)."""
    lo, hi = SW2_RANGE
    if 0 < sw2 < lo:
        lo = 0.8 * sw2
    elif hi < sw2 <= SW2_LIMIT:
        hi = 1.25 * sw2
    return lo, hi


_GRIDS: dict[tuple, PhaseGrid] = {}  # the last few grids drawn, oldest first
_GRIDS_KEPT = 32
_GRIDS_LOCK = threading.Lock()


def phase_grid(act: Activation, columns: int = 40, rows: int = 16, slope: float = 0.01,
               cancelled: Callable[[], bool] = lambda: False,
               sw2_range: tuple[float, float] = SW2_RANGE) -> PhaseGrid:
    """chi_1 over a grid of (sigma_w^2, sigma_b^2), with the critical line. A grid takes
    seconds for the smooth activations: `cancelled` is asked between rows, and when
    it says yes, Cancelled is raised and nothing is kept."""
    key = (act.name, columns, rows, float(slope), tuple(sw2_range))
    with _GRIDS_LOCK:
        if key in _GRIDS:
            return _GRIDS[key]
    sw2 = np.linspace(*sw2_range, columns).tolist()
    sb2 = np.linspace(*SB2_RANGE, rows).tolist()
    chi = []
    for b in sb2:
        if cancelled():
            raise Cancelled()
        chi.append([chi_1(act, w, b, slope) for w in sw2])
    if cancelled():
        raise Cancelled()
    grid = PhaseGrid(act.name, sw2, sb2, chi, critical_line(act, sb2, slope), critical_note(act))
    with _GRIDS_LOCK:
        _GRIDS[key] = grid
        while len(_GRIDS) > _GRIDS_KEPT:
            del _GRIDS[next(iter(_GRIDS))]
    return grid


def config_sigmas(cfg: Config) -> tuple[float, float, float]:
    """The config's (sigma_w^2, sigma_b^2, mu): fan_in Var(W), the random bias's
    variance, and the constant bias, of a middle layer (the first when there is one)."""
    fans = cfg.fans()
    fi, fo = fans[1] if len(fans) > 1 else fans[0]
    w = SCHEMES[cfg.scheme].weight_spec(cfg, fi, fo)
    b = bias_spec(cfg, fi)
    return fi * w.var, b.var, b.mean
