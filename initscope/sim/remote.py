"""The Simulator in a persistent worker process, for the app.

Measured on 2 cores with a CPU-bound process beside the app, the screen stalled for
up to 75 ms while the core ran: the core's BLAS threads, the other process and the
app's event loop were three claims on two cores, and the event loop lost. Fewer
BLAS threads helped (and made the core faster under load), which marks CPU
starvation as the cause rather than the GIL. Here the core runs in a process of its
own whose threads all run at a lower priority (nice), so the event loop wins a core
whenever it needs one, and none of the core's Python work holds the app's GIL.

The process keeps the draws and buffers between runs like an in-process Simulator;
a run sends the config and receives small results (statistics and bounded
histogram samples). Cancelling sets an event the core checks between layers. The
process watches its parent and ends within a moment of it, however the parent
ended, so quitting never waits for a run. Training and the Jacobian spectrum run in
the app's process on `local`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from initscope.sim.budget import check_budget, sizes_to_lower
from initscope.sim.config import Config
from initscope.sim.memory import MemoryBudgetError
from initscope.sim.network import Simulator
from initscope.sim.result import Cancelled, RunResult
from initscope.sim.validation import validate

WORKER_NICE = 10  # lower priority for every thread of the worker process (bench_ui.py)
POLL_SECONDS = 0.02
# A run asked to stop ends at its next layer. One that has not answered after this long
# is stuck in one huge layer, or hung: it is ended, and the next run starts a new process.
STOP_GRACE_SECONDS = 2.0


class WorkerProcessError(RuntimeError):
    """The worker process ended or failed; the next run starts a new one."""


def _lower_priority(nice: int) -> None:
    """Raise the nice value of every thread of this process (BLAS threads were made at
    import, before this runs, and Linux keeps a nice value per thread)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass


def _die_with_parent(every: float = 0.2) -> None:
    """End this process once its parent is gone (it is then adopted by another), even
    in the middle of a run: the pipe's end is only noticed between runs."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="initscope-parent-watch", daemon=True).start()


class _StopFlag:
    """What the core checks between layers, set by a signal handler. Not a
    threading.Event: its set() takes a lock that clear() may be holding when the
    signal arrives, and the handler runs on that same thread, so it would wait forever."""

    def __init__(self) -> None:
        self._stop = False

    def is_set(self) -> bool:
        return self._stop

    def set(self) -> None:
        self._stop = True

    def clear(self) -> None:
        self._stop = False


def serve(requests: Connection, replies: Connection, nice: int) -> None:
    """The worker process: run configs as they come, until the parent goes."""
    _die_with_parent()
    _lower_priority(nice)
    cancel = _StopFlag()
    # the parent asks a run to stop with SIGUSR1; the core sees it between layers
    signal.signal(signal.SIGUSR1, lambda signum, frame: cancel.set())
    # SIGUSR1's default is to end the process: the parent signals only after this
    replies.send(("ready", 0, None))
    sim = Simulator()
    while True:
        try:
            run_id, cfg, want_forward = requests.recv()
        except (EOFError, OSError):
            return
        cancel.clear()

        def forward(result: RunResult, run_id: int = run_id) -> None:
            replies.send(("forward", run_id, result))

        try:
            result = sim.run(cfg, cancel=cancel, on_forward=forward if want_forward else None)
            reply = ("done", run_id, _without_forward(result) if want_forward else result)
        except Cancelled:
            reply = ("cancelled", run_id, None)
        except MemoryError:
            reply = ("refused", run_id, MemoryBudgetError(
                f"this config ran out of memory: lower the {sizes_to_lower(cfg)}"))
        except ValueError as e:  # ConfigError and MemoryBudgetError: one-line refusals
            reply = ("refused", run_id, e)
        except Exception as e:  # a bug must not end the worker: report it
            reply = ("failed", run_id, f"{type(e).__name__}: {e}")
        try:
            replies.send(reply)
        except (BrokenPipeError, OSError):
            return


FORWARD_QUANTITIES = ("preactivation", "activation", "channel_mean")


def _without_forward(result: RunResult) -> RunResult:
    """The complete result minus what the forward message already carried (the forward
    summaries and their samples): half the bytes to send at the end of a run."""
    light = result.snapshot()
    for lay in light.layers:
        for q in FORWARD_QUANTITIES:
            setattr(lay, q, None)
    return light


def _with_forward(result: RunResult, forward: RunResult) -> RunResult:
    for lay, early in zip(result.layers, forward.layers):
        for q in FORWARD_QUANTITIES:
            setattr(lay, q, getattr(early, q))
    return result


class RemoteSimulator:
    """`run` as Simulator.run, in the worker process; `run_weights` and `draws` local."""

    def __init__(self, nice: int = WORKER_NICE) -> None:
        self.local = Simulator()
        self.draws = self.local.draws
        self.nice = nice
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._run_id = 0
        self._last_config: Config | None = None
        self._ready = False  # the worker handles SIGUSR1 (before, it would end it)

    def _start(self) -> None:
        """A fresh interpreter (no fork of a threaded app, no re-run of the caller's
        main module), talking over two pipes of its own."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                           os.environ.get("PYTHONPATH")]))}
        self._ready = False
        self._process = subprocess.Popen(
            [sys.executable, "-m", "initscope.sim.remote", str(request_read),
             str(reply_write), str(self.nice)],
            pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # the screen is ours
        os.close(request_read)
        os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)

    def close(self) -> None:
        """End the worker process now (it holds the draws)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(1.0)
        for conn in (self._requests, self._replies):
            if conn is not None:
                conn.close()
        self._requests = self._replies = None

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def run(self, cfg: Config, cancel: threading.Event | None = None,
            on_forward: Callable[[RunResult], None] | None = None) -> RunResult:
        """Forward pass, then backward pass, of `cfg` in the worker process. Raises
        ConfigError or MemoryBudgetError before anything is sent, Cancelled once
        `cancel` is set, WorkerProcessError if the process ended."""
        validate(cfg)
        check_budget(cfg)
        # the local draws (training's, the spectrum's) belong to the config on screen:
        # a new run lets go of them, or they would pile up config after config
        if cfg != self._last_config:
            self.local.draws.keep_only(set())
            self._last_config = cfg
        with self._lock:
            if not self._alive():
                self.close()
                self._start()
            self._run_id += 1
            run_id = self._run_id
            try:
                self._requests.send((run_id, cfg, on_forward is not None))
            except OSError:
                self.close()
                raise WorkerProcessError("the simulation process ended; the next change "
                                         "starts a new one") from None
            return self._receive(run_id, cancel, on_forward)

    def _receive(self, run_id: int, cancel, on_forward) -> RunResult:
        forward, asked_at = None, None
        while True:
            stop = cancel is not None and cancel.is_set()
            if stop and asked_at is None and self._ready:
                self._process.send_signal(signal.SIGUSR1)  # stops at the next layer
                asked_at = time.monotonic()
            elif asked_at is not None and time.monotonic() - asked_at > STOP_GRACE_SECONDS:
                self.close()
                raise Cancelled()
            try:
                ready = self._replies.poll(POLL_SECONDS)
                message = self._replies.recv() if ready else None
            except (EOFError, OSError):
                message, ready = None, True
            if message is None:
                if ready or not self._alive():
                    self.close()
                    raise WorkerProcessError(
                        "the simulation process ended (out of memory?); the next change "
                        "starts a new one")
                continue
            kind, got, payload = message
            if kind == "ready":
                self._ready = True
                continue
            if got != run_id:
                continue
            if kind == "forward":
                forward = payload
                if on_forward is not None and not (cancel is not None and cancel.is_set()):
                    on_forward(payload.snapshot())  # the caller may keep it as it is
            elif kind == "done":
                if cancel is not None and cancel.is_set():
                    raise Cancelled()  # asked to stop as it finished: not wanted now
                return _with_forward(payload, forward) if forward is not None else payload
            elif kind == "cancelled":
                raise Cancelled()
            elif kind == "refused":
                raise payload
            else:
                raise WorkerProcessError(payload)

    def run_weights(self, *args, **kwargs) -> RunResult:
        """Given weights (training's) are run here, beside the trainer that owns them."""
        return self.local.run_weights(*args, **kwargs)


AnySimulator = Simulator | RemoteSimulator  # what a pane or training runs on

_SHARED: RemoteSimulator | None = None
_SHARED_LOCK = threading.Lock()


def shared_simulator() -> RemoteSimulator:
    """The app's one worker process, shared by every pane (common random numbers)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = RemoteSimulator()
        return _SHARED


def close_shared() -> None:
    """End the shared worker process, if there is one."""
    with _SHARED_LOCK:
        if _SHARED is not None:
            _SHARED.close()


if __name__ == "__main__":  # the worker process: python -m initscope.sim.remote R W NICE
    serve(Connection(int(sys.argv[1]), writable=False),
          Connection(int(sys.argv[2]), readable=False), int(sys.argv[3]))
