"""Terminals that cannot show Unicode: every CLI command prints ASCII and no
traceback; the app says in one ASCII line why it does not start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from initscope.ascii import to_ascii
from tests.hardening.terminal import _drain, _spawn

COMMANDS = [["report"], ["report", "--format", "json"], ["phase"], ["phase", "--format", "json"],
            ["spectrum"], ["train", "--steps", "3"], ["schemes"], ["activations"], ["archs"],
            ["scenes"], ["--help"], ["report", "--depth", "0"]]
SMALL = ["--depth", "3", "--width", "32", "--inputs", "16", "--batch", "64"]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "initscope", *args], capture_output=True,
                          timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_every_command_prints_ascii_on_a_latin1_terminal(args):
    extra = SMALL if args[0] in ("report", "phase", "spectrum", "train") else []
    done = _run([args[0], *extra, *args[1:]], PYTHONIOENCODING="latin-1")
    output = done.stdout + done.stderr
    assert output.isascii(), output[:400]
    assert b"Traceback" not in output
    assert done.returncode == (2 if "0" in args else 0)


@pytest.mark.parametrize("how", ["flag", "flag after the command", "environment"])
def test_ascii_can_be_asked_for_on_a_utf8_terminal(how):
    args = {"flag": ["--ascii", "phase"], "flag after the command": ["phase", "--ascii"],
            "environment": ["phase"]}[how]
    env = {"PYTHONIOENCODING": "utf-8"}
    if how == "environment":
        env["INITSCOPE_ASCII"] = "1"
    done = _run(args, **env)
    assert done.returncode == 0 and done.stdout.isascii()
    assert b"#" in done.stdout and b"|" in done.stdout  # shades and the critical line


def test_every_glyph_initscope_draws_has_an_ascii_stand_in():
    from initscope.phaseplot import phase_text
    from initscope.plots import histogram_text
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.meanfield import phase_grid

    drawn = phase_text(phase_grid(ACTIVATIONS["relu"], columns=30, rows=8), (0.05, 0.3)).plain
    drawn += histogram_text((1, 5, 2), (0.0, 1.0, 2.0, 3.0), 30, 8, "red", "white").plain
    drawn += "σw² → · … ⚠ ‹ › ● ◀ ▶ ▲ χ1 ξc ▁▂▃▄▅▆▇█ ╭─╮│╰╯┬┴├┤┼"
    converted = to_ascii(drawn)
    assert converted.isascii() and "?" not in converted


def test_the_app_refuses_in_one_ascii_line_on_a_latin1_terminal():
    pid, fd = _spawn([], {"PYTHONIOENCODING": "latin-1"}, (80, 24))
    out, end = b"", time.perf_counter() + 30
    try:
        while True:
            out += _drain(fd, 0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.perf_counter() < end, "the app neither started nor refused"
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 2
    text = out.strip()
    assert text.isascii() and b"Traceback" not in text
    assert len(text.splitlines()) == 1 and b"UTF-8" in text
