"""Run `python -m initscope` in a pseudo-terminal, as a person would, and quit it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def _drain(fd: int, seconds: float) -> bytes:
    """Read what the app writes for `seconds` (a pty must be read or the app blocks)."""
    out, end = b"", time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def seconds_to_quit(args: list[str], wait_in_run: float = 1.5, size=(120, 40),
                    limit: float = 30.0) -> float:
    """Start the app with `args`, wait for its first screen and then `wait_in_run`
    seconds more, type `q`, and time until the process has exited (status 0)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: size its terminal, then become the app
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        os.environ.update(TERM="xterm-256color")
        os.execv(sys.executable, [sys.executable, "-m", "initscope", *args])
    seen, end = b"", time.perf_counter() + 60
    while b"Experiment" not in seen:  # the selector pane's title: the first screen is up
        assert time.perf_counter() < end, "no first screen within a minute"
        seen += _drain(fd, 0.1)
    _drain(fd, wait_in_run)
    os.write(fd, b"q")
    start = time.perf_counter()
    try:
        while True:
            _drain(fd, 0.001)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() - start > limit:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError(f"the app did not quit within {limit:g} s")
    finally:
        os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"the app exited with {code}"
    return elapsed
