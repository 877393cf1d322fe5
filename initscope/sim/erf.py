"""The error function on arrays, to the precision of their dtype, with NumPy alone.

NumPy has no erf. This one is fitted, on first use, to Python's own `math.erf`: [0, 6]
is cut into 96 pieces, and on each a polynomial is fitted by least squares at 24
Chebyshev points of the piece, in u = (x - mid) / h. On a piece of width h the fit's
error is about (h/2)^(d+1) / (d+1)! times the size of erf's (d+1)-th derivative
(under 1e3 on [0, 6]): degree 8 gives below 1e-15 for float64 inputs, degree 5
below 1e-10 for float32 ones, which are evaluated in float32 (under their 6e-8
rounding). tests/sim/test_erf.py checks both against math.erf. Past 6,
erf(x) = 1 - erfc(x) with erfc(6) = 2e-17: 1 to float64 precision. Odd: erf(-x) =
-erf(x). Evaluating costs one table look-up and d multiply-adds per entry.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

TOP = 6.0
PIECES = 96
_H = TOP / PIECES


def _fit(degree: int, dtype: type) -> list[np.ndarray]:
    """One look-up table per power (highest first), PIECES entries each."""
    k = np.arange(24)
    nodes = np.cos((2 * k + 1) * math.pi / 48) / 2  # in u: [-1/2, 1/2]
    table = np.empty((PIECES, degree + 1))
    for piece in range(PIECES):
        mid = (piece + 0.5) * _H
        table[piece] = np.polyfit(nodes, [math.erf(mid + u * _H) for u in nodes], degree)
    return [np.ascontiguousarray(column, dtype=dtype) for column in table.T]


@lru_cache(maxsize=2)
def _table(dtype: np.dtype) -> list[np.ndarray]:
    """Fitted on first use (about 40 ms), so commands that never need erf do not pay."""
    return _fit(8, np.float64) if dtype == np.float64 else _fit(5, np.float32)


CHUNK = 1 << 15  # entries at a time: bounds the temporaries, and keeps them in cache


def erf_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """erf of `x` written into `out` (same shape; may be `x` itself), chunk by chunk,
    so that the temporaries stay small whatever the size."""
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    for i in range(0, flat_x.size, CHUNK):
        flat_out[i:i + CHUNK] = erf(flat_x[i:i + CHUNK])
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """erf of every entry, in x's dtype when it is float32, else float64 (NaN stays
    NaN, +-inf gives +-1)."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    columns = _table(x.dtype)
    ax = np.abs(x)
    nan = np.isnan(x)
    scaled = np.minimum(np.where(nan, 0, ax), TOP) * x.dtype.type(1 / _H)
    piece = np.minimum(scaled.astype(np.intp), PIECES - 1)
    u = scaled - piece.astype(x.dtype) - x.dtype.type(0.5)
    out = columns[0].take(piece)
    for column in columns[1:]:
        out *= u
        out += column.take(piece)
    out[ax >= TOP] = 1
    out[nan] = np.nan
    return np.copysign(out, x)


# float32 GELU: the normal CDF Phi itself, fitted on [-8, 8] (1024 cubic pieces of
# width h = 1/64, at 16 Chebyshev points each), so that z Phi(z) is one table pass per
# entry. A cubic's relative error on a piece is about (h/2)^4 / 4! times Phi's fourth
# derivative over Phi, which grows as z^4 in the negative tail: under 1e-6 at z = -8
# here; the float32 evaluation leaves the result within 2e-6 of z Phi(z), relative
# (tests/sim/test_erf.py). Computing Phi directly keeps that tail, where
# 1 + erf(z / sqrt 2) cancels to nothing in float32; past +-8, Phi is 1 or 0 to
# float32's precision (Phi(-8) = 6e-16).
CDF_EDGE, CDF_PIECES = 8.0, 1024
_CDF_H = 2 * CDF_EDGE / CDF_PIECES


@lru_cache(maxsize=1)
def _cdf_table() -> list[np.ndarray]:
    k = np.arange(16)
    nodes = np.cos((2 * k + 1) * math.pi / 32) / 2
    table = np.empty((CDF_PIECES, 4))
    for piece in range(CDF_PIECES):
        mid = -CDF_EDGE + (piece + 0.5) * _CDF_H
        table[piece] = np.polyfit(
            nodes, [0.5 * math.erfc(-(mid + u * _CDF_H) / math.sqrt(2)) for u in nodes], 3)
    return [np.ascontiguousarray(column, dtype=np.float32) for column in table.T]


def gelu_float32_into(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """z Phi(z) for float32 `z` into `out`, chunk by chunk in preallocated scratch
    (NaN stays NaN, +-inf gives +-inf times Phi(+-8))."""
    columns = _cdf_table()
    flat_z, flat_out = z.reshape(-1), out.reshape(-1)
    chunk = min(CHUNK, flat_z.size)
    u, index, term = np.empty(chunk, np.float32), np.empty(chunk, np.intp), \
        np.empty(chunk, np.float32)
    inv, edge, half = np.float32(1 / _CDF_H), np.float32(CDF_EDGE), np.float32(0.5)
    for i in range(0, flat_z.size, chunk):
        zc, oc = flat_z[i:i + chunk], flat_out[i:i + chunk]
        n = zc.size
        uc, ic, tc = u[:n], index[:n], term[:n]
        np.clip(zc, -edge, edge, out=uc)
        uc += edge
        uc *= inv
        with np.errstate(invalid="ignore"):  # NaN's piece is any: take clips it
            np.copyto(ic, uc, casting="unsafe")
        np.subtract(uc, ic, out=uc, casting="unsafe")
        uc -= half  # u in [-1/2, 1/2] on the piece
        columns[0].take(ic, out=oc, mode="clip")
        for column in columns[1:]:
            oc *= uc
            column.take(ic, out=tc, mode="clip")
            oc += tc
        oc *= zc
    return out
