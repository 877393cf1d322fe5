"""The one builder: a network's inputs, weights and biases from the cached unit draws.

Every runner, the trainer, the data-dependent inits and the Jacobian spectrum take
their numbers from here, so a setting such as the input distribution reaches all of
them at once, and the trainer's step 0 is exactly the network `report` measures.

A weight is `scale` times a unit draw of kind `basis` (schemes.py); its draw is
keyed by (seed, "weight", index, shape), a bias's by (seed, "bias", index, width),
the inputs' by (seed, "input", step, shape): the same key always gives the same
numbers, whichever scheme, architecture or front end asks.
"""

from __future__ import annotations

import math

import numpy as np

from initscope.sim.config import Config
from initscope.sim.draws import DrawCache
from initscope.sim.schemes import (
    DELTA,
    DIRAC,
    NORMAL,
    ONES,
    ORTHOGONAL,
    SCHEMES,
    UNIFORM,
    BiasSpec,
    WeightSpec,
    bias_spec,
)

SQRT3 = math.sqrt(3.0)  # U(-1, 1) times sqrt(3) has unit variance


def input_draw(cfg: Config, dt: np.dtype, step: int = 0,
               features: int | None = None) -> tuple:
    """(kind, seed, purpose, index, shape, dtype) of the input batch's unit draw."""
    kind = UNIFORM if cfg.input_dist == "uniform" else NORMAL
    return (kind, cfg.seed, "input", step, (cfg.batch, features or cfg.inputs), np.dtype(dt))


def input_batch(cfg: Config, draws: DrawCache, dt: np.dtype, step: int = 0,
                features: int | None = None) -> np.ndarray:
    """The inputs, unit variance, normal or uniform by `cfg.input_dist`: (batch,
    features), features = cfg.inputs unless given (a residual stream's width). `step`
    numbers the time steps of a recurrent net. Read-only when normal."""
    kind, *key = input_draw(cfg, dt, step, features)
    if kind == UNIFORM:
        return draws.basis(UNIFORM, *key) * np.dtype(dt).type(SQRT3)
    return draws.normal(*key)


def upstream_draw(cfg: Config, dt: np.dtype, width: int) -> tuple:
    return (NORMAL, cfg.seed, "upstream", 0, (cfg.batch, width), np.dtype(dt))


def upstream_gradient(cfg: Config, draws: DrawCache, dt: np.dtype, width: int) -> np.ndarray:
    """The unit-Gaussian gradient the backward pass starts from (read-only)."""
    return draws.normal(*upstream_draw(cfg, dt, width)[1:])


def weight_draw(cfg: Config, index: int, spec: WeightSpec, dt: np.dtype) -> tuple | None:
    """The unit draw a weight reads, or None when it needs none (one value, or
    Dirac's identity); delta-orthogonal reads a (channels, channels) orthogonal draw."""
    if spec.basis in (ONES, DIRAC):
        return None
    if spec.basis == DELTA:
        return (ORTHOGONAL, cfg.seed, "weight", index, (spec.fan_out,) * 2, np.dtype(dt))
    return (spec.basis, cfg.seed, "weight", index, (spec.fan_in, spec.fan_out), np.dtype(dt))


def bias_draw(cfg: Config, index: int, spec: BiasSpec, width: int, dt: np.dtype) -> tuple | None:
    if not spec.scale:
        return None
    return (spec.basis, cfg.seed, "bias", index, (width,), np.dtype(dt))


def weight_basis(cfg: Config, draws: DrawCache, index: int, spec: WeightSpec,
                 dt: np.dtype) -> np.ndarray | None:
    """The unit draw a layer multiplies by before scaling; None when every weight has
    the one value `spec.scale` (each unit then sums its inputs)."""
    key = weight_draw(cfg, index, spec, dt)
    return None if key is None else draws.basis(*key)


def weight_matrix(cfg: Config, draws: DrawCache, index: int, spec: WeightSpec,
                  dt: np.dtype, as_dtype: np.dtype | None = None) -> np.ndarray:
    """The weights themselves, a new writable (fan_in, fan_out) array in `as_dtype`
    (default `dt`, the draw's dtype)."""
    out = np.dtype(as_dtype or dt)
    shape = (spec.fan_in, spec.fan_out)
    if spec.basis == ONES:
        return np.full(shape, spec.scale, out)
    if spec.scale == 0:
        return np.zeros(shape, out)
    if spec.basis in (DIRAC, DELTA):
        return _centre_tap(cfg, draws, index, spec, dt, out)
    unit = weight_basis(cfg, draws, index, spec, dt)
    return unit.astype(out, copy=False) * out.type(spec.scale)


def _centre_tap(cfg: Config, draws: DrawCache, index: int, spec: WeightSpec,
                dt: np.dtype, out: np.dtype) -> np.ndarray:
    """A (k k c, c) kernel, rows ordered (kernel row, column, channel), zero but its
    centre tap's c rows: the identity (Dirac) or an orthogonal matrix, times scale."""
    c = spec.fan_out
    k = math.isqrt(spec.fan_in // c)
    centre = (k // 2) * k + k // 2
    w = np.zeros((spec.fan_in, c), out)
    if spec.basis == DIRAC:
        w[centre * c:(centre + 1) * c] = np.eye(c, dtype=out) * out.type(spec.scale)
    else:
        q = draws.basis(*weight_draw(cfg, index, spec, dt))
        w[centre * c:(centre + 1) * c] = q.astype(out, copy=False) * out.type(spec.scale)
    return w


def bias_term(cfg: Config, draws: DrawCache, index: int, spec: BiasSpec, width: int,
              dt: np.dtype) -> np.ndarray | float:
    """A layer's bias: a vector, or a plain float when every unit has the same one."""
    key = bias_draw(cfg, index, spec, width, dt)
    if key is None:
        return float(spec.mean)
    dt = np.dtype(dt)
    vec = draws.basis(*key) * dt.type(spec.scale)
    if spec.mean:
        vec = vec + dt.type(spec.mean)
    return vec


def bias_vector(cfg: Config, draws: DrawCache, index: int, spec: BiasSpec, width: int,
                dt: np.dtype, as_dtype: np.dtype | None = None) -> np.ndarray:
    """A layer's bias as a new writable vector."""
    term = bias_term(cfg, draws, index, spec, width, dt)
    out = np.dtype(as_dtype or dt)
    if isinstance(term, float):
        return np.full(width, term, out)
    return term.astype(out, copy=True)


def dense_specs(cfg: Config, fans: list[tuple[int, int]] | None = None
                ) -> list[tuple[WeightSpec, BiasSpec]]:
    """Weight and bias specs of a stack of dense layers (default: the config's)."""
    scheme = SCHEMES[cfg.scheme]
    return [(scheme.weight_spec(cfg, fi, fo), bias_spec(cfg, fi))
            for fi, fo in (fans if fans is not None else cfg.fans())]


def dense_parameters(cfg: Config, draws: DrawCache, dt: np.dtype,
                     fans: list[tuple[int, int]] | None = None,
                     as_dtype: np.dtype | None = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Writable weights and biases of a dense stack, layer i from draws of index i."""
    weights, biases = [], []
    with np.errstate(all="ignore"):
        for i, (w, b) in enumerate(dense_specs(cfg, fans)):
            weights.append(weight_matrix(cfg, draws, i, w, dt, as_dtype))
            biases.append(bias_vector(cfg, draws, i, b, w.fan_out, dt, as_dtype))
    return weights, biases
