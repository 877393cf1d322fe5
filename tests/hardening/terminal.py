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


def _spawn(args: list[str], env: dict[str, str], size: tuple[int, int]) -> tuple[int, int]:
    """Fork the app onto a new pseudo-terminal of `size` (columns, rows) with `env`
    over this environment (minus color and size settings); returns (pid, fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: size its terminal, then become the app
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        # an explicit environment: the test process may hold settings (COLUMNS,
        # LINES) that its libraries put straight into the C environment
        drop = {"COLORTERM", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES"}
        child_env = {k: v for k, v in os.environ.items() if k not in drop}
        child_env.update({"TERM": "xterm-256color", **env})
        os.execve(sys.executable, [sys.executable, "-m", "initscope", *args], child_env)
    return pid, fd


def _first_screen(fd: int) -> bytes:
    seen, end = b"", time.perf_counter() + 60
    while b"Experiment" not in seen:  # the selector pane's title: the first screen is up
        assert time.perf_counter() < end, "no first screen within a minute"
        seen += _drain(fd, 0.1)
    return seen


def _wait_exit(pid: int, fd: int, limit: float) -> tuple[bytes, float]:
    """Read until the app has exited (status 0): what it wrote, and how long it took."""
    out, start = b"", time.perf_counter()
    try:
        while True:
            out += _drain(fd, 0.001)
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
    return out, elapsed


def seconds_to_quit(args: list[str], wait_in_run: float = 1.5, size=(120, 40),
                    limit: float = 30.0) -> float:
    """Start the app with `args`, wait for its first screen and then `wait_in_run`
    seconds more, type `q`, and time until the process has exited."""
    pid, fd = _spawn(args, {}, size)
    _first_screen(fd)
    _drain(fd, wait_in_run)
    os.write(fd, b"q")
    return _wait_exit(pid, fd, limit)[1]


def terminal_output(args: list[str], env: dict[str, str], seconds: float = 3.0,
                    size=(100, 30)) -> bytes:
    """Everything the app writes to a terminal with `env` (TERM, NO_COLOR, ...) from
    its start, through `seconds` of showing a run, to its quitting."""
    pid, fd = _spawn(args, env, size)
    out = _first_screen(fd) + _drain(fd, seconds)
    os.write(fd, b"q")
    return out + _wait_exit(pid, fd, 10.0)[0]
