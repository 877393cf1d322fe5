"""A stack of 2-D convolutions: h_l = phi(conv(h_{l-1}, W_l) + b_l), channels in and
out, on a batch of unit-Gaussian images (batch, image, image, channels).

Each layer is one matmul: im2col gathers every k x k window into a (positions,
k^2 channels) matrix and multiplies it by W, (k^2 channels, channels). The backward
pass multiplies back and scatters the windows' gradients onto the input (col2im),
exactly. The rows of W are ordered (kernel row, kernel column, in channel), as a
Keras or JAX HWIO kernel is when flattened (the draws are the same whatever the
order), and the fans are PyTorch's and Keras': fan_in = fan_out = channels k^2. The schemes are
the dense ones with these fans (torch_linear is then Conv2d's default,
kaiming_uniform(a = sqrt 5) with bias U(+-1 / sqrt fan_in)).

Statistics are over every entry (batch, positions, channels); a unit, for the dead
share, is a channel. The prediction runs the variance recursion position by
position: with zero padding a border position sums fewer inputs, so its variance is
smaller, and that shortfall spreads inwards layer after layer.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, RowRun, fresh_draws_runner
from initscope.sim.config import Config, ConfigError
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.result import LayerResult, RunResult
from initscope.sim.schemes import SCHEMES, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, theory_applies


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


def weight_spec(cfg: Config) -> WeightSpec:
    """The scheme's weights with the convolution's fans, drawn as the (channels k^2,
    channels) matrix the im2col matmul multiplies by."""
    fan = cfg.channels * cfg.kernel ** 2
    return replace(SCHEMES[cfg.scheme].weight_spec(cfg, fan, fan), fan_out=cfg.channels)


def im2col(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """(batch, n, n, c) -> (batch * m * m, k * k * c), every window of the padded x,
    columns ordered (kernel row, kernel column, channel). Filled one kernel offset at a
    time: each is a strided block whose channels stay contiguous, several times faster
    than copying the windows of a sliding_window_view."""
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    b, n, _, c = x.shape
    m = (n - k) // s + 1
    cols = np.empty((b, m, m, k, k, c), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = x[:, i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s, :]
    return cols.reshape(b * m * m, k * k * c)


def col2im(dcols: np.ndarray, shape: tuple[int, ...], k: int, s: int, p: int) -> np.ndarray:
    """The adjoint of im2col: every window's gradient added back where it was read."""
    b, n, _, c = shape
    m = (n + 2 * p - k) // s + 1
    windows = dcols.reshape(b, m, m, k, k, c)
    dx = np.zeros((b, n + 2 * p, n + 2 * p, c), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s, :] += windows[:, :, :, i, j, :]
    return dx[:, p:p + n, p:p + n, :] if p else dx


def _window_sums(grid: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """Per output position, the sum of `grid` (n, n) over its k x k window (zeros
    outside): how much variance each position gathers."""
    n = grid.shape[0]
    m = (n + 2 * p - k) // s + 1
    padded = np.pad(grid, p)
    out = np.zeros((m, m))
    for i in range(k):
        for j in range(k):
            out += padded[i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s]
    return out


def _moments_grid(act, mean: float, var: np.ndarray, slope: float):
    """E[phi], E[phi^2], E[phi'^2] at every position (one quadrature per value)."""
    # 10 significant digits (not decimals: a variance of 1e-20 is not 0)
    flat = np.array([float(f"{v:.10g}") for v in var.ravel()])
    values, where = np.unique(flat, return_inverse=True)
    table = np.array([[m.phi1, m.phi2, m.dphi2] for m in
                      (gaussian_moments(act, mean, math.sqrt(max(v, 0.0)), slope)
                       for v in values)])
    return [table[where, q].reshape(var.shape) for q in range(3)]


def theory(cfg: Config) -> list[LayerTheory] | None:
    """The recursion of the plain stack, at every position of the image."""
    if not theory_applies(cfg):
        return None
    act, k, s, p = ACTIVATIONS[cfg.activation], cfg.kernel, cfg.stride, padding_of(cfg)
    w = weight_spec(cfg)
    b = bias_spec(cfg, cfg.channels * k * k)
    m2 = np.ones((cfg.image, cfg.image))  # unit-variance inputs
    rows = []
    for _ in range(cfg.depth):
        q = cfg.channels * w.var * _window_sums(m2, k, s, p) + b.var
        phi1, phi2, dphi2 = _moments_grid(act, b.mean, q, cfg.slope)
        rows.append((q, phi1, phi2, dphi2, m2))
        m2 = phi2
    g2, out = np.ones_like(m2), []
    for q, phi1, phi2, dphi2, m2_in in reversed(rows):
        dz2 = g2 * dphi2
        act_var = max(float(phi2.mean() - phi1.mean() ** 2), 0.0)
        # dW at kernel offset (i, j) sums x at (s pos + (i, j) - p) times dz at pos
        padded = np.pad(m2_in, p)
        m = dz2.shape[0]
        dw_var = np.mean([np.sum(padded[i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s] * dz2)
                          for i in range(k) for j in range(k)]) * cfg.batch
        out.append(LayerTheory(math.sqrt(float(q.mean())), math.sqrt(act_var),
                               math.sqrt(float(g2.mean())), math.sqrt(float(dw_var))))
        spread = np.zeros_like(padded)
        for i in range(k):
            for j in range(k):
                spread[i:i + s * (m - 1) + 1:s, j:j + s * (m - 1) + 1:s] += dz2
        n = m2_in.shape[0]
        g2 = cfg.channels * w.var * (spread[p:p + n, p:p + n] if p else spread)
    out.reverse()
    return out


class ConvRun(RowRun):
    def execute(self) -> RunResult:
        cfg, dt, draws = self.cfg, self.dt, self.draws
        c, k, s, p = cfg.channels, cfg.kernel, cfg.stride, padding_of(cfg)
        side = sizes(cfg)
        w = weight_spec(cfg)
        b = bias_spec(cfg, c * k * k)
        predicted = theory(cfg)
        weights = [weight_matrix(cfg, draws, i, w, dt) for i in range(cfg.depth)]
        biases = [bias_vector(cfg, draws, i, b, c, dt) for i in range(cfg.depth)]
        layers = [LayerResult(i + 1, c * k * k, c, float(np.std(weights[i], dtype=np.float64)),
                              w.std, theory=predicted[i] if predicted else None)
                  for i in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=None if predicted else
                           "no prediction: every weight has one value")
        x = np.asarray(input_batch(cfg, draws, dt, features=side[0] ** 2 * c))
        h = x.reshape(cfg.batch, side[0], side[0], c)
        kept = []  # per layer: its input's shape, its windows, its z
        for i in range(cfg.depth):
            self.check()
            lay = layers[i]
            cols = im2col(h, k, s, p)
            z = cols @ weights[i]
            z += biases[i]
            a = self.act.apply(z, cfg.slope)
            kept.append((h.shape, cols, z))
            self.unit_flags(lay, a)
            if not (self.measure(lay, "preactivation", z) & self.measure(lay, "activation", a)):
                result.overflow_layer, result.overflow_pass = i + 1, "forward"
                break
            h = a.reshape(cfg.batch, side[i + 1], side[i + 1], c)

        def backward() -> None:
            g = np.asarray(upstream_gradient(cfg, draws, dt, side[-1] ** 2 * c))
            g = g.reshape(-1, c)
            for i in range(cfg.depth - 1, -1, -1):
                self.check()
                lay = layers[i]
                shape, cols, z = kept[i]
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = i + 1, "backward"
                    return
                dz = g * self.act.slope_of(z, cfg.slope)
                self.measure(lay, "weight_gradient", cols.T @ dz)
                if i:
                    g = col2im(dz @ weights[i].T, shape, k, s, p).reshape(-1, c)

        return self.finish(result, backward)


def check(cfg: Config) -> None:
    if SCHEMES[cfg.scheme].data_init:
        raise ConfigError(f"{cfg.scheme} tunes a dense stack: choose another scheme for the "
                          "conv network")
    if padding_of(cfg) >= cfg.kernel:
        raise ConfigError(f"padding must be below the kernel size ({cfg.kernel}), not "
                          f"{cfg.padding}")
    side = sizes(cfg)
    if side[-1] < 1:
        first = next(i for i, n in enumerate(side) if n < 1)
        raise ConfigError(f"the image shrinks to nothing at layer {first} ({cfg.image} px, "
                          f"kernel {cfg.kernel}, stride {cfg.stride}): lower the depth or "
                          "the stride, or pad")


def estimate(cfg: Config) -> Estimate:
    """The weights, every layer's windows and z kept, the image tensors, and the
    backward's scatter."""
    item = np.dtype(cfg.dtype).itemsize
    c, k = cfg.channels, cfg.kernel
    side = sizes(cfg)
    w = weight_spec(cfg)
    inputs = (2 if cfg.input_dist == "uniform" else 1) * cfg.batch * side[0] ** 2 * c
    draws = (copies(w) * cfg.depth * c * k * k * c + inputs + cfg.batch * side[-1] ** 2 * c
             + 2 * cfg.depth * c) * item
    positions = [cfg.batch * n * n for n in side[1:]]
    kept = sum(pos * c * (k * k + 1) for pos in positions) * item  # windows and z
    padded = [cfg.batch * (n + 2 * padding_of(cfg)) ** 2 * c for n in side[:-1]]
    # forward: the padded input and the layer's output; backward (not below layer 2):
    # the gradient, dz and phi' at the output, the windows' gradients, the padded dx
    forward = max(pad + pos * c for pad, pos in zip(padded, positions))
    backward = max([3 * pos * c + pos * c * k * k + pad
                    for pad, pos in zip(padded[1:], positions[1:])] or [0])
    scratch = (max(forward, backward) + 2 * positions[-1] * c) * item + 2 * 65536 * 8
    shapes = [(c * k * k, c)] * cfg.depth
    samples = samples_bytes(replace(cfg, batch=max(positions)), shapes)
    return Estimate(draws, kept, scratch, samples, basis_transient(w.basis, c * k * k * c, item))


CONV = Arch(
    name="conv",
    description="a stack of 2-D convolutions (channels, image, kernel, stride, padding) "
                "on unit-Gaussian images, via im2col; depth counts layers",
    row_noun="layers",
    row_prefix="L",
    run=fresh_draws_runner(ConvRun),
    estimate=estimate,
    shape=lambda cfg: (f"depth {cfg.depth} conv {cfg.kernel}x{cfg.kernel}/{cfg.stride}, "
                       f"{cfg.channels} ch, {cfg.image}px"),
    theory=theory,
    check=check,
)
