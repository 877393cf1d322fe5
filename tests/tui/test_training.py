"""Training mode by keys: start, pause, single steps, reset, and reset on a change."""

from __future__ import annotations

import asyncio

from initscope.report import table_cells
from initscope.sim import Config, Simulator
from initscope.sim.training import Trainer
from initscope.tui.app import InitScopeApp
from initscope.tui.widgets.training import TrainingPanel
from tests.tui.helpers import SMALL, main, pane, screen_rows, settle

CFG = SMALL.replace(scheme="lecun_normal", lr=0.05)


async def wait_for(app, pilot, condition, rounds: int = 400) -> None:
    for _ in range(rounds):
        await pilot.pause(0.01)
        if condition():
            return
    raise AssertionError("condition not reached")


def expected_rows(cfg: Config, steps: int) -> list[tuple[str, ...]]:
    """The table after `steps` training steps, computed without the app."""
    sim = Simulator()
    trainer = Trainer(cfg, draws=sim.draws)
    trainer.run(steps)
    result = sim.run_weights(cfg, trainer.weights, trainer.biases, step=steps)
    return [tuple(r) for r in table_cells(result)]


def shown_step(app) -> int:
    return pane(app).shown.result.step


async def test_start_pause_step_and_reset():
    app = InitScopeApp(CFG)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(TrainingPanel)
        assert not panel.display
        await pilot.press("space")
        await wait_for(app, pilot, lambda: shown_step(app) >= 3)
        assert main(app).training and panel.display
        await pilot.press("space")  # pause
        await wait_for(app, pilot, lambda: not main(app).training)
        await app.workers.wait_for_complete()
        await pilot.pause()
        paused_at = shown_step(app)
        assert paused_at == len(main(app).session.history)  # the screen shows where it stopped
        await asyncio.sleep(0.3)
        await pilot.pause()
        assert shown_step(app) == paused_at  # paused means paused
        await pilot.press("full_stop")
        await wait_for(app, pilot, lambda: shown_step(app) == paused_at + 1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen_rows(app) == expected_rows(CFG, paused_at + 1)
        assert f"step {paused_at + 1}" in str(app.query_one("#train-head").render())
        await pilot.press("R")
        await settle(app, pilot)
        assert shown_step(app) == 0 and not panel.display
        assert screen_rows(app) == [tuple(r) for r in table_cells(Simulator().run(CFG))]


async def test_changing_the_config_resets_training():
    app = InitScopeApp(CFG)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("full_stop", "full_stop")
        await wait_for(app, pilot, lambda: shown_step(app) == 2)
        await pilot.press("a")  # another activation: a new network
        await settle(app, pilot)
        assert pane(app).config.activation != CFG.activation
        assert shown_step(app) == 0 and not main(app).session.history
        assert not app.query_one(TrainingPanel).display


async def test_symmetry_meter_shows_one_unit_per_layer_for_constant_init():
    cfg = CFG.replace(scheme="constant", value=0.01, bias="zeros", lr=0.01)
    app = InitScopeApp(cfg)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(app, pilot)
        for _ in range(3):
            await pilot.press("full_stop")
            await app.workers.wait_for_complete()
        await wait_for(app, pilot, lambda: shown_step(app) == 3)
        meter = str(app.query_one("#train-meter").render())
        assert meter.startswith("·" * cfg.depth) and "fewest: 1 of 64" in meter
