"""An independent, plain float64 forward/backward pass used to check the core.

It reads the core's weights (so both see the same numbers) but computes everything
with the most direct NumPy, keeping every tensor, so that tests can compare and
can differentiate it numerically.
"""

from __future__ import annotations

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.network import Simulator
from initscope.sim.schemes import SCHEMES, bias_spec


def weights_of(sim: Simulator, cfg: Config) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights and biases the core used for `cfg`, at their final scale."""
    scheme = SCHEMES[cfg.scheme]
    ws, bs = [], []
    for i, (fi, fo) in enumerate(cfg.fans()):
        spec = scheme.weight_spec(cfg, fi, fo)
        unit = sim.draws.basis(spec.basis, cfg.seed, "weight", i, (fi, fo), np.dtype(cfg.dtype))
        ws.append(np.full((fi, fo), spec.scale) if unit is None
                  else unit.astype(np.float64) * spec.scale)
        b = bias_spec(cfg, fi)
        vec = np.full(fo, b.mean)
        if b.scale:
            u = sim.draws.basis(b.basis, cfg.seed, "bias", i, (fo,), np.dtype(cfg.dtype))
            vec = vec + u.astype(np.float64) * b.scale
        bs.append(vec)
    return ws, bs


def inputs_of(sim: Simulator, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    dt = np.dtype(cfg.dtype)
    x = sim.draws.normal(cfg.seed, "input", 0, (cfg.batch, cfg.inputs), dt).astype(np.float64)
    g = sim.draws.normal(cfg.seed, "upstream", 0, (cfg.batch, cfg.widths()[-1]), dt)
    return x, g.astype(np.float64)


def forward(cfg: Config, x, ws, bs, start: int = 0, h=None):
    """Pre-activations and activations of every layer from `start` on."""
    act = ACTIVATIONS[cfg.activation]
    zs, hs = [], []
    h = x if h is None else h
    for w, b in zip(ws[start:], bs[start:]):
        z = h @ w + b
        h = act.apply(z, cfg.slope)
        zs.append(z)
        hs.append(h)
    return zs, hs


def loss(cfg, x, ws, bs, g) -> float:
    """The scalar whose gradient w.r.t. the last activations is the upstream g."""
    _, hs = forward(cfg, x, ws, bs)
    return float(np.sum(hs[-1] * g))


def backward(cfg: Config, x, ws, bs, g):
    """Gradients w.r.t. every layer's activations and weights, by the chain rule."""
    act = ACTIVATIONS[cfg.activation]
    zs, hs = forward(cfg, x, ws, bs)
    grads, wgrads = [None] * len(ws), [None] * len(ws)
    dh = g
    for i in range(len(ws) - 1, -1, -1):
        grads[i] = dh
        dz = dh * act.slope_of(zs[i], cfg.slope)
        below = x if i == 0 else hs[i - 1]
        wgrads[i] = below.T @ dz
        dh = dz @ ws[i].T
    return grads, wgrads
