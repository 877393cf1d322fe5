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
from functools import lru_cache

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, RowRun, Workspace, keep_draws
from initscope.sim.arch.grids import (
    DELTA_NOTE,
    gather,
    moments_grid,
    padding_of,
    scatter,
    sizes,
    taps,
)
from initscope.sim.config import LAYER_NORMS, Config, ConfigError
from initscope.sim.im2col import Conv, Geometry, flipped, kept_bytes, scratch_bytes
from initscope.sim.layers import (
    bias_draw,
    bias_vector,
    input_batch,
    input_draw,
    upstream_draw,
    upstream_gradient,
    weight_draw,
    weight_matrix,
)
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.norm import (
    NormCache,
    activation_gamma,
    describe,
    normalize,
    normalize_backward,
    standardize,
)
from initscope.sim.result import LayerResult, RunResult
from initscope.sim.schemes import CENTRE_ONLY, DELTA, DIRAC, SCHEMES, WeightSpec, bias_spec
from initscope.sim.theory import LayerTheory, normed_forward, theory_applies, theory_note


def weight_spec(cfg: Config) -> WeightSpec:
    """The scheme's weights with the convolution's fans, drawn as the (channels k^2,
    channels) matrix the im2col matmul multiplies by."""
    fan = cfg.channels * cfg.kernel ** 2
    return replace(SCHEMES[cfg.scheme].weight_spec(cfg, fan, fan), fan_out=cfg.channels)


def theory(cfg: Config) -> list[LayerTheory] | None:
    return _theory(cfg.replace(seed=0, memory_limit=0.0))  # what the numbers depend on


@lru_cache(maxsize=16)
def _theory(cfg: Config) -> list[LayerTheory] | None:
    """Dirac's exact chain; the plain stack's norm recursion (borders left out); or
    the variance recursion at every pixel of the image."""
    w = weight_spec(cfg)
    if w.basis == DIRAC and w.scale != 0:
        return dirac_theory(cfg)
    if not theory_applies(cfg):
        return None
    if cfg.norm != "none":
        return _normed_theory(cfg, w)
    act, k, s, p = ACTIVATIONS[cfg.activation], cfg.kernel, cfg.stride, padding_of(cfg)
    reads, factor = taps(cfg, w)
    b = bias_spec(cfg, w.fan_in)
    m2 = np.ones((cfg.image, cfg.image))  # unit-variance inputs
    rows = []
    for _ in range(cfg.depth):
        q = gather(m2, reads, factor, k, s, p) + b.var
        phi1, phi2, dphi2 = moments_grid(act, b.mean, q, cfg.slope)
        rows.append((q, phi1, phi2, dphi2, m2))
        m2 = phi2
    g2, out = np.ones_like(m2), []
    for q, phi1, phi2, dphi2, m2_in in reversed(rows):
        dz2 = g2 * dphi2
        act_var = max(float(phi2.mean() - phi1.mean() ** 2), 0.0)
        # dW at kernel offset (i, j) sums x at (s pos + (i, j) - p) times dz at pos
        every = [(i, j) for i in range(k) for j in range(k)]
        dw_var = np.mean([float(np.sum(gather(m2_in, [t], 1.0, k, s, p) * dz2))
                          for t in every]) * cfg.batch
        out.append(LayerTheory(math.sqrt(float(q.mean())), math.sqrt(act_var),
                               math.sqrt(float(g2.mean())), math.sqrt(float(dw_var))))
        g2 = scatter(dz2, m2_in.shape[0], reads, factor, k, s, p)
    out.reverse()
    return out


def _normed_theory(cfg: Config, w: WeightSpec) -> list[LayerTheory]:
    """The plain stack's recursion through the norm for the forward pass, which takes
    every pixel alike (exact without padding); backward, the gradient's variance runs
    pixel by pixel, as the transposed convolution spreads it (fewer taps reach a border
    pixel, with or without padding)."""
    k, s, p, fan = cfg.kernel, cfg.stride, padding_of(cfg), w.fan_in
    m1, m2, forward = 0.0, 1.0, []  # the images: zero mean, unit variance
    for i in range(cfg.depth):
        layer, m1, m2 = normed_forward(cfg, m1, m2, i, fan, fan)
        forward.append(layer)
    reads, _ = taps(cfg, w)
    side = sizes(cfg)
    g2, out = np.ones((side[-1], side[-1])), []
    for i in range(cfg.depth - 1, -1, -1):
        lay = forward[i]
        dz2 = lay.dz_factor * g2
        inside = np.ones((side[i], side[i]))  # which taps read the image, not its padding
        every = [(a, b) for a in range(k) for b in range(k)]
        reach = np.mean([float(np.sum(gather(inside, [t], 1.0, k, s, p) * dz2)) for t in every])
        dw_var = cfg.batch * lay.m2_in * lay.raw_factor * reach
        out.append(LayerTheory(lay.pre_std, lay.act_std, math.sqrt(float(g2.mean())),
                               math.sqrt(dw_var)))
        g2 = scatter(dz2, side[i], reads, fan * lay.weight_var / len(reads), k, s, p)
    out.reverse()
    return out


def dirac_theory(cfg: Config) -> list[LayerTheory] | None:
    """A Dirac kernel passes each pixel on: with stride 1 and same padding every pixel
    runs the chain h_l = phi(scale h_{l-1} + b) on its own input x, so the moments
    are one-dimensional integrals over x (a fine grid; exact up to its spacing), not
    a Gaussian recursion. Backward, g_{l-1} = scale phi'(z_l) g_l. For dW, an entry
    sums h (at the tap's pixel) times dz over the batch and pixels: independent
    factors but on the centre tap's diagonal, where both are functions of one x."""
    w, b = weight_spec(cfg), bias_spec(cfg, cfg.channels * cfg.kernel ** 2)
    k, n = cfg.kernel, cfg.image
    if b.scale or cfg.norm != "none" or cfg.stride != 1 or k % 2 == 0 \
            or padding_of(cfg) != k // 2:
        return None
    act = ACTIVATIONS[cfg.activation]
    if cfg.input_dist == "uniform":
        x = (np.arange(20001) + 0.5) / 20001 * 2 * math.sqrt(3.0) - math.sqrt(3.0)
        weight = np.full(x.size, 1.0 / x.size)
    else:
        x = np.linspace(-12.0, 12.0, 48001)
        weight = np.exp(-0.5 * x * x)
        weight /= weight.sum()

    def mean(v: np.ndarray) -> float:
        return float(np.dot(weight, v))

    def std(v: np.ndarray) -> float:
        return math.sqrt(max(mean(v * v) - mean(v) ** 2, 0.0))

    hs, zs, slopes = [x], [], []
    with np.errstate(all="ignore"):
        for _ in range(cfg.depth):
            z = w.scale * hs[-1] + b.mean
            zs.append(z)
            hs.append(act.apply(z, cfg.slope))
            slopes.append(act.slope_of(z, cfg.slope))
        p = k // 2
        valid = float(np.mean([(n - abs(i - p)) / n for i in range(k)])) ** 2
        out, g2 = [], np.ones_like(x)  # per x: E[g^2] given the pixel's input
        for i in range(cfg.depth - 1, -1, -1):
            dz2 = g2 * slopes[i] ** 2
            a2 = hs[i] * hs[i]
            joint = mean(a2 * dz2) - mean(a2) * mean(dz2)
            dw = cfg.batch * n * n * (mean(a2) * mean(dz2) * valid
                                      + joint / (k * k * cfg.channels))
            out.append(LayerTheory(std(zs[i]), std(hs[i + 1]), math.sqrt(mean(g2)),
                                   math.sqrt(max(dw, 0.0))))
            g2 = w.scale * w.scale * dz2
    out.reverse()
    return out


def note(cfg: Config) -> str | None:
    """Where the conv stack's prediction does not hold, or only roughly."""
    w = weight_spec(cfg)
    if w.basis == DIRAC and w.scale != 0:
        return None if dirac_theory(cfg) is not None else (
            "no prediction: a Dirac stack is predicted without a norm, with constant biases, "
            "stride 1, an odd kernel and same padding")
    if w.basis == DELTA:
        return DELTA_NOTE
    if cfg.norm != "none" and padding_of(cfg):
        return "approximate: the norm's recursion leaves out the zero-padded border"
    return theory_note(cfg)


def geometries(cfg: Config) -> list[Geometry]:
    side = sizes(cfg)
    return [Geometry(cfg.batch, n, cfg.channels, cfg.channels, cfg.kernel, cfg.stride,
                     padding_of(cfg)) for n in side[:-1]]


class Buffers:
    """Every layer's convolution buffers and activations, kept from run to run while
    the geometry and dtype stay the same."""

    def __init__(self, cfg: Config) -> None:
        dt = np.dtype(cfg.dtype)
        scratch: dict = {}
        self.convs = [Conv(g, dt, scratch) for g in geometries(cfg)]
        self.acts = [np.empty_like(c.z) for c in self.convs]
        self.dz = np.empty_like(self.convs[0].z)

    @staticmethod
    def key(cfg: Config) -> tuple:
        return ("conv", tuple(geometries(cfg)), cfg.dtype)


class ConvRun(RowRun):
    def __init__(self, space: Workspace, cfg: Config, cancel, on_forward) -> None:
        super().__init__(space.draws, cfg, cancel, on_forward)
        self.space = space
        self.norm = cfg.norm if cfg.norm in LAYER_NORMS else None
        self.norm_first = cfg.norm_at == "before"

    def _weights(self, spec: WeightSpec) -> list[tuple[np.ndarray, NormCache | None]]:
        """Each layer's kernel matrix, and with nf the standardization's cache (gamma 1
        where the layer reads the images)."""
        cfg, dt, draws = self.cfg, self.dt, self.draws
        if cfg.norm != "nf":
            return [(weight_matrix(cfg, draws, i, spec, dt), None) for i in range(cfg.depth)]
        unit = replace(spec, scale=1.0)
        gamma = activation_gamma(cfg.activation, cfg.slope)
        return [standardize(weight_matrix(cfg, draws, i, unit, dt), spec.scale,
                            1.0 if i == 0 else gamma) for i in range(cfg.depth)]

    def execute(self) -> RunResult:
        cfg, dt, draws, act = self.cfg, self.dt, self.draws, self.act
        c = cfg.channels
        w = weight_spec(cfg)
        b = bias_spec(cfg, w.fan_in)
        keep_draws(draws, [input_draw(cfg, dt, features=cfg.image ** 2 * c),
                           upstream_draw(cfg, dt, sizes(cfg)[-1] ** 2 * c)]
                   + [weight_draw(cfg, i, w, dt) for i in range(cfg.depth)]
                   + [bias_draw(cfg, i, b, c, dt) for i in range(cfg.depth)])
        buf = self.space.reuse(Buffers.key(cfg), lambda: Buffers(cfg))
        predicted = theory(cfg)
        weights = self._weights(w)
        biases = [bias_vector(cfg, draws, i, b, c, dt) for i in range(cfg.depth)]
        target = nf_target_std(cfg, w) if cfg.norm == "nf" else w.std
        layers = [LayerResult(i + 1, w.fan_in, c, float(np.std(weights[i][0], dtype=np.float64)),
                              target[i] if cfg.norm == "nf" else target,
                              theory=predicted[i] if predicted else None)
                  for i in range(cfg.depth)]
        result = RunResult(cfg, layers, theory_note=note(cfg))
        h = np.asarray(input_batch(cfg, draws, dt, features=cfg.image ** 2 * c))
        zs, caches = [], []  # per layer: what phi read, and the norm's cache
        for i, conv in enumerate(buf.convs):
            self.check()
            lay = layers[i]
            z = conv.forward(h, weights[i][0])
            z += biases[i]
            cache = None
            if self.norm and self.norm_first:
                z, cache = normalize(self.norm, z)
            a = buf.acts[i]
            act.forward(z, a, cfg.slope)
            out = a
            if self.norm and not self.norm_first:
                out, cache = normalize(self.norm, a)
            zs.append(z)
            caches.append(cache)
            self.unit_flags(lay, a)
            self.channel_means(lay, out)
            if not (self.measure(lay, "preactivation", z) & self.measure(lay, "activation", out)):
                result.overflow_layer, result.overflow_pass = i + 1, "forward"
                break
            h = out

        def backward() -> None:
            g = np.asarray(upstream_gradient(cfg, draws, dt, buf.convs[-1].g.out_side ** 2 * c))
            g = g.reshape(-1, c)
            for i in range(cfg.depth - 1, -1, -1):
                self.check()
                lay, conv = layers[i], buf.convs[i]
                if not self.measure(lay, "gradient", g):
                    result.overflow_layer, result.overflow_pass = i + 1, "backward"
                    return
                if self.norm and not self.norm_first:
                    g = normalize_backward(g, caches[i])
                dz = buf.dz[:g.shape[0]]
                act.derivative(zs[i], buf.acts[i], dz, cfg.slope)
                dz *= g
                if self.norm and self.norm_first:
                    dz = normalize_backward(dz, caches[i])
                dw = conv.weight_grad(dz)
                ws = weights[i][1]  # nf: the raw kernel's gradient, through the standardization
                self.measure(lay, "weight_gradient",
                             dw if ws is None else normalize_backward(dw, ws))
                if i:
                    g = conv.input_grad(dz, flipped(weights[i][0], cfg.kernel, c))

        return self.finish(result, backward)


def run(space: Workspace, cfg: Config, cancel=None, on_forward=None) -> RunResult:
    return ConvRun(space, cfg, cancel, on_forward).execute()


def nf_target_std(cfg: Config, spec: WeightSpec) -> list[float]:
    """A standardized kernel's entry std: gamma / sqrt(fan_in), gamma 1 for layer 1."""
    gamma = activation_gamma(cfg.activation, cfg.slope)
    return [0.0 if spec.scale == 0 else (1.0 if i == 0 else gamma) / math.sqrt(spec.fan_in)
            for i in range(cfg.depth)]


def check(cfg: Config) -> None:
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
    """The kernels (and their draws), every layer's kept buffers (padded input, z,
    phi(z)), the shared windows and framed dz, and the norms' copies."""
    item = np.dtype(cfg.dtype).itemsize
    c, k = cfg.channels, cfg.kernel
    geoms = geometries(cfg)
    w = weight_spec(cfg)
    inputs = (2 if cfg.input_dist == "uniform" else 1) * cfg.batch * cfg.image ** 2 * c
    kernel = k * k * c * c
    draws = (copies(w) * cfg.depth * kernel + inputs + geoms[-1].positions * c
             + 2 * cfg.depth * c) * item
    kept = sum(kept_bytes(g, item) + g.positions * c * item for g in geoms)
    positions = [g.positions for g in geoms]
    normed = cfg.norm in LAYER_NORMS
    if normed:  # each layer's normalized copy, kept for the backward pass
        kept += sum(positions) * c * item
    # backward: dz, g, the input gradient; a norm's backward and the weight gradient
    scratch = scratch_bytes(geoms, item) + 3 * positions[0] * c * item \
        + (2 * positions[0] * c * item if normed else 0) + 2 * kernel * item + 2 * 65536 * 8
    transient = basis_transient(w.basis if w.basis not in CENTRE_ONLY else "orthogonal",
                                kernel if w.basis not in CENTRE_ONLY else c * c, item)
    if cfg.norm == "nf":  # the unit kernels, standardized, and their caches
        draws += 2 * cfg.depth * kernel * item
        transient = max(transient, kernel * (8 + 2 * item))
    samples = samples_bytes(replace(cfg, batch=max(positions)), [(k * k * c, c)] * cfg.depth)
    return Estimate(draws, kept, scratch, samples, transient)


CONV = Arch(
    name="conv",
    description="a stack of 2-D convolutions (channels, image, kernel, stride, padding) "
                "on unit-Gaussian images, via im2col; depth counts layers",
    row_noun="layers",
    row_prefix="L",
    run=run,
    estimate=estimate,
    shape=lambda cfg: ", ".join(filter(None, [
        f"depth {cfg.depth} conv {cfg.kernel}x{cfg.kernel}/{cfg.stride}, {cfg.channels} ch, "
        f"{cfg.image}px", describe(cfg.norm, cfg.norm_at, cfg.nf_alpha, False)])),
    theory=theory,
    check=check,
    normalizes=True,
    convolutional=True,
    defaults={"batch": 32},
)
