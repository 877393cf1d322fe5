"""Singular values of the input-output Jacobian of the plain stack (dynamical isometry).

With row vectors, h_l = phi(h_{l-1} W_l + b_l), so dh_L/dh_0 = prod_l W_l diag(phi'(z_l)).
Its singular values at a few inputs say how evenly the network passes signals and
gradients: all near 1 is dynamical isometry (Pennington et al. 2017), reachable with
orthogonal weights and a sigmoidal activation at criticality, never with ReLU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.budget import over_budget
from initscope.sim.config import Config, ConfigError
from initscope.sim.draws import DrawCache
from initscope.sim.layers import dense_parameters, input_batch
from initscope.sim.memory import budget_bytes
from initscope.sim.schemes import SCHEMES
from initscope.sim.validation import validate

MAX_SPECTRUM_WIDTH = 1000
SAMPLES = 3  # inputs at which the Jacobian is taken


@dataclass
class Spectrum:
    singular_values: list[list[float]]  # one list per input sample, largest first

    @property
    def flat(self) -> np.ndarray:
        return np.concatenate([np.asarray(s) for s in self.singular_values])

    def to_dict(self) -> dict:
        s = self.flat
        return {
            "singular_values": self.singular_values,
            "mean_squared": float(np.mean(s * s)),
            "std": float(np.std(s)),
            "max": float(s.max()),
            "min": float(s.min()),
        }


def spectrum_bytes(cfg: Config) -> int:
    """An upper bound on what the spectrum holds at once: the unit draws in the
    config's dtype and their float64 copy (every layer's weights), and per layer the
    Jacobian, its step and the SVD's workspace (a few widest-by-widest float64s)."""
    params = sum(fi * fo for fi, fo in cfg.fans())
    widest = max(cfg.widths() + [cfg.inputs])
    return params * (np.dtype(cfg.dtype).itemsize + 8) + 6 * widest * widest * 8


def jacobian_spectrum(cfg: Config, draws: DrawCache | None = None) -> Spectrum:
    """Singular values of dh_L/dh_0 at the first SAMPLES inputs of the batch, in float64;
    `draws` lets a caller that ran the config reuse its draws."""
    validate(cfg)
    if cfg.arch != "plain" or SCHEMES[cfg.scheme].data_init:
        raise ConfigError("the Jacobian spectrum is for the plain network with a fixed scheme")
    if cfg.norm != "none":  # a batch norm couples the samples: no per-input Jacobian
        raise ConfigError("the Jacobian spectrum is for networks without normalization: set "
                          "norm to none")
    if max(cfg.widths() + [cfg.inputs]) > MAX_SPECTRUM_WIDTH:
        raise ConfigError(f"the Jacobian spectrum takes widths and inputs up to "
                          f"{MAX_SPECTRUM_WIDTH}: lower the width")
    need, limit = spectrum_bytes(cfg), budget_bytes(cfg)
    if need > limit:
        raise over_budget(need, limit, "the Jacobian spectrum of this config")
    draws = draws or DrawCache()
    act = ACTIVATIONS[cfg.activation]
    dt = np.dtype(cfg.dtype)
    x = np.asarray(input_batch(cfg, draws, dt))
    weights, biases = dense_parameters(cfg, draws, dt, as_dtype=np.float64)
    out = []
    with np.errstate(all="ignore"):
        for row in x[: min(SAMPLES, cfg.batch)].astype(np.float64):
            h, jac = row[None, :], None
            for w, b in zip(weights, biases):
                z = h @ w + b
                step = w * act.slope_of(z, cfg.slope)  # W diag(phi'(z))
                jac = step if jac is None else jac @ step
                h = act.apply(z, cfg.slope)
            if not np.all(np.isfinite(jac)):
                raise ConfigError("the Jacobian overflowed: its singular values are not finite")
            sv = np.linalg.svd(jac, compute_uv=False)
            out.append([float(v) for v in sv])
    return Spectrum(out)


def spread(spectrum: Spectrum) -> float:
    """How far from isometry: std of the singular values over their root mean square."""
    s = spectrum.flat
    rms = math.sqrt(float(np.mean(s * s)))
    return float(np.std(s)) / rms if rms > 0 else math.inf
