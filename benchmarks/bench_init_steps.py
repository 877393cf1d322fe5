"""Stepping through a data-dependent init (`i` / `I`) against one recompute.

    python benchmarks/bench_init_steps.py

For lsuv and data_dependent on the course shapes (tanh, 10 x 500, batch 1000), times
round-robin in one process: the matmul floor; one recompute of the same network
with a fixed scheme (what any other key costs); one step to another iteration once
the procedure has run (what `i` costs); and the first visit of a new config (the
whole procedure, traced, then the run).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from initscope.bench import MatmulFloor, _time_round_robin  # noqa: E402
from initscope.sim import Config, Simulator  # noqa: E402

FIXED = {"lsuv": "orthogonal", "data_dependent": "lecun_normal"}


def rows(scheme: str, repeats: int = 5) -> str:
    cfg = Config(scheme=scheme, activation="tanh")
    floor, sim, fresh = MatmulFloor(cfg), Simulator(), Simulator()
    sim.run(cfg)  # the procedure runs once, to its end
    total = sim.run(cfg).init_iterations
    state = {"k": 0, "seed": 100}

    def step() -> None:  # i: the next iteration, as the app asks for it
        state["k"] = (state["k"] + 1) % (total + 1)
        sim.run(cfg.replace(init_steps=state["k"]))

    def recompute() -> None:
        sim.run(cfg.replace(scheme=FIXED[scheme], gain=1 + 1e-3 * (state["k"] % 2)))

    def first_visit() -> None:  # a config whose procedure has not run yet
        state["seed"] += 1
        fresh.run(cfg.replace(seed=state["seed"]))

    med = _time_round_robin({"floor": floor, "recompute": recompute, "step": step,
                             "first": first_visit}, repeats)
    return (f"| {scheme} | {1000 * med['floor']:.0f} | {1000 * med['recompute']:.0f} ms "
            f"| {1000 * med['step']:.0f} ms = {med['step'] / med['recompute']:.2f}x "
            f"| {1000 * med['first']:.0f} ms = {med['first'] / med['recompute']:.2f}x |")


def main() -> None:
    print("| scheme | floor ms | one recompute | one `i` step | first visit |")
    print("|---|---:|---:|---:|---:|")
    for scheme in FIXED:
        print(rows(scheme))
    print("\nratios are to one recompute of the same shapes with a fixed scheme, in the "
          "same run")


if __name__ == "__main__":
    main()
