"""Time from `q` to the process being gone, during the largest runs allowed.

    python benchmarks/bench_quit.py             # 5 quits per case
    python benchmarks/bench_quit.py --repeats 10

Each repeat starts `python -m initscope` in a pseudo-terminal (120x40), as a person
would, with a config the default memory budget only just admits. Once the first
screen is drawn and the run is well into a layer, it types `q`, and the clock stops
when the process has exited: the event loop, the workers, the terminal restored and
the interpreter shut down.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from initscope.sim import Config  # noqa: E402
from initscope.sim.budget import estimate  # noqa: E402
from initscope.sim.memory import budget_bytes, format_bytes  # noqa: E402
from tests.hardening.terminal import seconds_to_quit  # noqa: E402

CASES = {  # each just inside the default 2 GiB budget
    "one 8192-wide layer, batch 6144": ["--depth", "1", "--width", "8192",
                                        "--inputs", "8192", "--batch", "6144"],
    "depth 8, width 4096, batch 4096": ["--depth", "8", "--width", "4096",
                                        "--inputs", "4096", "--batch", "4096"],
    "depth 240, width 1000, batch 1000": ["--depth", "240", "--width", "1000",
                                          "--inputs", "1000", "--batch", "1000"],
}
WAIT_IN_RUN = 1.5  # seconds after the first screen: mid-layer for every case


def config_of(args: list[str]) -> Config:
    pairs = dict(zip(args[::2], args[1::2]))
    return Config(depth=int(pairs["--depth"]), width=(int(pairs["--width"]),),
                  inputs=int(pairs["--inputs"]), batch=int(pairs["--batch"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    print("| run in progress when `q` is pressed | memory estimate | quit: median | max |")
    print("|---|---|---|---|")
    for name, args in CASES.items():
        cfg = config_of(args)
        need = estimate(cfg).total
        assert need <= budget_bytes(cfg), f"{name} is over the default budget"
        times = [seconds_to_quit(args, WAIT_IN_RUN) for _ in range(opts.repeats)]
        print(f"| {name} | {format_bytes(need)} | {statistics.median(times):.3f} s | "
              f"{max(times):.3f} s |", flush=True)


if __name__ == "__main__":
    main()
