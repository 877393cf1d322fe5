"""Peak traced bytes of one call, for the memory estimates' tests."""

from __future__ import annotations

import tracemalloc


def peak_bytes(run) -> int:
    """Peak Python and NumPy bytes allocated while `run()` ran (also when it raised)."""
    tracemalloc.start()
    try:
        run()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak
