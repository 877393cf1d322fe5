"""How many threads the BLAS under NumPy uses: float32 sums over a batch are split
among them, so the last bits of a statistic (and a histogram count at a bin edge)
can differ between machines with different counts. JSON output records it."""

from __future__ import annotations

import ctypes
from functools import lru_cache

# the getters of OpenBLAS as NumPy's wheels bundle it, and as distributions build it
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "openblas_get_num_threads")


@lru_cache(maxsize=1)
def blas_threads() -> int | None:
    """OpenBLAS's thread count in this process, or None where it cannot be read."""
    import numpy  # noqa: F401 - loads the BLAS this looks for

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _GETTERS:
            getter = getattr(lib, name, None)
            if getter is not None:
                return int(getter())
    return None
