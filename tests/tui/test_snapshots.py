"""Layout snapshots at 80x24 and 160x50 (fixed seed, no timings on screen).
Refresh after an intended layout change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from initscope.sim import Config
from initscope.tui.app import InitScopeApp
from tests.tui.helpers import main, settle, wait_for


def _app(**changes) -> InitScopeApp:
    return InitScopeApp(Config(**changes), timings=False)


async def _ready(pilot) -> None:
    await settle(pilot.app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_course_demo_layout(snap_compare, size):
    assert snap_compare(_app(), terminal_size=size, run_before=_ready)


def test_he_relu_gradients_layout(snap_compare):
    async def view_gradients(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("v", "v")
        await settle(pilot.app, pilot)

    app = _app(scheme="he_normal", activation="relu")
    assert snap_compare(app, terminal_size=(160, 50), run_before=view_gradients)


# ---- 80x24, the usual size of an SSH session: every view, compare, training

VIEWS_80 = ["activation", "preactivation", "gradient", "weight_gradient", "phase", "spectrum",
            "spp"]


@pytest.mark.parametrize("view", VIEWS_80)
def test_every_view_at_80x24(snap_compare, view):
    async def show(pilot) -> None:
        await settle(pilot.app, pilot)
        main(pilot.app).set_view(view)
        await settle(pilot.app, pilot)

    # float64: float32 sums over the batch can differ in the last bit between runs
    # (BLAS threads), which moves a tick label by a cell
    cfg = dict(width=(64,), inputs=64, batch=256) if view == "spectrum" else {}
    if view == "spp":  # the signal propagation plot of an NF-ResNet
        cfg = dict(arch="residual", norm="nf", activation="relu", scheme="he_normal",
                   width=(64,), inputs=64, batch=256)
    assert snap_compare(_app(dtype="float64", **cfg), terminal_size=(80, 24),
                        run_before=show)


def test_compare_at_80x24(snap_compare):
    async def compare(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("C")
        await settle(pilot.app, pilot, screen=pilot.app.screen)
        await pilot.press("g")
        await settle(pilot.app, pilot, screen=pilot.app.screen)

    app = _app(scheme="he_normal", activation="relu", width=(64,), inputs=64, batch=256,
               dtype="float64")
    assert snap_compare(app, terminal_size=(80, 24), run_before=compare)


async def _steps_taken(pilot, steps: int) -> None:
    for k in range(1, steps + 1):  # one step at a time, each waited for
        await pilot.press("full_stop")
        for _ in range(500):
            await pilot.pause(0.01)
            history = main(pilot.app).shown_history
            if history and history[-1].step == k and not main(pilot.app).training:
                break
    await settle(pilot.app, pilot)


def test_training_at_80x24(snap_compare):
    async def train(pilot) -> None:
        await settle(pilot.app, pilot)
        await _steps_taken(pilot, 3)

    app = _app(scheme="constant", value=0.01, bias="zeros", width=(64,), inputs=64, batch=256,
               dtype="float64")
    assert snap_compare(app, terminal_size=(80, 24), run_before=train)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_every_symmetry_scene_step_at_80x24(snap_compare, index):
    """The scene as shipped, in float64 (float32 sums can differ in the last bit
    between runs), each step's 40 training steps waited for to the end."""
    import dataclasses

    from initscope.scenes import load_scene

    scene = load_scene("symmetry")
    steps = tuple(dataclasses.replace(s, config=s.config.replace(dtype="float64"))
                  for s in scene.steps)
    scene = dataclasses.replace(scene, steps=steps)

    async def step_trained(pilot) -> None:
        await settle(pilot.app, pilot)
        for _ in range(index):
            await pilot.press("n")
        screen = main(pilot.app)
        await wait_for(pilot, lambda: screen.scene_index == index and screen.shown_history
                       and screen.shown_history[-1].step == 40 and not screen.training,
                       rounds=3000)
        await settle(pilot.app, pilot)

    app = InitScopeApp(scene=scene, timings=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=step_trained)
