"""Thread workers that let go of what they ran.

Textual runs a thread worker on the event loop's thread pool and marks it as the
pool thread's active worker; the mark stays until that thread runs another worker.
Each of those up to six stale workers keeps its arguments (a run's results and
histogram samples) and its node (a closed compare screen) alive. Clearing the mark
when the work ends frees them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from textual import work
from textual.worker import active_worker


def forget_when_done(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            active_worker.set(None)

    return run


def thread_work(group: str, exclusive: bool = False) -> Callable:
    """`@work(thread=True, ...)` for a method, forgetting the worker when done."""
    def decorate(method: Callable) -> Callable:
        return work(forget_when_done(method), thread=True, exclusive=exclusive, group=group,
                    exit_on_error=False)

    return decorate


POLL_SECONDS = 0.02  # how often a waiting worker checks whether it was cancelled


def run_in_daemon(target: Callable[[], None], cancel: threading.Event) -> None:
    """Run `target` in a daemon thread and wait for it, returning early once `cancel`
    is set: the core notices the same event between layers and stops by itself, and
    neither a newer run nor quitting waits for a long layer to end."""
    done = threading.Event()

    def run() -> None:
        try:
            target()
        finally:
            done.set()

    threading.Thread(target=run, name="initscope-run", daemon=True).start()
    while not done.wait(POLL_SECONDS):
        if cancel.is_set():
            return
