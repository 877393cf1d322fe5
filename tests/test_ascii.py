"""Terminals that cannot show Unicode: every CLI command prints ASCII and no
traceback; the app draws its frames in ASCII."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from initscope.ascii import to_ascii
from tests.hardening.terminal import _drain, _first_screen, _spawn, _wait_exit

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


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "latin-1"},
                                 {"PYTHONIOENCODING": "utf-8", "INITSCOPE_ASCII": "1"}],
                         ids=["latin-1 terminal", "asked for"])
def test_the_app_draws_in_ascii_where_unicode_cannot_show(env):
    pid, fd = _spawn(["--depth", "4", "--width", "64", "--batch", "128"], env, (80, 24))
    seen = _first_screen(fd)
    seen += _drain(fd, 2.0)  # the first run's plots and sparklines
    os.write(fd, b"q")
    out, _ = _wait_exit(pid, fd, 30)
    everything = seen + out
    assert everything.isascii(), sorted({c for c in everything.decode("utf-8", "replace")
                                         if not c.isascii()})
    assert b"Traceback" not in everything
    text = re.sub(r"\x1b\[[0-9;?<>=$]*[A-Za-z~]", "", everything.decode())  # no CSI codes
    assert "+- Experiment -" in text  # the frames, in ASCII
    assert "< normal >" in text


def test_screen_stand_ins_keep_every_glyph_one_cell():
    from rich.cells import cell_len

    from initscope.ascii import to_cells

    drawn = "╭─┬─╮│└┴┘├┼┤▁▂▃▄▅▆▇█▀▌▐▉▏σχξ²→…·⚠‹›●◀▶▲▼⏎⇥⌫⣿⠀ ▖▞■"
    converted = to_cells(drawn)
    assert converted.isascii() and "?" not in converted
    assert cell_len(converted) == cell_len(drawn)
    assert to_cells("▁▂▃▄▅▆▇█") == "_.:-=+*#"  # the sparkline ramp still rises
    assert to_cells("└┬──┬┘") == "++--++"  # axis ticks stay
    assert cell_len(to_cells("🔎 x")) == cell_len("🔎 x")  # a wide glyph: two cells
