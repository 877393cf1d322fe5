"""One 2-D convolution as one matmul, forward and backward, on buffers kept from run
to run.

Images are (batch, side, side, channels), channels last. The forward pass copies
every k x k window of the zero-padded input into a (positions, k k c) matrix, the
windows, with one strided copy (for a kernel row the k pixels' channels are
contiguous in the input), and multiplies it by W, (k k c, c_out), rows ordered
(kernel row, kernel column, channel) as a flattened HWIO kernel.

The gradient w.r.t. the input is the transposed convolution: place dz (its rows
`stride` apart, zeros between) in a zero frame k - 1 - p wide, take its windows at
stride 1 and multiply by the kernel turned by 180 degrees with in and out channels
swapped. That is the same copy and matmul as the forward pass, where scattering
dz W^T back window by window (col2im) costs k^2 strided additions.

Every buffer is allocated once per geometry and reused: a fresh array of several
megabytes costs its page faults on every run, as much as the matmul itself at 16
channels. The padded frames' borders are written once, as zeros, and never again.
A layer keeps only its padded input: the windows, k^2 times larger, live in one
buffer shared by the layers, and dW copies them again from the padded input (a
copy into a buffer already in cache costs about what reading a kept one does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided


@dataclass(frozen=True)
class Geometry:
    """One convolution's shapes: input (batch, side, side, channels) -> output
    (batch, out_side, out_side, out_channels)."""

    batch: int
    side: int
    channels: int
    out_channels: int
    kernel: int
    stride: int
    pad: int

    @property
    def out_side(self) -> int:
        return (self.side + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def positions(self) -> int:
        """Rows of the windows matrix: one per output pixel of every image."""
        return self.batch * self.out_side ** 2

    @property
    def window(self) -> int:
        """Columns of the windows matrix: the fan_in."""
        return self.kernel ** 2 * self.channels


def windows_into(padded: np.ndarray, k: int, stride: int, out: np.ndarray) -> np.ndarray:
    """Every k x k window of `padded` (batch, n, n, c), `stride` apart, into `out`
    (batch m m, k k c): one copy from a strided view whose innermost run is a
    kernel row's k c contiguous numbers."""
    b, n, _, c = padded.shape
    m = (n - k) // stride + 1
    sb, sh, sw, sc = padded.strides
    view = as_strided(padded, (b, m, m, k, k * c), (sb, stride * sh, stride * sw, sh, sc),
                      writeable=False)
    np.copyto(out.reshape(b, m, m, k, k * c), view)
    return out


def flipped(w: np.ndarray, k: int, c_in: int) -> np.ndarray:
    """The transposed convolution's kernel: W turned by 180 degrees in space, in and
    out channels swapped, as a (k k c_out, c_in) matrix."""
    c_out = w.shape[1]
    kernel = w.reshape(k, k, c_in, c_out)[::-1, ::-1].transpose(0, 1, 3, 2)
    return np.ascontiguousarray(kernel).reshape(k * k * c_out, c_in)


class Conv:
    """One convolution's buffers: the padded input and z, kept; the windows, and for
    the backward pass the framed dz, shared by the layers of a network through
    `scratch`."""

    def __init__(self, g: Geometry, dt: np.dtype, scratch: dict | None = None) -> None:
        self.g, self.dt = g, np.dtype(dt)
        full = g.side + 2 * g.pad
        self.padded = np.zeros((g.batch, full, full, g.channels), self.dt)
        self.z = np.empty((g.positions, g.out_channels), self.dt)
        self.scratch = {} if scratch is None else scratch
        self.cols = self._buffer("cols", (g.positions, g.window))

    def forward(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """z = conv(x, W) into the kept buffer; x is (batch, side, side, c) or its
        (batch side side, c) rows."""
        g = self.g
        p, n = g.pad, g.side
        self.padded[:, p:p + n, p:p + n, :] = x.reshape(g.batch, n, n, g.channels)
        windows_into(self.padded, g.kernel, g.stride, self.cols)
        np.matmul(self.cols, w, out=self.z)
        return self.z

    def weight_grad(self, dz: np.ndarray) -> np.ndarray:
        """dL/dW = windows^T dz, a new (k k c, c_out) array."""
        windows_into(self.padded, self.g.kernel, self.g.stride, self.cols)
        return self.cols.T @ dz

    def input_grad(self, dz: np.ndarray, w_flipped: np.ndarray) -> np.ndarray:
        """dL/dx as (batch side side, c) rows: the transposed convolution of dz."""
        g = self.g
        k, s, m = g.kernel, g.stride, g.out_side
        frame = self._buffer("frame", (g.batch, g.side + k - 1, g.side + k - 1,
                                       g.out_channels), zeros=True)
        lo = k - 1 - g.pad
        frame[:, lo:lo + s * (m - 1) + 1:s, lo:lo + s * (m - 1) + 1:s, :] = \
            dz.reshape(g.batch, m, m, g.out_channels)
        cols = self._buffer("cols", (g.batch * g.side ** 2, k * k * g.out_channels))
        windows_into(frame, k, 1, cols)
        return cols @ w_flipped

    def _buffer(self, name: str, shape: tuple[int, ...], zeros: bool = False) -> np.ndarray:
        key = (name, shape)
        if key not in self.scratch:
            self.scratch[key] = (np.zeros if zeros else np.empty)(shape, self.dt)
        return self.scratch[key]


def scratch_bytes(geometries: list[Geometry], item: int) -> int:
    """The shared buffers: every distinct shape of windows, forward and backward
    (the input gradient's, (batch side side, k k c_out), from the second layer on:
    nothing needs the images' gradient), and of the framed dz."""
    shapes = set()
    for i, g in enumerate(geometries):
        shapes.add(("cols", (g.positions, g.window)))
        if i:
            shapes.add(("cols", (g.batch * g.side ** 2, g.kernel ** 2 * g.out_channels)))
            shapes.add(("frame", (g.batch * (g.side + g.kernel - 1) ** 2, g.out_channels)))
    return sum(a * b for _, (a, b) in shapes) * item


def kept_bytes(g: Geometry, item: int) -> int:
    """A layer's padded input and z."""
    full = g.side + 2 * g.pad
    return (g.batch * full * full * g.channels + g.positions * g.out_channels) * item
