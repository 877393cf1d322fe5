"""How much memory a run needs, and how much it may have, decided before allocating."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.schemes import NORMAL, ONES, SCHEMES

GIB = 1024 ** 3
DEFAULT_CAP = 2 * GIB
SAMPLE_CAP = 32768  # histogram sample per tensor: ample for <= 200 bins
SAMPLE_BUDGET = 64 * 1024 ** 2  # all histogram samples of one run together


class MemoryBudgetError(ValueError):
    """A config whose estimate exceeds the budget; the message names the knobs."""


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where there is no such file."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def budget_bytes(cfg: Config) -> int:
    """The configured limit, or the smaller of 2 GiB and half the available memory."""
    if cfg.memory_limit > 0:
        return int(cfg.memory_limit * GIB)
    avail = available_bytes()
    return DEFAULT_CAP if avail is None else min(DEFAULT_CAP, avail // 2)


def sample_cap(cfg: Config) -> int:
    """Histogram sample per tensor: at most SAMPLE_CAP, and all of them within budget."""
    per = SAMPLE_BUDGET // (4 * cfg.row_count() * 8)
    return max(1024, min(SAMPLE_CAP, per))


@dataclass(frozen=True)
class Estimate:
    """Bytes a run holds at its peak, by purpose."""

    draws: int
    activations: int
    scratch: int
    samples: int

    @property
    def total(self) -> int:
        return self.draws + self.activations + self.scratch + self.samples


def _basis_transient(basis: str, largest: int) -> int:
    """Bytes of float64 temporaries while a basis is derived from its normal draw:
    the QR of the largest layer, or a bounded chunk of the uniform mapping."""
    if basis == "orthogonal":
        return 3 * largest * 8
    if basis == "uniform":
        return 10 * min(largest, 1 << 16) * 8
    if basis == "truncated_normal":
        return largest * 8
    return 0


def _estimate_arch(cfg: Config) -> Estimate:
    """Residual and recurrent runs keep every row's tensors and materialized weights."""
    item = np.dtype(cfg.dtype).itemsize
    w, rows = cfg.width[0], cfg.row_count()
    samples = _samples(cfg, [(w, w)] * rows)
    basis = SCHEMES[cfg.scheme].weight_spec(cfg, w, w).basis
    copies = 1 if basis == ONES else 2  # the unit draw, and the weights made from it
    if cfg.arch == "residual":
        weights = 2 * cfg.depth * w * w
        draws = (copies * weights + 2 * cfg.batch * w + 4 * cfg.depth * w) * item
        kept = 3 * rows * cfg.batch * w * item
    else:
        weights = w * w + cfg.inputs * w
        steps_with_input = rows if cfg.rnn_input == "all" else 1
        draws = (copies * weights + cfg.batch * cfg.inputs * steps_with_input + cfg.batch * w
                 + 2 * w) * item
        kept = 2 * (rows + 1) * cfg.batch * w * item
    scratch = (4 * cfg.batch * max(w, cfg.inputs) + 2 * w * w) * item + 2 * 65536 * 8 \
        + _basis_transient(basis, max(w, cfg.inputs) * w)
    return Estimate(draws, kept, scratch, samples)


def estimate(cfg: Config) -> Estimate:
    """Peak bytes of one run of `cfg`, counting cached draws, kept activations,
    per-run scratch and histogram samples."""
    if cfg.arch != "plain":
        return _estimate_arch(cfg)
    item = np.dtype(cfg.dtype).itemsize
    widths = cfg.widths()
    fans = cfg.fans()
    scheme = SCHEMES[cfg.scheme]
    basis = scheme.weight_spec(cfg, *fans[0]).basis  # one kind for every layer
    weights = sum(fi * fo for fi, fo in fans)
    copies = 0 if basis == ONES else 1 if basis == NORMAL else 2
    extra_qr = _basis_transient(basis, max(fi * fo for fi, fo in fans))
    if scheme.data_init:  # the tuning starts only once its basis is made
        extra_qr = 0
    draws = (weights * copies + cfg.batch * (cfg.inputs + widths[-1])
             + 2 * sum(widths)) * item + extra_qr
    if cfg.input_dist == "uniform":
        draws += cfg.batch * cfg.inputs * item
    act = ACTIVATIONS[cfg.activation]
    per_layer = 2 if act.derivative_needs_input else 1
    if scheme.data_init:  # tuned copies of the weights; the tuning's passes come first
        draws += weights * item
        per_layer += 1
    activations = per_layer * cfg.batch * sum(widths) * item
    widest = max(widths + [cfg.inputs])
    scratch = (4 * cfg.batch * widest + widest * widest) * item + 2 * 65536 * 8
    return Estimate(draws, activations, scratch, _samples(cfg, fans))


def _samples(cfg: Config, shapes: list[tuple[int, int]]) -> int:
    """Bytes of the histogram samples: per row, three (batch, width) tensors and one
    (fan_in, fan_out) weight gradient, each cut to its strided sample."""
    from initscope.sim.stats import sample_stride

    cap = sample_cap(cfg)

    def kept(rows: int, cols: int) -> int:
        return -(-rows * cols // sample_stride(rows * cols, cols, cap))

    total = sum(3 * kept(cfg.batch, fo) + kept(fi, fo) for fi, fo in shapes)
    return total * np.dtype(cfg.dtype).itemsize


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_budget(cfg: Config) -> Estimate:
    """The estimate, or MemoryBudgetError when it is over the budget."""
    est = estimate(cfg)
    limit = budget_bytes(cfg)
    if est.total > limit:
        raise MemoryBudgetError(
            f"config needs {format_bytes(est.total)} (limit {format_bytes(limit)}): "
            "lower the width, depth or batch, or raise --memory-limit"
        )
    return est
