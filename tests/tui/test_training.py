"""Training mode by keys: start, pause, single steps, reset, and reset on a change."""

from __future__ import annotations

import asyncio

from initscope.report import table_cells
from initscope.sim import Config, Simulator
from initscope.sim.training import Trainer
from initscope.tui.app import InitScopeApp
from initscope.tui.widgets.training import TrainingPanel
from tests.tui.helpers import SMALL, main, pane, screen_rows, screen_text, settle, wait_for

CFG = SMALL.replace(scheme="lecun_normal", lr=0.05, steps=100_000)  # space: until paused


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
        await wait_for(pilot, lambda: shown_step(app) >= 3)
        assert main(app).training and panel.display
        await pilot.press("space")  # pause
        await wait_for(pilot, lambda: not main(app).training)
        await app.workers.wait_for_complete()
        await pilot.pause()
        paused_at = shown_step(app)
        assert paused_at == main(app).session.trainer.steps_done  # shown where it stopped
        await asyncio.sleep(0.3)
        await pilot.pause()
        assert shown_step(app) == paused_at  # paused means paused
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: shown_step(app) == paused_at + 1)
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
        await wait_for(pilot, lambda: shown_step(app) == 2)
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
        await wait_for(pilot, lambda: shown_step(app) == 3)
        meter = str(app.query_one("#train-meter").render())
        assert meter.startswith("·" * cfg.depth) and "fewest: 1 of 64" in meter


DIVERGES = SMALL.replace(scheme="constant", value=0.05, bias="zeros", lr=5.0)


async def test_the_training_keys_change_lr_and_optimizer_and_reset_training():
    app = InitScopeApp(CFG)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: len(main(app).shown_history) == 1)
        await pilot.press("l")  # lr x2
        await settle(app, pilot)
        assert pane(app).config.lr == 0.1 and main(app).shown_history == []
        assert not app.query_one(TrainingPanel).display  # a new network: nothing trained
        await pilot.press("L", "L")  # /2 twice
        await settle(app, pilot)
        assert pane(app).config.lr == 0.025
        await pilot.press("o")
        await settle(app, pilot)
        assert pane(app).config.optimizer == "adam"
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: len(main(app).shown_history) == 1)
        assert "adam lr 0.025" in str(app.query_one("#train-head").render())
        # the selectors: the Task field steps the task, and resets training as well
        app.query_one("#sel-task").focus()
        await pilot.press("right")
        await settle(app, pilot)
        assert pane(app).config.task == "spiral" and main(app).shown_history == []


async def _diverged(app, pilot) -> None:
    await settle(app, pilot)
    await pilot.press("space")
    await wait_for(pilot, lambda: not main(app).training
                   and any("try lr" in n for n in main(app)._train_notes), rounds=2000)
    await settle(app, pilot)


async def test_divergence_stops_with_its_message_whole_at_80x24_and_160x50():
    for size in [(80, 24), (160, 50)]:
        app = InitScopeApp(DIVERGES)
        async with app.run_test(size=size) as pilot:
            await _diverged(app, pilot)
            history = main(app).shown_history
            stop = main(app).session.trainer.stopped
            assert stop is not None and history[-1].step == stop.step
            panel = app.query_one(TrainingPanel).region
            words = " ".join(line.strip("│ ") for line in screen_text(app, panel))
            words = " ".join(words.split())
            assert (f"diverged at step {stop.step} ({stop.reason}, from layer {stop.layer}): "
                    "training stopped; try lr") in words, words
            assert "(L halves it; R resets)" in words, words


async def test_after_divergence_the_app_goes_on():
    app = InitScopeApp(DIVERGES)
    async with app.run_test(size=(120, 40)) as pilot:
        await _diverged(app, pilot)
        note = next(n for n in main(app)._train_notes if "try lr" in n)
        suggested = float(note.split("try lr ")[1].split()[0])
        assert suggested < DIVERGES.lr
        # type the suggestion into the lr field, then train: no divergence now
        assert main(app).propose(lr=suggested)
        await settle(app, pilot)
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: len(main(app).shown_history) == 1)
        await pilot.press("s")  # and the rest of the app still answers
        await settle(app, pilot)
        assert pane(app).config.scheme != "constant"


async def test_the_heatmap_view_of_the_training_panel():
    from initscope.sim.training import HEAT_SAMPLE
    from initscope.tui.widgets.training import heat_lines

    app = InitScopeApp(CFG.replace(steps=30))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: len(main(app).shown_history) == 30
                       and not main(app).training)
        for metric, label in [("grad norm", "L1 |dW| log"), ("dead/sat", "L1 saturated")]:
            await pilot.press("m")
            await pilot.pause()
            assert main(app).train_metric == metric
            assert str(app.query_one("#train-layer-0 .spark-label").render()) == label
        await pilot.press("m")  # the heatmap
        await pilot.pause()
        panel = app.query_one(TrainingPanel)
        text = "\n".join(screen_text(app, panel.region))
        assert "L1 |a| by decade, steps 1-30" in text
        assert not app.query_one("#train-layer-0").display  # the rows make way
        history = main(app).shown_history
        lines = heat_lines(history, 0, 10)
        assert len(lines) == 5 and all(len(line) == 14 + 10 for line in lines)  # 3 steps a column
        # every step's counts cover the whole subsample (tanh: nothing at or above 1)
        for step in history:
            heat = step.layers[0].heat
            entries = CFG.batch * CFG.width[0]
            assert sum(heat) == len(range(0, entries, max(1, entries // HEAT_SAMPLE)))
            assert sum(heat[16:]) == 0
        await pilot.press("m")  # back to the activation std
        await pilot.pause()
        assert app.query_one("#train-layer-0").display and main(app).train_metric == "act std"


def test_the_training_history_stays_bounded():
    from initscope.tui.scope.training import HISTORY_POINTS, TrainingSession

    cfg = Config(depth=2, width=(4,), inputs=4, batch=4, scheme="xavier_normal", lr=0.01)
    session = TrainingSession(cfg)
    trainer = Trainer(cfg)
    trainer.run(5000, on_step=session.add, keep=False)
    steps = [r.step for r in session.history]
    assert len(steps) <= HISTORY_POINTS + 1
    assert steps[0] == 1 and steps[-1] == 5000 and steps == sorted(steps)
    gaps = {b - a for a, b in zip(steps[1:-1], steps[2:-1])}
    assert len(gaps) == 1  # evenly spread
