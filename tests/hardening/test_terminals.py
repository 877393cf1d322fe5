"""Terminals of every size and color depth: rendered headless, and in a real
pseudo-terminal, where the escape codes the app writes are read back."""

import os
import re
import subprocess
import sys

from initscope.sim import Config
from tests.hardening.terminal import terminal_output
from tests.tui.helpers import core_rows

SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from initscope.sim import Config
from initscope.sim.budget import estimate
from initscope.tui.app import InitScopeApp
from tests.tui.helpers import settle, screen_rows, core_rows

async def main():
    cfg = Config(depth=4, width=(32,), inputs=16, batch=64)
    for size in [(40, 15), (80, 24), (250, 80)]:
        app = InitScopeApp(cfg, theme_name={theme!r})
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            assert screen_rows(app) == core_rows(cfg)
            svg = app.export_screenshot()
    print(svg)

asyncio.run(main())
"""


def _render(env: dict, theme: str = "initscope-dark") -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(root=root, theme=theme)],
                          capture_output=True, text=True, env={**os.environ, **env},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_every_terminal_renders():
    for term in ("xterm-16color", "xterm-256color"):
        _render({"TERM": term, "COLORTERM": ""}, theme="sixteen")
    _render({"TERM": "xterm-256color", "COLORTERM": "truecolor"})


def test_no_color_renders_in_grey_only():


    svg = _render({"NO_COLOR": "1", "TERM": "xterm-256color"})
    # the screenshot's window frame draws three colored buttons: not part of the app
    chrome = {"ff5f57", "febc2e", "28c840"}
    colors = {c.lower() for c in re.findall(r"#([0-9a-fA-F]{6})", svg)} - chrome
    assert colors
    for c in colors:
        r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
        assert max(r, g, b) - min(r, g, b) <= 8, f"#{c} is not grey"


# ---- in a pseudo-terminal -------------------------------------------------------------

CFG = Config(depth=4, width=(32,))
ARGS = ["--depth", "4", "--width", "32"]
_SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
_ESCAPES = re.compile(rb"\x1b\[[0-9;:?<>=$]*[A-Za-z~]|\x1b\][^\x07]*\x07|\x1b[=>]")


def colors_written(out: bytes) -> list[tuple[str, object]]:
    """Every color an SGR sequence sets: ("16", code), ("256", index) or
    ("rgb", (r, g, b))."""
    found = []
    for params in _SGR.findall(out):
        parts = [int(p) for p in re.split(rb"[;:]", params) if p] or [0]
        i = 0
        while i < len(parts):
            p = parts[i]
            if p in (38, 48) and parts[i + 1] == 5:
                found.append(("256", parts[i + 2]))
                i += 3
            elif p in (38, 48) and parts[i + 1] == 2:
                found.append(("rgb", tuple(parts[i + 2:i + 5])))
                i += 5
            else:
                if 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
                    found.append(("16", p))
                i += 1
    return found


def is_grey(kind: str, value) -> bool:
    if kind == "16":
        return value % 10 in (0, 7)  # black, white and their bright forms
    if kind == "256":
        if value < 16:
            return value in (0, 7, 8, 15)
        if value >= 232:
            return True  # the grey ramp
        r, g, b = (value - 16) // 36, (value - 16) // 6 % 6, (value - 16) % 6
        return r == g == b
    return max(value) - min(value) <= 8


def shows_the_numbers(out: bytes) -> bool:
    """The per-layer table, as written, carries the core's numbers row by row."""
    text = _ESCAPES.sub(b"", out).decode("utf-8", "replace")
    return all(re.search(r"\s*".join(map(re.escape, row)), text) for row in core_rows(CFG))


def test_a_16_color_terminal_gets_only_the_16_colors():
    out = terminal_output(ARGS, {"TERM": "xterm-16color"}, size=(160, 50))
    colors = colors_written(out)
    assert {kind for kind, _ in colors} == {"16"}
    assert len({value for _, value in colors}) >= 4  # still in color, not monochrome
    assert shows_the_numbers(out)


def test_no_color_gets_greys_only_at_every_depth():
    for env in ({"TERM": "xterm-16color"}, {"TERM": "xterm-256color"},
                {"TERM": "xterm-256color", "COLORTERM": "truecolor"}):
        out = terminal_output(ARGS, {**env, "NO_COLOR": "1"}, size=(160, 50))
        colors = colors_written(out)
        assert colors and all(is_grey(*c) for c in colors), (env, set(colors) - {
            c for c in colors if is_grey(*c)})
        assert shows_the_numbers(out)
