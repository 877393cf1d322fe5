"""Thread workers that let go of what they ran.

Textual runs a thread worker on the event loop's thread pool and marks it as the
pool thread's active worker; the mark stays until that thread runs another worker.
Each of those up to six stale workers keeps its arguments (a run's results and
histogram samples) and its node (a closed compare screen) alive. Clearing the mark
when the work ends frees them.
"""

from __future__ import annotations

import functools
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
