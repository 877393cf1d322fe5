"""Unit random draws, cached per (seed, purpose, layer, shape, dtype).

Every array here is a draw at unit scale: schemes only multiply by a factor. Each
(seed, purpose, layer, shape) has its own random stream, so deepening a network
keeps the earlier layers' numbers, and every scheme sees the same underlying draws
(common random numbers): U(-1, 1) weights are erf(z / sqrt 2) of the very normal
draws z the normal schemes use, and orthogonal weights are the QR of them.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from initscope.sim.schemes import NORMAL, ONES, ORTHOGONAL, TRUNCATED, UNIFORM

# purpose codes: part of each stream's seed, so they must never change
PURPOSES = {"input": 1, "weight": 2, "bias": 3, "upstream": 4, "redraw": 5}


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, float64, absolute error below 1.5e-7 (Abramowitz & Stegun 7.1.26)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


# entries mapped at a time: the float64 temporaries stay small (about 2 MiB on each
# prefetch thread), so whether the two threads overlap barely moves the peak
UNIFORM_CHUNK = 1 << 14


def normal_to_uniform(z: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """Map standard normal draws to U(-1, 1) draws, keeping their order; chunk by
    chunk, so the float64 temporaries stay small whatever the size."""
    out = np.empty(z.shape, dtype or np.float64)
    flat, dest = z.reshape(-1), out.reshape(-1)
    for i in range(0, flat.size, UNIFORM_CHUNK):
        dest[i:i + UNIFORM_CHUNK] = erf(flat[i:i + UNIFORM_CHUNK] / math.sqrt(2.0))
    return out


def _stream(seed: int, purpose: str, layer: int, shape: tuple[int, ...]) -> np.random.Generator:
    ss = np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose], layer, *shape))
    return np.random.Generator(np.random.PCG64(ss))


class DrawCache:
    """Holds the unit draws of recent runs; `keep_only` bounds what stays alive."""

    def __init__(self) -> None:
        self._items: dict[tuple, np.ndarray] = {}
        self._stds: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def keep_only(self, keys: set[tuple]) -> None:
        """Drop every cached draw whose key is not in `keys`."""
        with self._lock:
            for k in [k for k in self._items if k not in keys]:
                del self._items[k]
                self._stds.pop(k, None)

    def _get(self, key: tuple, make) -> np.ndarray:
        with self._lock:
            hit = self._items.get(key)
        if hit is None:
            hit = make()
            hit.setflags(write=False)
            with self._lock:
                self._items[key] = hit
        return hit

    def normal(self, seed: int, purpose: str, layer: int, shape: tuple[int, ...],
               dtype: np.dtype) -> np.ndarray:
        """Standard normal draws of one (seed, purpose, layer, shape)."""
        key = (seed, purpose, layer, shape, np.dtype(dtype).str, NORMAL)
        return self._get(key, lambda: _stream(seed, purpose, layer, shape).standard_normal(
            shape, dtype=np.dtype(dtype).type))

    def basis(self, kind: str, seed: int, purpose: str, layer: int, shape: tuple[int, ...],
              dtype: np.dtype) -> np.ndarray | None:
        """A unit draw of the given kind, derived from the normal draw of the same key.
        Returns None for ONES (handled without a matrix)."""
        if kind == NORMAL:
            return self.normal(seed, purpose, layer, shape, dtype)
        if kind == ONES:
            return None
        key = (seed, purpose, layer, shape, np.dtype(dtype).str, kind)
        z = self.normal(seed, purpose, layer, shape, dtype)
        makers = {
            UNIFORM: lambda: normal_to_uniform(z, np.dtype(dtype)),
            TRUNCATED: lambda: _truncate(z, seed, layer, shape),
            ORTHOGONAL: lambda: _orthogonalize(z),
        }
        return self._get(key, makers[kind])

    def measured_std(self, kind: str, seed: int, purpose: str, layer: int,
                     shape: tuple[int, ...], dtype: np.dtype) -> float:
        """The sample std of a cached draw (computed once per draw)."""
        key = self.key_of(kind, seed, purpose, layer, shape, dtype)
        if key not in self._stds:
            arr = self.basis(kind, seed, purpose, layer, shape, dtype)
            self._stds[key] = 0.0 if arr is None else unit_draw_std(arr)
        return self._stds[key]

    def prefetch(self, wanted: list[tuple]) -> None:
        """Make the draws named by (kind, seed, purpose, layer, shape, dtype) tuples,
        on two threads: NumPy's generators release the GIL while they fill."""
        missing = [w for w in wanted if self.key_of(*w) not in self._items and w[0] != ONES]
        if len(missing) < 2:
            return
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="initscope-draw") as pool:
            list(pool.map(lambda w: self.basis(*w), missing))

    @staticmethod
    def key_of(kind: str, seed: int, purpose: str, layer: int, shape: tuple[int, ...],
               dtype: np.dtype) -> tuple:
        return (seed, purpose, layer, shape, np.dtype(dtype).str, kind)


def unit_draw_std(arr: np.ndarray) -> float:
    """Std of a draw whose mean is near 0 and std near 1 (no cancellation to fear),
    from BLAS dot products accumulated in float64 chunk by chunk."""
    flat = arr.reshape(-1)
    ones = np.ones(min(flat.size, 1 << 16), flat.dtype)
    total = square = 0.0
    for i in range(0, flat.size, ones.size):
        c = flat[i:i + ones.size]
        total += float(np.dot(c, ones[:c.size]))
        square += float(np.dot(c, c))
    mean = total / flat.size
    return math.sqrt(max(square / flat.size - mean * mean, 0.0))


def _truncate(z: np.ndarray, seed: int, layer: int, shape: tuple[int, ...]) -> np.ndarray:
    """Normal cut at +-2: entries inside are kept as drawn, the rest drawn again from
    a stream of their own until they fall inside."""
    out = z.copy()
    bad = np.flatnonzero(np.abs(out) > 2.0)
    rng = _stream(seed, "redraw", layer, shape)
    flat = out.reshape(-1)
    while bad.size:
        fresh = rng.standard_normal(bad.size).astype(out.dtype)
        flat[bad] = fresh
        bad = bad[np.abs(fresh) > 2.0]
    return out


# One factorization at a time: each holds about four float64 copies of its matrix
# (the memory estimate counts one), and LAPACK already uses both cores.
_QR_LOCK = threading.Lock()


def _orthogonalize(z: np.ndarray) -> np.ndarray:
    """Q of the QR of z (of z.T when it is wide), with signs fixed by diag(R) so the
    result is uniformly distributed (Haar); float64 for the factorization."""
    with _QR_LOCK:
        return _haar_q(z)


def _haar_q(z: np.ndarray) -> np.ndarray:
    a = z.astype(np.float64)
    wide = a.shape[0] < a.shape[1]
    if wide:
        a = a.T
    q, r = np.linalg.qr(a)
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q *= d
    if wide:
        q = q.T
    return np.ascontiguousarray(q, dtype=z.dtype)
