"""How many threads the BLAS under NumPy uses: float32 sums over a batch are split
among them, so the last bits of a statistic (and a histogram count at a bin edge)
can differ between machines with different counts. JSON output records it."""

from __future__ import annotations

import ctypes
from functools import lru_cache

# the getters and setters of OpenBLAS as NumPy's wheels bundle it, and as
# distributions build it
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "openblas_get_num_threads")
_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "openblas_set_num_threads")


@lru_cache(maxsize=1)
def _openblas() -> tuple:
    """(getter, setter) of the OpenBLAS loaded in this process, or (None, None)."""
    import numpy  # noqa: F401 - loads the BLAS this looks for

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None, None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if getter is not None:
            return getter, setter
    return None, None


def blas_threads() -> int | None:
    """OpenBLAS's thread count in this process, or None where it cannot be read."""
    getter, _ = _openblas()
    return None if getter is None else int(getter())


def set_blas_threads(count: int) -> bool:
    """Ask OpenBLAS for `count` threads; False where it cannot be set."""
    _, setter = _openblas()
    if setter is None:
        return False
    setter(int(count))
    return True
