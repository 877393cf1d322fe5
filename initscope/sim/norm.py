"""Normalization layers at their initial state, and scaled weight standardization.

Batch, layer and RMS normalization as PyTorch defines them (eps 1e-5, scale 1 and
shift 0 at init, the biased variance in the forward pass):
    batch: xhat = (x - mean_batch x) / sqrt(var_batch x + eps), per feature
    layer: xhat = (x - mean_feat x) / sqrt(var_feat x + eps), per sample
    rms:   xhat = x / sqrt(mean_feat x^2 + eps), per sample (no centering)
With scale 1 and shift 0 the output is xhat. Backward, along the normalized axis a
(n entries), with s = sqrt(var_a x + eps):
    centered: dx = (dy - mean_a dy - xhat mean_a(dy xhat)) / s
    rms:      dx = (dy - xhat mean_a(dy xhat)) / s
(differentiate xhat = (x - m) / s through m and s; REFERENCE.md, "Modern stacks").

Scaled weight standardization (Brock, De, Smith 2021, "Characterizing signal
propagation to close the performance gap in unnormalized ResNets", eq. 2; timm's
ScaledStdConv2d): per output unit, W_hat = gamma (W - mean W) / (std W sqrt(fan_in)).
Each output column then has zero mean and squared norm gamma^2, so for inputs h with
independent entries z = h W_hat has Var z = gamma^2 Var h. With gamma = 1 / std phi(N(0,1))
(`activation_gamma`), a layer that reads phi's output gives unit-variance z again:
sqrt(2 / (1 - 1/pi)) = 1.7139 for ReLU, since Var relu(N(0,1)) = (1 - 1/pi) / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.gaussian import gaussian_moments

EPS = 1e-5  # PyTorch's default for BatchNorm, LayerNorm and (given) RMSNorm
WS_EPS = 1e-12  # the paper's has none: this only sends a one-entry column (fan_in 1) to 0


@dataclass
class NormCache:
    """What the backward pass needs: the normalized output and 1 / s."""

    xhat: np.ndarray
    inv_s: np.ndarray
    axis: int
    centered: bool


def _sum_of_products(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """sum(a * b) along `axis`, kept as a (1, n) or (n, 1) array, without the
    temporary a * b (einsum reads both once)."""
    out = np.einsum("ij,ij->j" if axis == 0 else "ij,ij->i", a, b)
    return out[None, :] if axis == 0 else out[:, None]


def normalize(kind: str, x: np.ndarray, eps: float = EPS) -> tuple[np.ndarray, NormCache]:
    """(xhat, cache) for x of shape (batch, features); kind batch, layer or rms.
    The statistics accumulate in x's dtype: in float32 their relative error stays near
    1e-5 at the widths and batches allowed, far below what a summary shows."""
    axis = 0 if kind == "batch" else 1
    n, dt = x.shape[axis], x.dtype
    if kind == "rms":
        xhat = x.copy()
    else:
        xhat = x - x.mean(axis=axis, keepdims=True)
    var = _sum_of_products(xhat, xhat, axis) / dt.type(n)
    inv_s = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(dt)
    xhat *= inv_s
    return xhat, NormCache(xhat, inv_s, axis, centered=kind != "rms")


def normalize_backward(dy: np.ndarray, cache: NormCache) -> np.ndarray:
    """dL/dx from dL/dxhat (scale 1, so dxhat = dy)."""
    a, xhat, dt = cache.axis, cache.xhat, dy.dtype
    n = dt.type(xhat.shape[a])
    proj = _sum_of_products(dy, xhat, a) / n
    dx = np.multiply(xhat, -proj)
    dx += dy
    if cache.centered:
        dx -= dy.mean(axis=a, keepdims=True)
    dx *= cache.inv_s
    return dx


def standardize(basis: np.ndarray, scale: float, gamma: float
                ) -> tuple[np.ndarray, NormCache]:
    """Scaled weight standardization of the (fan_in, fan_out) weights scale * basis,
    and the cache that carries a gradient w.r.t. W_hat back to one w.r.t. W.

    Standardizing is blind to the weights' size, so the unit draw is standardized
    (per output column, the batch norm of a matrix whose rows are the fan_in) and
    only the sign of `scale` is kept: zero weights stay zero. dW = dW_hat chained
    through that column norm, times gamma / (sqrt(fan_in) |scale|)."""
    fan_in = basis.shape[0]
    dt = basis.dtype
    if scale == 0.0:
        zero = np.zeros_like(basis)
        return zero, NormCache(zero, np.zeros((1, basis.shape[1]), dt), 0, True)
    xhat, cache = normalize("batch", basis, eps=WS_EPS)
    factor = gamma / math.sqrt(fan_in)
    cache.inv_s = cache.inv_s * dt.type(factor / abs(scale))
    return xhat * dt.type(math.copysign(factor, scale)), cache


@lru_cache(maxsize=64)
def activation_gamma(activation: str, slope: float = 0.01) -> float:
    """1 / std phi(z), z ~ N(0, 1): closed form for ReLU, quadrature otherwise."""
    mom = gaussian_moments(ACTIVATIONS[activation], 0.0, 1.0, slope)
    var = mom.phi2 - mom.phi1 ** 2
    return 1.0 / math.sqrt(var) if var > 0 else 1.0


def describe(norm: str, at: str, alpha: float, residual: bool) -> str:
    """The norm in a few words, for titles ("" for none)."""
    if norm == "none":
        return ""
    if norm == "nf":
        return f"nf, alpha {alpha:g}" if residual else "weight-standardized"
    if residual:
        return f"{'pre' if at == 'before' else 'post'}-{norm} norm"
    return f"{norm} norm {at} phi"
