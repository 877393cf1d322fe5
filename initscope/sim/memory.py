"""How much memory a run needs, and how much it may have, decided before allocating."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config, validate
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
    """Bytes a run holds, by purpose. The draws stay for the whole run; the transient
    temporaries of deriving a basis are gone before the passes begin, so the peak is
    the larger of the two phases on top of the draws."""

    draws: int
    activations: int
    scratch: int
    samples: int
    transient: int

    @property
    def total(self) -> int:
        return self.draws + max(self.transient, self.activations + self.scratch + self.samples)


def _basis_transient(basis: str, largest: int, item: int) -> int:
    """Bytes of temporaries while a basis is derived from its normal draw of `largest`
    entries: the float64 QR of the largest layer (one at a time), bounded chunks of
    the uniform mapping (on both prefetch threads), or the truncation's mask."""
    if basis == "orthogonal":  # float64 copies: the input, the factors, LAPACK's work
        return largest * (3 * 8 + 8 - item)
    if basis == "uniform":
        return 2 * 10 * min(largest, 1 << 16) * 8
    if basis == "truncated_normal":
        return largest * item + largest // 8 * 8
    return 0


def _copies(spec) -> int:
    """Matrices a residual or recurrent weight holds: the weights themselves, the unit
    draw they scale, and the normal draw a derived basis comes from."""
    if spec.basis == ONES or spec.scale == 0:
        return 1
    return 2 if spec.basis == NORMAL else 3


def _estimate_arch(cfg: Config) -> Estimate:
    """Residual and recurrent runs keep every row's tensors and materialized weights."""
    item = np.dtype(cfg.dtype).itemsize
    w, rows = cfg.width[0], cfg.row_count()
    samples = _samples(cfg, [(w, w)] * rows)
    spec = SCHEMES[cfg.scheme].weight_spec(cfg, w, w)
    if cfg.arch == "residual":
        # the branch's last layer starts at zero under zero_last and fixup
        last = 1 if cfg.branch in ("zero_last", "fixup") else _copies(spec)
        first = 2 if cfg.branch == "fixup" else _copies(spec)
        draws = ((first + last) * cfg.depth * w * w + 2 * cfg.batch * w
                 + 4 * cfg.depth * w) * item
        kept = (3 * rows + 1) * cfg.batch * w * item  # the stream, and each block's z, phi(z)
        widest, temporaries = w, 4
    else:
        steps_with_input = rows if cfg.rnn_input == "all" else 1
        draws = (_copies(spec) * (w * w + cfg.inputs * w)
                 + cfg.batch * cfg.inputs * steps_with_input + cfg.batch * w + 2 * w) * item
        kept = (2 * rows + 1) * cfg.batch * w * item  # h_0..h_T and z_1..z_T
        widest, temporaries = max(w, cfg.inputs), 3  # U is (inputs, width)
    scratch = (temporaries * cfg.batch * w + w * w) * item + 2 * 65536 * 8
    return Estimate(draws, kept, scratch, samples, _basis_transient(spec.basis, widest * w, item))


def estimate(cfg: Config) -> Estimate:
    """Peak bytes of one run of `cfg`, counting cached draws, kept activations,
    per-run scratch, histogram samples and the temporaries of making the weights."""
    if cfg.arch != "plain":
        return _estimate_arch(cfg)
    item = np.dtype(cfg.dtype).itemsize
    widths = cfg.widths()
    fans = cfg.fans()
    scheme = SCHEMES[cfg.scheme]
    basis = scheme.weight_spec(cfg, *fans[0]).basis  # one kind for every layer
    weights = sum(fi * fo for fi, fo in fans)
    copies = 0 if basis == ONES else 1 if basis == NORMAL else 2
    largest = max(fi * fo for fi, fo in fans)
    transient = _basis_transient(basis, largest, item)
    # a data-dependent init keeps only its tuned copy of the weights for the run
    kept_copies = 1 if scheme.data_init else copies
    draws = (weights * kept_copies + cfg.batch * (cfg.inputs + widths[-1])
             + 2 * sum(widths)) * item
    if cfg.input_dist == "uniform":
        draws += cfg.batch * cfg.inputs * item
    act = ACTIVATIONS[cfg.activation]
    per_layer = 2 if act.derivative_needs_input else 1
    widest = max(widths + [cfg.inputs])
    if scheme.data_init:
        # The tuning comes first: it holds the draws and their basis besides the tuned
        # copy, with a forward pass's tensors or the QR's temporaries. A pass keeps
        # every layer's z and phi(z); the widest layer adds temporaries, some in
        # float64 (the stds); data_dependent squares weights in float64.
        passes = 2 * cfg.batch * sum(widths) * item + cfg.batch * widest * (2 * item + 16)
        if cfg.scheme == "data_dependent":
            passes += 2 * largest * 8
        transient = weights * copies * item + max(transient, passes)
    activations = per_layer * cfg.batch * sum(widths) * item
    scratch = (4 * cfg.batch * widest + widest * widest) * item + 2 * 65536 * 8
    return Estimate(draws, activations, scratch, _samples(cfg, fans), transient)


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


def runnable(cfg: Config) -> Config:
    """`cfg`, once it is valid and fits the budget; ConfigError or MemoryBudgetError
    (a one-line message) otherwise."""
    check_budget(validate(cfg))
    return cfg
