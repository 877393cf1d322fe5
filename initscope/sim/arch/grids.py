"""Variances on the image, pixel by pixel, for the convolutional networks' theory.

A convolution's output pixel sums the k x k window of input pixels around it (the
taps), each through channels weights; with zero padding a border pixel's window
reads zeros, so it gathers less variance, and the backward pass spreads a pixel's
gradient variance back over the same window (`scatter`, the adjoint of `gather`).
"""

from __future__ import annotations

import math

import numpy as np

from initscope.sim.config import Config
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.schemes import CENTRE_ONLY, WeightSpec

DELTA_NOTE = "approximate: the orthogonal channel mixing is not independent draws"


def padding_of(cfg: Config) -> int:
    """The zero padding on each side: -1 means "same" (kernel // 2)."""
    return cfg.kernel // 2 if cfg.padding < 0 else cfg.padding


def sizes(cfg: Config) -> list[int]:
    """The image's side before every layer, and after the last."""
    out, n, p = [cfg.image], cfg.image, padding_of(cfg)
    for _ in range(cfg.depth):
        n = (n + 2 * p - cfg.kernel) // cfg.stride + 1
        out.append(n)
    return out


def taps(cfg: Config, w: WeightSpec) -> tuple[list[tuple[int, int]], float]:
    """The kernel offsets a pixel gathers variance from, and the factor per offset:
    channels Var(W) for independent weights; scale^2 at the centre alone for a
    delta-orthogonal kernel (each column of Q has unit norm)."""
    k = cfg.kernel
    if w.basis in CENTRE_ONLY:
        return [(k // 2, k // 2)], w.scale * w.scale
    return [(i, j) for i in range(k) for j in range(k)], cfg.channels * w.var


def gather(grid: np.ndarray, taps, factor: float, k: int, s: int, p: int) -> np.ndarray:
    """Per output pixel, factor times the sum of `grid` (n, n) over its taps (zeros
    outside the image)."""
    n = grid.shape[0]
    m = (n + 2 * p - k) // s + 1
    padded = np.pad(grid, p)
    out = np.zeros((m, m))
    for i, j in taps:
        out += padded[i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s]
    return factor * out


def scatter(grid: np.ndarray, n: int, taps, factor: float, k: int, s: int, p: int
             ) -> np.ndarray:
    """The adjoint of `_gather`: each output pixel's value added back to the input
    pixels it read, on an (n, n) grid."""
    m = grid.shape[0]
    spread = np.zeros((n + 2 * p, n + 2 * p))
    for i, j in taps:
        spread[i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s] += grid
    return factor * (spread[p:p + n, p:p + n] if p else spread)


def moments_grid(act, mean: float, var: np.ndarray, slope: float):
    """E[phi], E[phi^2], E[phi'^2] at every position (one quadrature per value)."""
    # to 10 significant digits (not decimals: a variance of 1e-20 is not 0), so the
    # few classes of border pixels each take one quadrature
    flat = var.ravel()
    with np.errstate(all="ignore"):
        unit = 10.0 ** (np.floor(np.log10(np.abs(flat))) - 9)
    flat = np.where((flat != 0) & np.isfinite(unit), np.round(flat / unit) * unit, flat)
    values, where = np.unique(flat, return_inverse=True)
    table = np.array([[m.phi1, m.phi2, m.dphi2] for m in
                      (gaussian_moments(act, mean, math.sqrt(max(v, 0.0)), slope)
                       for v in values)])
    return [table[where, q].reshape(var.shape) for q in range(3)]
