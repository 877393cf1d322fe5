"""Key storms, and quitting mid-run."""

import gc
import os
import random
import signal
import sys
import threading
import time
import traceback
import tracemalloc

import pytest

from initscope.scenes import load_scene
from initscope.sim import Config
from initscope.sim.budget import estimate
from initscope.tui.app import InitScopeApp
from tests.hardening.terminal import _drain, _first_screen, _spawn, seconds_to_quit
from tests.tui.helpers import SMALL, burst, core_rows, main, pane, screen_rows, settle

STORM_KEYS = int(os.environ.get("INITSCOPE_STORM_KEYS", "1000"))
KEYS = ["s", "S", "a", "A", "left_square_bracket", "right_square_bracket", "g", "G", "b", "r",
        "v", "V", "x", "t", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "pagedown",
        "pageup", "up", "down", "left", "right", "left_curly_bracket", "right_curly_bracket",
        "space", "full_stop", "R", "i", "n", "p", "shift+right", "shift+up", "question_mark",
        "escape", "c", "escape", "C", "w", "escape", "enter", "tab", "backspace", "ctrl+p",
        "escape", "e", "V", "shift+left", "shift+down", "ctrl+home", "ctrl+end", "home", "end"]
SIZES = [(40, 15), (80, 24), (120, 40), (250, 80)]


async def _calm(app, pilot) -> None:
    """Leave the dialogs and the compare view, stop training, wait for the screen."""
    for _ in range(12):
        await burst(app, ["escape"])
        await pilot.pause(0.05)
        if len(app.screen_stack) == 1:
            break
    assert len(app.screen_stack) == 1, app.screen_stack
    await burst(app, ["R"])
    await pilot.resize_terminal(120, 40)
    await settle(app, pilot, rounds=400)


def _busy_threads() -> list[int]:
    """Threads other than this one with initscope code on their stack. A cancelled
    worker may still be finishing in its pool thread after the app has settled."""
    me = threading.get_ident()
    return [ident for ident, frame in sys._current_frames().items() if ident != me
            and any("initscope" in f.f_code.co_filename for f, _ in traceback.walk_stack(frame))]


async def _traced_bytes(pilot) -> int:
    """Live Python and NumPy bytes, once no thread allocates: tracemalloc can crash
    when a thread allocates while it is read or stopped (CPython #128679)."""
    for _ in range(600):
        if not _busy_threads():
            break
        await pilot.pause(0.1)
    else:
        raise AssertionError("worker threads still busy after a minute")
    gc.collect()  # the app collects cycles rarely, to keep frames smooth: do it now
    return tracemalloc.get_traced_memory()[0]


def _widgets_off_screen(app) -> int:
    """Widgets still alive that are in no screen of the app."""
    from textual.message_pump import MessagePump

    shown = {id(node) for screen in app.screen_stack for node in screen.walk_children()}
    shown |= {id(screen) for screen in app.screen_stack}
    return sum(1 for o in gc.get_objects() if isinstance(o, MessagePump)
               and o is not app and id(o) not in shown)


async def test_a_storm_of_keys_and_resizes(monkeypatch, tmp_path):
    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))  # where `e` writes
    rng = random.Random(2026)
    # a 48 MiB budget: keys that grow the network past it are refused, as they must be
    base = SMALL.replace(memory_limit=48 / 1024)
    app = InitScopeApp(base)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        refused = []
        propose = main(app).propose

        def counting_propose(**changes) -> bool:
            applied = propose(**changes)
            if not applied:
                refused.append(changes)
            return applied

        main(app).propose = counting_propose
        await burst(app, KEYS)  # every key once: first-use imports and caches
        await _calm(app, pilot)
        assert not _busy_threads()
        tracemalloc.start()
        try:
            traced = [await _traced_bytes(pilot)]
            for _half in range(2):
                for _ in range(STORM_KEYS // 200):
                    await burst(app, [rng.choice(KEYS) for _ in range(100)])
                    await pilot.resize_terminal(*rng.choice(SIZES))
                    await pilot.pause(0.01)
                await _calm(app, pilot)
                assert pane(app).shown.config == pane(app).config
                assert screen_rows(app) == core_rows(pane(app).config)
                # Measure at the starting config each time, so that what is compared is
                # what the storm left behind, not the size of wherever it happened to end
                # (a depth-1000 result alone holds ~10 MiB of Python objects).
                propose(**base.__dict__)
                await settle(app, pilot, rounds=400)
                assert pane(app).shown.config == base
                traced.append(await _traced_bytes(pilot))
        finally:
            tracemalloc.stop()
        mib = [round(t / 2**20, 1) for t in traced]
        print(f"storm: {STORM_KEYS} keys, {len(refused)} changes refused, traced memory "
              f"{mib} MiB at the starting config ({estimate(base).total / 2**20:.1f} MiB)")
        # What stays is the config's draws, buffers and results, and bounded caches (the
        # theory's, Textual's strips and styles): 27 MiB here, the rest is room for...
        for t in traced[1:]:
            assert t < estimate(base).total + 64 * 2**20, mib
        # slower machines. They fill in the first half of the storm: the second adds little (5 MiB
        # here), where a leak would add as much again
        assert traced[2] - traced[1] < 16 * 2**20, mib
        # One Footer key leaked per key press once (textual#6666): 2,000+ widgets
        off_screen = _widgets_off_screen(app)
        print(f"storm: {off_screen} widgets alive off screen")
        assert off_screen < 400


async def test_a_storm_inside_a_scene():
    rng = random.Random(7)
    scene = load_scene("course_tour")
    app = InitScopeApp(scene=scene)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await burst(app, [rng.choice(["n", "p", "pagedown", "pageup", "v", "x"])
                          for _ in range(300)])
        await settle(app, pilot, rounds=400)
        # `x` is a display setting now: the config stays the scene step's
        assert pane(app).config == scene.steps[main(app).scene_index].config
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_quit_mid_run_is_prompt():
    # about a second per layer on this machine: quitting must not wait for it
    big = Config(depth=3, width=(4096,), inputs=4096, batch=4096)
    app = InitScopeApp(big)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        start = time.perf_counter()
        await pilot.press("q")
    assert time.perf_counter() - start < 3.0  # generous here; see benchmarks/ for the figure


def test_the_process_quits_mid_run_in_a_terminal():
    # The whole process, in a pseudo-terminal: once, the interpreter's exit hung in
    # OpenBLAS's exit handler after a matmul was cut short, and never returned.
    # This config (1.8 GiB, just inside the default budget) hung every time. The
    # limit is explicit so that a machine with less free memory still runs it.
    args = ["--depth", "1", "--width", "8192", "--inputs", "8192", "--batch", "6144",
            "--memory-limit", "3"]
    assert seconds_to_quit(args, wait_in_run=1.5, limit=10.0) < 3.0  # figure: benchmarks/


async def test_keys_still_queued_at_shutdown_are_dropped():
    # a burst that is still in the queue when the app closes must not act on the
    # screens being taken down (it raised "No screens on stack" here once)
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await burst(app, ["s", "a", "left_square_bracket", "space", "g", "C", "w"] * 20)
    assert app.return_code in (None, 0)


async def test_dialogs_opened_and_closed_faster_than_they_draw():
    # Enter and Escape hammered: a dialog still closing while the next opened once
    # clashed on its id (DuplicateIds) and took the app down
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for keys in (["enter", "escape"], ["question_mark", "escape"], ["c", "escape"],
                     ["enter", "enter", "escape"], ["C", "escape"]):
            await burst(app, keys * 30)
            await pilot.pause(0.2)
        await _calm(app, pilot)
        assert len(app.screen_stack) == 1
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_paging_the_palette_while_its_hits_arrive():
    # PageUp/PageDown while the palette's list was refilling raised KeyError in
    # Textual's option list, and the error ended the app
    rng = random.Random(11)
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for _ in range(20):
            await burst(app, ["ctrl+p"] + [rng.choice(["pageup", "pagedown", "t", "a", "n",
                                                       "backspace", "down", "up"])
                                           for _ in range(30)] + ["escape"])
            await pilot.pause(0.05)
        await _calm(app, pilot)
        assert len(app.screen_stack) == 1
        assert screen_rows(app) == core_rows(pane(app).config)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["TERM", "HUP", "INT"])
def test_signals_end_the_app_and_restore_the_terminal(signum):
    pid, fd = _spawn(["--depth", "3", "--width", "32", "--batch", "64"], {}, (80, 24))
    out, end = _first_screen(fd), time.perf_counter() + 30
    os.kill(pid, signum)
    try:
        while True:
            out += _drain(fd, 0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.perf_counter() < end, "the app did not end on the signal"
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 128 + signum  # as a shell reports it
    tail = out[out.rindex(b"\x1b[?1049h"):]  # what came after entering the alternate screen
    for restore in (b"\x1b[?1049l", b"\x1b[?25h", b"\x1b[?1000l"):  # screen, cursor, mouse
        assert restore in tail, restore


@pytest.mark.parametrize("hangup", ["ignored", "blocked"])
def test_a_lost_terminal_ends_the_app_even_with_hangups_ignored(hangup):
    # as under nohup: SIGHUP ignored when the app starts (its handler takes over), or
    # blocked so that it never arrives: then the terminal goes away. The app must see
    # the hung-up terminal itself, and leave although every write to it fails.
    import fcntl
    import pty
    import struct
    import sys
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        if hangup == "ignored":
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        else:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        os.execve(sys.executable, [sys.executable, "-m", "initscope", "--depth", "3",
                                   "--width", "32", "--batch", "64"], env)
    _first_screen(fd)
    os.close(fd)  # the terminal is gone
    end = time.perf_counter() + 20
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.perf_counter() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the app outlived its terminal")
        time.sleep(0.05)
