"""Residual blocks of convolutions, as in a ResNet: the stream x, (batch, image,
image, channels), passes `depth` blocks x <- x + alpha F(x) with
F(x) = conv2(phi(conv1(x) + b1)) + b2, both k x k convolutions at stride 1 with same
padding, so the image keeps its size and the skip needs no projection.

Everything else is the dense residual stack's (blocks.py): the branch modes, the
norms (batch norm per channel over images and pixels, as BatchNorm2d; layer and RMS
norm per pixel over the channels, as a channels-last LayerNorm), nf's x + alpha
F(x / beta) with standardized kernels, and the signal propagation plot, whose
channel statistics are here over the batch and every pixel (Brock, De, Smith 2021).
The runner swaps the dense layer for a convolution (im2col.py); the recursion runs
on grids over the image (ConvMixing), because a border pixel's window reads the zero
padding and gathers less variance than an inner one.
"""

from __future__ import annotations

import numpy as np

from initscope.sim.arch.base import Arch, Workspace
from initscope.sim.arch.blocks import ResidualRun, placement, recursion, specs
from initscope.sim.arch.grids import DELTA_NOTE, gather, moments_grid, padding_of, scatter, taps
from initscope.sim.config import LAYER_NORMS, Config, ConfigError
from initscope.sim.im2col import Conv, Geometry, flipped, kept_bytes, scratch_bytes
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.norm import describe
from initscope.sim.result import RunResult
from initscope.sim.schemes import CENTRE_ONLY, DELTA, DIRAC, WeightSpec
from initscope.sim.theory import LayerTheory


def block_specs(cfg: Config) -> tuple[list[WeightSpec], list[WeightSpec], float]:
    """Both kernels of every block, (channels k^2, channels), with PyTorch's fans."""
    return specs(cfg, cfg.channels * cfg.kernel ** 2, cfg.channels)


class ConvMixing:
    """How variances pass a convolution, pixel by pixel: each output pixel sums its
    window's taps (channels Var(W) each), the zero padding adding nothing."""

    def __init__(self, cfg: Config, spec: WeightSpec) -> None:
        self.cfg = cfg
        self.taps, _ = taps(cfg, spec)
        self.per_tap = cfg.channels * cfg.kernel ** 2 / len(self.taps)  # fan_in / taps
        self.rows = cfg.batch * cfg.image ** 2  # what a channel's statistics average over
        self.k, self.p, self.n = cfg.kernel, padding_of(cfg), cfg.image

    def start(self, value: float) -> np.ndarray:
        return np.full((self.n, self.n), float(value))

    def grid(self, x) -> np.ndarray:
        """A per-channel number (batch norm's) spread over the image."""
        return np.broadcast_to(np.asarray(x, dtype=float), (self.n, self.n))

    def mix(self, q, var: float) -> np.ndarray:
        return gather(self.grid(q), self.taps, self.per_tap * var, self.k, 1, self.p)

    def back(self, g, var: float) -> np.ndarray:
        return scatter(self.grid(g), self.n, self.taps, self.per_tap * var, self.k, 1, self.p)

    def moments(self, act, mean: float, var, slope: float):
        return moments_grid(act, mean, np.asarray(var), slope)

    def per_channel(self, v) -> float:
        return float(np.mean(v))

    def mean(self, x) -> float:
        return float(np.mean(x))

    def weight_sum(self, q, dz) -> float:
        every = [(i, j) for i in range(self.k) for j in range(self.k)]
        return float(np.mean([np.sum(gather(self.grid(q), [t], 1.0, self.k, 1, self.p) * dz)
                              for t in every]))


def block_recursion(cfg: Config, first_last=None
                    ) -> tuple[list[LayerTheory], list[tuple]] | None:
    """None for Dirac kernels: a branch then passes phi of each pixel on, which is
    no Gaussian's, and the recursion assumes one."""
    first_last = first_last or block_specs(cfg)
    if first_last[0][0].basis == DIRAC and first_last[0][0].scale != 0:
        return None
    return recursion(cfg, ConvMixing(cfg, first_last[0][0]), first_last)


def theory(cfg: Config) -> list[LayerTheory] | None:
    predicted = block_recursion(cfg)
    return None if predicted is None else predicted[0]


def geometry(cfg: Config) -> Geometry:
    return Geometry(cfg.batch, cfg.image, cfg.channels, cfg.channels, cfg.kernel, 1,
                    padding_of(cfg))


class Buffers:
    """Both convolutions of every block, kept from run to run."""

    def __init__(self, cfg: Config) -> None:
        scratch: dict = {}
        self.convs = [Conv(geometry(cfg), np.dtype(cfg.dtype), scratch)
                      for _ in range(2 * cfg.depth)]

    @staticmethod
    def key(cfg: Config) -> tuple:
        return ("resconv", geometry(cfg), cfg.depth, cfg.dtype)


class ResConvRun(ResidualRun):
    def __init__(self, space: Workspace, cfg: Config, cancel, on_forward) -> None:
        super().__init__(space, cfg, cancel, on_forward)
        self.units = cfg.channels

    @property
    def convs(self) -> list[Conv]:
        """The kept buffers, made on first use: after the run has freed the draws it
        no longer reads."""
        return self.space.reuse(Buffers.key(self.cfg), lambda: Buffers(self.cfg)).convs

    def specs(self):
        return block_specs(self.cfg)

    def recursion(self, first_last):
        return block_recursion(self.cfg, first_last)

    def features(self) -> int:
        return self.cfg.image ** 2 * self.cfg.channels

    def linear(self, k: int, which: int, x: np.ndarray) -> np.ndarray:
        return self.convs[2 * k + which].forward(x, self.weights[which][k][0])

    def linear_back(self, k: int, which: int, dz: np.ndarray) -> np.ndarray:
        w = self.weights[which][k][0]
        return self.convs[2 * k + which].input_grad(dz, flipped(w, self.cfg.kernel, self.units))

    def weight_grad(self, k: int, dz: np.ndarray) -> np.ndarray:
        return self.convs[2 * k].weight_grad(dz)

    def note(self, predicted) -> str | None:
        basis = block_specs(self.cfg)[0][0].basis
        if basis == DIRAC:
            return "no prediction: Dirac branches pass phi of each pixel on, not a Gaussian"
        if basis == DELTA:
            return DELTA_NOTE
        return super().note(predicted)


def run(space: Workspace, cfg: Config, cancel=None, on_forward=None) -> RunResult:
    return ResConvRun(space, cfg, cancel, on_forward).execute()


def check(cfg: Config) -> None:
    if cfg.stride != 1 or cfg.padding != -1 or cfg.kernel % 2 == 0:
        raise ConfigError("residual blocks keep the image's size: an odd kernel, stride 1 "
                          "and same padding (-1)")


def estimate(cfg: Config) -> Estimate:
    """Both kernels of every block (and their draws), every convolution's kept
    buffers, the stream and phi(z) of every block, the norms' copies, the backward
    pass's scratch."""
    item = np.dtype(cfg.dtype).itemsize
    c, k, g = cfg.channels, cfg.kernel, geometry(cfg)
    first, last, _ = block_specs(cfg)
    kernel = k * k * c * c
    image = g.positions * c  # one (batch, image, image, channels) tensor
    inputs = (3 if cfg.input_dist == "uniform" else 2) * image  # + the upstream gradient
    draws = ((copies(first[0]) + copies(last[0])) * cfg.depth * kernel + inputs
             + 4 * cfg.depth * c) * item
    kept = 2 * cfg.depth * kept_bytes(g, item) + (3 * cfg.depth + 1) * image * item
    kind, pre, _ = placement(cfg)
    if kind is not None:  # each block's normalized copy (and pre-norm's branch input)
        kept += (2 if pre else 1) * cfg.depth * image * item
    elif cfg.norm == "nf":  # the scaled branch input; the unit kernels and their caches
        kept += cfg.depth * image * item
        draws += 3 * cfg.depth * kernel * item
    # backward: g, da, dz, du and a norm's temporaries
    scratch = scratch_bytes([g, g], item) + (6 if cfg.norm in LAYER_NORMS else 4) * image * item \
        + 2 * kernel * item + 2 * 65536 * 8
    basis = first[0].basis
    transient = basis_transient("orthogonal" if basis in CENTRE_ONLY else basis,
                                c * c if basis in CENTRE_ONLY else kernel, item)
    samples = samples_bytes(cfg.replace(batch=g.positions), [(k * k * c, c)] * cfg.depth)
    return Estimate(draws, kept, scratch, samples, transient)


RESCONV = Arch(
    name="resconv",
    description="residual blocks x + F(x), F two k x k convolutions (stride 1, same "
                "padding) on unit-Gaussian images, as in a ResNet; depth counts blocks",
    row_noun="blocks",
    row_prefix="B",
    run=run,
    estimate=estimate,
    shape=lambda cfg: ", ".join(filter(None, [
        f"{cfg.depth} {cfg.branch} residual conv blocks {cfg.kernel}x{cfg.kernel}, "
        f"{cfg.channels} ch, {cfg.image}px",
        describe(cfg.norm, cfg.norm_at, cfg.nf_alpha, True)])),
    theory=theory,
    check=check,
    normalizes=True,
    convolutional=True,
    blocks=True,
    defaults={"batch": 32},
)
