"""How much memory a run may have, and the pieces every architecture's estimate uses.

Each architecture estimates its own run (arch/*.py); budget.py compares that
estimate with the budget before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initscope.sim.config import MAX_MEMORY_GIB, Config
from initscope.sim.draws import UNIFORM_CHUNK
from initscope.sim.schemes import NORMAL, ONES
from initscope.sim.stats import sample_stride

GIB = 1024 ** 3
DEFAULT_CAP = 2 * GIB
SAMPLE_CAP = 32768  # histogram sample per tensor: ample for <= 200 bins
SAMPLE_BUDGET = 64 * 1024 ** 2  # all histogram samples of one run together
SLACK = 0.06  # on top of an estimate's parts (Estimate.total)
OVERHEAD = 4 * 1024 ** 2  # and this much: caches a first run fills


class MemoryBudgetError(ValueError):
    """A config whose estimate exceeds the budget; the message names the config's
    own knobs (each front end adds how to raise the budget there)."""


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


def _read_int(path: str, field: str | None = None) -> int | None:
    """An integer from a /proc or /sys file (the line starting with `field`, in kB,
    if given); None where there is none (or it says "max")."""
    try:
        with open(path) as f:
            for line in f:
                if field is None:
                    return int(line) if line.strip().isdigit() else None
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def process_headroom() -> int | None:
    """What this process may still allocate under its own limits, where it has any:
    the address-space limit (ulimit -v, prlimit --as) less the address space in use,
    and the cgroup's memory.max (containers, systemd slices) less its current use."""
    import resource

    room = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _read_int("/proc/self/status", "VmSize:") or 0
        room.append(max(0, soft - used))
    limit = _read_int("/sys/fs/cgroup/memory.max")
    if limit is not None:
        room.append(max(0, limit - (_read_int("/sys/fs/cgroup/memory.current") or 0)))
    return min(room) if room else None


def budget_bytes(cfg: Config) -> int:
    """The configured limit, or the smallest of 2 GiB, half the available memory and
    half of what this process's own limits leave it (process_headroom)."""
    if cfg.memory_limit > 0:  # validated to at most MAX_MEMORY_GIB; min() for the unvalidated
        return int(min(cfg.memory_limit, MAX_MEMORY_GIB) * GIB)
    caps = [DEFAULT_CAP]
    for room in (available_bytes(), process_headroom()):
        if room is not None:
            caps.append(room // 2)
    return min(caps)


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
        """The peak, with SLACK and OVERHEAD on top: the parts undercount what the
        allocator and NumPy's temporaries add by up to 3.5% (measured over fuzzed
        configs), a first run fills caches (the erf fit, quadrature nodes, theory
        tables) of about a MiB, and the budget needs an upper bound, not a close guess."""
        parts = self.draws + max(self.transient, self.activations + self.scratch + self.samples)
        return int(parts * (1 + SLACK)) + OVERHEAD


def basis_transient(basis: str, largest: int, item: int) -> int:
    """Bytes of temporaries while a basis is derived from its normal draw of `largest`
    entries: the float64 QR of the largest layer (one at a time), bounded chunks of
    the uniform mapping (on both prefetch threads), or the truncation's mask."""
    if basis == "orthogonal":  # float64 copies: the input, the factors, LAPACK's work
        return largest * (3 * 8 + 8 - item)
    if basis == "uniform":  # up to 14 float64 chunk-sized temporaries in each thread
        return 2 * 14 * min(largest, UNIFORM_CHUNK) * 8
    if basis == "truncated_normal":
        return largest * item + largest // 8 * 8
    return 0


def copies(spec) -> int:
    """Matrices a residual or recurrent weight holds: the weights themselves, the unit
    draw they scale, and the normal draw a derived basis comes from."""
    if spec.basis == ONES or spec.scale == 0:
        return 1
    return 2 if spec.basis == NORMAL else 3


def samples_bytes(cfg: Config, shapes: list[tuple[int, int]]) -> int:
    """Bytes of the histogram samples: per row, three (batch, width) tensors and one
    (fan_in, fan_out) weight gradient, each cut to its strided sample."""
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
