"""The memory budget under the process's own limits (ulimit -v, cgroups), and a
MemoryError past them: one line, exit 2, never a traceback."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from initscope.sim import Config, memory

BIG = ["--depth", "8", "--width", "4096", "--inputs", "4096", "--batch", "4096"]  # ~1.4 GiB


def _limited(args: list[str], address_space: int = 1_000_000_000):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, "-m", "initscope", *args], capture_output=True,
                          text=True, timeout=120, preexec_fn=limit)


def test_the_default_budget_takes_in_an_address_space_limit():
    done = _limited(["report", *BIG])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    budget = done.stderr.split("over the memory budget of ")[1].split(":")[0]
    assert budget.endswith("MiB"), budget  # below 1 GiB: half what the limit leaves


@pytest.mark.parametrize("command", ["report", "train"])
def test_running_out_of_memory_anyway_is_one_line(command):
    done = _limited([command, *BIG, "--memory-limit", "8", "--steps", "1"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("initscope: this config ran out of memory: lower the "
                                   "width, depth or batch (or the --memory-limit)")


def test_the_budget_is_the_smallest_of_its_caps(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * memory.GIB)
    monkeypatch.setattr(memory, "process_headroom", lambda: None)
    assert memory.budget_bytes(Config()) == memory.DEFAULT_CAP
    monkeypatch.setattr(memory, "process_headroom", lambda: memory.GIB)
    assert memory.budget_bytes(Config()) == memory.GIB // 2
    assert memory.budget_bytes(Config(memory_limit=3.0)) == 3 * memory.GIB  # as asked
