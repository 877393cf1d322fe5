"""A width sweep's cost against the sum of its runs' matmul floors (initscope.bench).

    python benchmarks/bench_sweep.py

The default sweep of `initscope sweep` (widths 64-1024, 3 steps, 3 seeds, depth 4,
batch 256, 64 inputs, Adam), and a wider one, each timed round-robin with its floor.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from initscope.bench import run_sweep_bench  # noqa: E402
from initscope.cli import SWEEP_DEFAULTS  # noqa: E402
from initscope.sim import Config  # noqa: E402
from initscope.sim.sweep import SweepSpec  # noqa: E402

CASES = {
    "default: widths 64-1024, 3 steps, 3 seeds, depth 4, batch 256, muP": (
        Config(**SWEEP_DEFAULTS), SweepSpec(param="mup")),
    "widths 128-2048, 3 steps, 3 seeds, depth 4, batch 256, sp": (
        Config(**SWEEP_DEFAULTS), SweepSpec(widths=(128, 256, 512, 1024, 2048))),
}


def main() -> None:
    print("| sweep | floor | whole sweep | x floor |")
    print("|---|---:|---:|---:|")
    for name, (cfg, spec) in CASES.items():
        rows = {r.name: r for r in run_sweep_bench(cfg, spec)}
        print(f"| {name} | {rows['floor'].seconds:.2f} s | {rows['sweep'].seconds:.2f} s "
              f"| {rows['sweep'].ratio:.2f}x |")


if __name__ == "__main__":
    main()
