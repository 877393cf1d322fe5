"""Per-tensor summaries: exact mean, std, min and max, and a histogram sample.

Mean and std are exact over the whole tensor: the tensor is read in chunks small
enough to stay in cache, each chunk centred on the mean before it is squared (no
cancellation when the mean dwarfs the spread), with float64 totals across chunks.
The histogram is binned later from a bounded strided sample, so that all layers can
share one x-range that is only known once every layer has run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CHUNK = 1 << 16
DEFAULT_BINS = 30
MAX_BINS = 200
RANGE_MODES = ("shared", "layer")  # one x-range for every layer, or each its own
# above this magnitude float32 squares overflow: such tensors take a slower, scaled path
_SAFE_ABS = 1e17


@dataclass
class Summary:
    """Statistics of one tensor. Non-finite tensors are summarized over their finite
    entries; `finite_fraction` says how many there were."""

    mean: float
    std: float
    min: float
    max: float
    size: int
    finite_fraction: float = 1.0
    sample: np.ndarray = field(default=None, repr=False)  # bounded, for histograms

    @property
    def finite(self) -> bool:
        return self.finite_fraction == 1.0

    def to_dict(self, histogram: Histogram | None = None) -> dict:
        out = {
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "min": _json_float(self.min),
            "max": _json_float(self.max),
            "finite_fraction": self.finite_fraction,
        }
        if histogram is not None:
            out["histogram"] = {"counts": list(histogram.counts),
                                "edges": [float(e) for e in histogram.edges]}
        return out


def _json_float(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def std_of(x: np.ndarray) -> float:
    """Exact std of a finite tensor from BLAS dot products, centred chunk by chunk on
    the first chunk's mean (much faster than np.std on float32)."""
    flat = x.reshape(-1)
    if flat.size == 0:
        return 0.0
    ones = np.ones(min(flat.size, CHUNK), flat.dtype)
    head = flat[:CHUNK]
    center = flat.dtype.type(float(np.dot(head, ones[:head.size])) / head.size)
    buf = np.empty(ones.size, flat.dtype)
    shift = square = 0.0
    for i in range(0, flat.size, CHUNK):
        c = flat[i:i + CHUNK]
        b = buf[:c.size]
        np.subtract(c, center, out=b)
        shift += float(np.dot(b, ones[:c.size]))
        square += float(np.dot(b, b))
    n = flat.size
    return math.sqrt(max(square / n - (shift / n) ** 2, 0.0))


def sample_stride(n: int, row: int, cap: int) -> int:
    """A stride that keeps at most `cap` of `n` entries and is coprime with the row
    length, so every column (unit) is visited."""
    stride = max(1, -(-n // cap))
    while stride > 1 and math.gcd(stride, row) != 1:
        stride += 1
    return stride


class Summarizer:
    """Summarizes tensors with preallocated scratch; one per run, not thread-shared.

    Sums are BLAS dot products with a vector of ones (far faster than NumPy's
    pairwise sum); the chunks are centred on a first estimate of the mean and the
    residual shift is added back, so the mean and variance come out exact.
    """

    def __init__(self, dtype: np.dtype, sample_cap: int) -> None:
        self.dtype = np.dtype(dtype)
        self.sample_cap = sample_cap
        self._scratch = np.empty(CHUNK, self.dtype)
        self._ones = np.ones(CHUNK, self.dtype)
        self._mask = np.empty(CHUNK, bool)

    def __call__(self, x: np.ndarray, band: tuple[float, float] | None = None
                 ) -> tuple[Summary, int]:
        """Summary of `x`, and how many entries lie outside the open `band` (0 if none)."""
        flat = x.reshape(-1)
        n = flat.size
        lo = float(flat.min())
        hi = float(flat.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return self._nonfinite(x, band)
        unit = 1.0
        scratch, ones = self._scratch, self._ones
        if max(-lo, hi) > _SAFE_ABS:
            # squares would overflow: work in float64 on values scaled into [-1, 1]
            unit = max(-lo, hi)
            flat = flat.astype(np.float64) / unit
            scratch, ones = np.empty(CHUNK), np.ones(CHUNK)
        head = flat[:CHUNK]
        center = flat.dtype.type(float(np.dot(head, ones[:head.size])) / head.size)
        shift = 0.0
        sq = 0.0
        outside = 0
        mask = self._mask
        for i in range(0, n, CHUNK):
            c = flat[i:i + CHUNK]
            k = c.size
            buf = scratch[:k]
            np.subtract(c, center, out=buf)
            shift += float(np.dot(buf, ones[:k]))
            sq += float(np.dot(buf, buf))
            if band is not None:
                outside += int(np.count_nonzero(np.less_equal(c, band[0], out=mask[:k])))
                outside += int(np.count_nonzero(np.greater_equal(c, band[1], out=mask[:k])))
        mean = float(center) + shift / n
        var = max(sq / n - (shift / n) ** 2, 0.0)
        s = Summary(mean * unit, math.sqrt(var) * unit, lo, hi, n, sample=self._sample(x))
        return s, outside

    def _sample(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(-1)
        row = x.shape[-1] if x.ndim else 1
        stride = sample_stride(flat.size, row, self.sample_cap)
        return flat[::stride].copy()

    def _nonfinite(self, x: np.ndarray, band) -> tuple[Summary, int]:
        flat = x.reshape(-1)
        ok = flat[np.isfinite(flat)].astype(np.float64)
        frac = ok.size / flat.size
        if ok.size == 0:
            nan = float("nan")
            return Summary(nan, nan, nan, nan, flat.size, 0.0, sample=ok), 0
        outside = 0
        if band is not None:
            outside = int(np.count_nonzero((ok <= band[0]) | (ok >= band[1])))
        s = Summary(float(ok.mean()), float(ok.std()), float(ok.min()), float(ok.max()),
                    flat.size, frac, sample=ok[:: max(1, ok.size // self.sample_cap)].copy())
        return s, outside


@dataclass(frozen=True)
class Histogram:
    """Counts of a tensor's sample in equal bins; `edges` has one more entry."""

    counts: tuple[int, ...]
    edges: tuple[float, ...]


def histogram(sample: np.ndarray, lo: float, hi: float, bins: int) -> Histogram:
    """Counts of `sample` in `bins` equal bins over [lo, hi]; an empty (or float-thin)
    range is widened around its value so constant tensors still get a bar."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Histogram((0,) * bins, ())
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):  # one value: give it a bar of its own
        pad = max(0.5, 1e-3 * max(abs(lo), abs(hi)))
        lo, hi = lo - pad, hi + pad
    # halved so that hi - lo cannot overflow even for ranges near the float maximum
    half_lo, half_hi = lo / 2, hi / 2
    edges = 2 * np.linspace(half_lo, half_hi, bins + 1)
    pos = (np.asarray(sample, dtype=np.float64) / 2 - half_lo) * (bins / (half_hi - half_lo))
    idx = pos.astype(np.int64)
    np.clip(idx, 0, bins - 1, out=idx)
    counts = np.bincount(idx, minlength=bins)
    return Histogram(tuple(counts.tolist()), tuple(edges.tolist()))


def histograms(summaries: list[Summary | None], bins: int = DEFAULT_BINS,
               shared: bool = True) -> list[Histogram | None]:
    """Bin every summary's kept sample, over one x-range for all (shared) or each its
    own. A display setting: re-binning needs no new run."""
    present = [s for s in summaries if s is not None and s.sample is not None]
    finite_lo = [s.min for s in present if math.isfinite(s.min)]
    finite_hi = [s.max for s in present if math.isfinite(s.max)]
    glo = min(finite_lo) if finite_lo else float("nan")
    ghi = max(finite_hi) if finite_hi else float("nan")
    out: list[Histogram | None] = []
    for s in summaries:
        if s is None or s.sample is None:
            out.append(None)
            continue
        lo, hi = (glo, ghi) if shared else (s.min, s.max)
        out.append(histogram(s.sample, lo, hi, bins))
    return out
