"""Key press to screen, and the longest event-loop stall, measured headless.

    python benchmarks/bench_ui.py

For each case the app runs under Textual's headless driver at 160x50. A key that
changes the gain is sent (as a terminal would send it, without waiting), and the
clock stops when every visible histogram, the table and the sparklines show the new
config's complete numbers. Meanwhile a probe task asks the event loop to wake it
every 5 ms; how late it wakes is the stall a person would feel as a frozen screen.
Each case runs twice: on a quiet machine, and beside a CPU-bound process (one busy
core of two, as on a shared lab machine).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402

import initscope.tui.scope.main as main_module  # noqa: E402
from initscope.sim import Config, Simulator  # noqa: E402
from initscope.sim.arch import with_arch  # noqa: E402
from initscope.sim.remote import shared_simulator  # noqa: E402
from initscope.tui.app import InitScopeApp  # noqa: E402
from tests.tui.helpers import main as main_screen  # noqa: E402
from tests.tui.helpers import pane  # noqa: E402

CASES = {
    "course demo (depth 10)": Config(scheme="xavier_normal"),
    "depth 50": Config(scheme="xavier_normal", depth=50),
    "conv default (10 x 3x3, 16 ch, 16 px, batch 32)": Config(arch="conv", batch=32),
    "resconv default (10 blocks, batch 32)": Config(arch="resconv", batch=32),
    "transformer default (8 blocks, d 256, T 64, batch 8)": with_arch(Config(), "transformer"),
}
PRESSES = 15
PROBE = 0.005


async def wait_until(condition, timeout: float = 60.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the app did not catch up")
        await asyncio.sleep(0.0005)


async def measure(cfg: Config, in_process: bool = False) -> dict:
    """`in_process`: the core in a thread of the app's process instead of its worker
    process, for a comparison in the same run."""
    if in_process:
        main_module.shared_simulator = Simulator
    app = InitScopeApp(cfg, timings=False)
    main_module.shared_simulator = shared_simulator
    latencies, core_times, lags = [], [], []
    async with app.run_test(size=(160, 50)):
        await wait_until(lambda: main_screen(app).settled())
        running = True

        async def probe() -> None:
            while running:
                t = time.perf_counter()
                await asyncio.sleep(PROBE)
                lags.append(time.perf_counter() - t - PROBE)

        task = asyncio.create_task(probe())
        for i in range(PRESSES):
            key = "g" if i % 2 == 0 else "G"
            before = pane(app).config
            start = time.perf_counter()
            event = events.Key(key, key)
            event.set_sender(app)
            app._driver.send_message(event)
            await wait_until(lambda before=before: pane(app).config != before
                             and main_screen(app).settled())
            latencies.append(time.perf_counter() - start)
            core_times.append(pane(app).shown.result.seconds)
            await asyncio.sleep(0.05)
        running = False
        await task
    return {
        "key to screen ms": 1000 * statistics.median(latencies),
        "core run ms": 1000 * statistics.median(core_times),
        "overhead ms": 1000 * statistics.median(a - b for a, b in zip(latencies, core_times)),
        "longest stall ms": 1000 * max(lags),
        "p99 stall ms": 1000 * statistics.quantiles(lags, n=100)[-1],
    }


def busy_process() -> subprocess.Popen:
    """A process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    print("| case | beside | core runs in | key to screen | core run | overhead "
          "| longest stall | p99 stall |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for busy in (False, True):
        for name, cfg in CASES.items():
            for in_process in (True, False):
                other = busy_process() if busy else None
                try:
                    r = asyncio.run(measure(cfg, in_process))
                finally:
                    if other is not None:
                        other.kill()
                        other.wait()
                where = "a thread" if in_process else "its process"
                print(f"| {name} | {'a busy process' if busy else 'nothing'} | {where} "
                      f"| {r['key to screen ms']:.0f} ms | {r['core run ms']:.0f} ms "
                      f"| {r['overhead ms']:.0f} ms | {r['longest stall ms']:.0f} ms "
                      f"| {r['p99 stall ms']:.0f} ms |")


if __name__ == "__main__":
    main()
