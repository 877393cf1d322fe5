"""The core in its worker process gives the in-process numbers, stops when asked,
refuses as the core does, and comes back after the process dies."""

from __future__ import annotations

import os
import threading
import time

import pytest

from initscope.sim import Cancelled, Config, ConfigError, MemoryBudgetError, Simulator
from initscope.sim.remote import RemoteSimulator, WorkerProcessError

SMALL = Config(depth=4, width=(48,), inputs=24, batch=96)


@pytest.fixture
def remote():
    sim = RemoteSimulator()
    yield sim
    sim.close()


def same_numbers(a, b) -> None:
    for x, y in zip(a.layers, b.layers):
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            assert getattr(x, q).mean == getattr(y, q).mean
            assert getattr(x, q).std == getattr(y, q).std
            assert (getattr(x, q).sample == getattr(y, q).sample).all()
    assert a.warnings == b.warnings and a.phase == b.phase == "complete"


@pytest.mark.parametrize("arch", ["plain", "residual", "rnn"])
def test_the_worker_process_gives_the_in_process_numbers(remote, arch):
    cfg = SMALL.replace(arch=arch, time_steps=5)
    forwards = []
    result = remote.run(cfg, on_forward=forwards.append)
    same_numbers(result, Simulator().run(cfg))
    assert len(forwards) == 1 and forwards[0].phase == "forward"
    assert forwards[0].layers[0].activation.std == result.layers[0].activation.std


def test_refusals_are_the_cores_own(remote):
    with pytest.raises(ConfigError, match="depth must be between"):
        remote.run(SMALL.replace(depth=0))
    with pytest.raises(MemoryBudgetError, match="over the memory budget"):
        remote.run(SMALL.replace(width=(8192,), depth=200))


def test_a_run_stops_when_cancelled_and_the_next_one_runs(remote):
    remote.run(SMALL)  # started
    cancel = threading.Event()
    big = Config(depth=400, width=(600,), inputs=600, batch=600)
    threading.Timer(0.5, cancel.set).start()
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        remote.run(big, cancel=cancel)
    assert time.perf_counter() - start < 30  # stopped long before 400 layers and back
    same_numbers(remote.run(SMALL), Simulator().run(SMALL))


def test_a_dead_worker_process_is_reported_and_replaced(remote):
    remote.run(SMALL)
    pid = remote._process.pid
    os.kill(pid, 9)
    remote._process.wait(5)
    result = remote.run(SMALL)  # a new process takes over before the run
    assert remote._process.pid != pid and result.phase == "complete"
    blocker = threading.Event()

    def kill_soon() -> None:
        time.sleep(0.3)
        os.kill(remote._process.pid, 9)
        blocker.set()

    threading.Thread(target=kill_soon).start()
    with pytest.raises(WorkerProcessError, match="ended"):
        remote.run(Config(depth=400, width=(600,), inputs=600, batch=600))
    blocker.wait(5)
    assert remote.run(SMALL).phase == "complete"


def test_the_worker_process_runs_at_a_lower_priority(remote):
    remote.run(SMALL)
    tids = os.listdir(f"/proc/{remote._process.pid}/task")
    assert tids and all(os.getpriority(os.PRIO_PROCESS, int(t)) >= remote.nice for t in tids)


def test_a_cancel_while_the_worker_process_starts_does_not_end_it(remote):
    # SIGUSR1 ends a process that has not yet installed its handler: a run cancelled
    # at once (a new config a moment after the app starts) once killed the worker
    for _ in range(3):
        remote.close()
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(Cancelled):
            remote.run(SMALL, cancel=cancel)
        process = remote._process
        assert process is not None and process.poll() is None
        same_numbers(remote.run(SMALL), Simulator().run(SMALL))
        assert remote._process is process  # the same process ran the next config


def test_a_worker_that_does_not_stop_is_ended_and_replaced(remote):
    # A hung worker (here: stopped by SIGSTOP) once held every later run, and the
    # app's workers, forever: a cancel it does not answer ends it after a grace time
    import signal

    from initscope.sim.remote import STOP_GRACE_SECONDS

    remote.run(SMALL)
    stuck = remote._process
    os.kill(stuck.pid, signal.SIGSTOP)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        remote.run(SMALL.replace(seed=1), cancel=cancel)
    assert STOP_GRACE_SECONDS <= time.perf_counter() - start < STOP_GRACE_SECONDS + 10
    assert stuck.poll() is not None  # ended, not left behind
    same_numbers(remote.run(SMALL), Simulator().run(SMALL))


def test_the_stop_signal_never_waits_on_a_lock():
    # The handler runs on the thread it interrupts: if that thread held a lock the
    # handler needs (threading.Event's, inside clear()), it waited forever
    from initscope.sim.remote import _StopFlag

    flag = _StopFlag()
    for name in ("set", "clear", "is_set"):
        code = getattr(_StopFlag, name).__code__
        assert not {"_cond", "acquire", "Lock", "Condition"} & set(code.co_names), name
    flag.set()
    assert flag.is_set()
    flag.clear()
    assert not flag.is_set()
