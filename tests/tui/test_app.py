"""The app driven by key presses, as a person would, checked against the core."""

from __future__ import annotations

import random

import pytest

from initscope.presets import PRESETS
from initscope.sim import Config, Simulator
from initscope.sim.budget import estimate
from initscope.sim.memory import budget_bytes
from initscope.tui.app import InitScopeApp
from initscope.tui.display import DIAGRAM_VIEWS, plot_title
from initscope.tui.scope.editing import ScopeScreen
from initscope.tui.scope.main import MainScreen
from initscope.tui.screens import EditScreen, HelpScreen
from initscope.tui.widgets.histograms import HistogramGrid
from initscope.tui.widgets.sparklines import SparklinePanel
from initscope.tui.widgets.table import LayerTable
from initscope.views import VIEWS
from tests.tui.helpers import (
    SMALL,
    burst,
    core_rows,
    main,
    pane,
    plot_titles,
    press_and_finish,
    screen_rows,
    settle,
    wait_for,
)


async def test_starts_on_the_course_demo():
    app = InitScopeApp()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        assert pane(app).config == Config()
        assert screen_rows(app) == core_rows(Config())
        status = str(app.query_one("#status").render())
        assert "activations collapse toward 0" in status and "forward + backward in" in status
        result = Simulator().run(Config())
        width = pane(app).plot_request.width
        assert plot_titles(app)[:3] == [plot_title(result, i, "activation", width).plain
                                        for i in range(3)]


@pytest.mark.parametrize("key,field,expect", [
    ("s", "scheme", "uniform"), ("S", "scheme", "constant"),
    ("a", "activation", "sigmoid"), ("A", "activation", "linear"),
    ("right_square_bracket", "depth", 10), ("left_square_bracket", "depth", 5),
    ("right_curly_bracket", "width", (100,)), ("left_curly_bracket", "width", (32,)),
    ("g", "gain", 1.1), ("G", "gain", 0.9),
    ("b", "bias", "zeros"), ("r", "seed", 1),
])
async def test_each_key_changes_its_field_and_the_screen_follows(key, field, expect):
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        assert getattr(pane(app).config, field) == expect
        assert pane(app).config == SMALL.replace(**{field: expect})
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_the_conv_rows_step_by_keys():
    app = InitScopeApp(Config(arch="conv", batch=8, depth=3, activation="relu"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.focused.id == "sel-scheme"
        for field in ("padding", "stride", "kernel", "image", "channels"):
            await pilot.press("up", "right")
            await settle(app, pilot)
            assert app.focused.id == f"sel-{field}"
        # kernel 5 was refused: with stride 2 and no padding, 16 px shrink to nothing
        # by layer 3; the image then grew to 28 px
        assert (pane(app).config.padding, pane(app).config.stride, pane(app).config.kernel,
                pane(app).config.image, pane(app).config.channels) == (0, 2, 3, 28, 32)
        assert screen_rows(app) == core_rows(pane(app).config)
        await pilot.press("left_square_bracket")  # depth 2, then 3 and 4: 28 -> 13 -> 6 -> 2
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(app, pilot)
        # a 4th layer would shrink 2 px to nothing: refused, and the config stays
        assert pane(app).config.depth == 3


async def test_selectors_work_by_keys_alone():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        assert app.focused.id == "sel-scheme"
        await pilot.press("right")  # scheme: normal -> uniform
        await settle(app, pilot)
        assert pane(app).config.scheme == "uniform"
        await pilot.press("down", "right")  # the bound selector now follows the scheme
        await settle(app, pilot)
        assert app.focused.id == "sel-bound" and pane(app).config.bound == 0.1
        await pilot.press("enter")
        assert isinstance(app.screen, EditScreen)
        await pilot.press(*"0.25", "enter")
        await settle(app, pilot)
        assert pane(app).config.bound == 0.25
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_a_bad_typed_value_changes_nothing():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        app.query_one("#sel-depth").focus()
        for text, reason in (("0", "depth must be between"),
                             ("abc", "Depth needs a number, not 'abc'")):
            await pilot.press("enter", *text, "enter")
            await settle(app, pilot)
            assert pane(app).config == SMALL
            assert reason in str(app.query_one("#status").render())


async def test_a_config_over_the_memory_budget_is_refused():
    start = SMALL.replace(memory_limit=0.02)  # a 20 MiB budget keeps the test light
    app = InitScopeApp(start)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for _ in range(8):
            await pilot.press("right_curly_bracket")
            await settle(app, pilot)
        # the widths that fit were taken; the first one that does not was refused
        assert pane(app).config.width > start.width
        assert estimate(pane(app).config).total <= budget_bytes(pane(app).config)
        status = str(app.query_one("#status").render())
        assert "memory budget of 20.5 MiB" in status and "lower the width" in status
        assert "Memory GiB field" in status  # the app's own way to raise it
        assert screen_rows(app) == core_rows(pane(app).config)


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.key], ids=lambda p: p.name)
async def test_preset_keys(preset):
    app = InitScopeApp(SMALL.replace(scheme="orthogonal", activation="selu", gain=2.0))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press(preset.key)
        await settle(app, pilot)
        expected = preset.apply(SMALL.replace(scheme="orthogonal", activation="selu", gain=2.0))
        assert pane(app).config == expected
        assert screen_rows(app) == core_rows(expected)


async def test_views_cycle_and_show_their_quantity():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        result = Simulator().run(SMALL)
        for view in VIEWS[1:] + VIEWS[:1]:
            await pilot.press("v")
            await settle(app, pilot)
            assert pane(app).view == view
            if view not in DIAGRAM_VIEWS:
                width = pane(app).plot_request.width
                assert plot_titles(app)[0] == plot_title(result, 0, view, width).plain


async def test_deep_networks_page_through_every_layer():
    app = InitScopeApp(SMALL.replace(depth=50, width=(16,)))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        seen = set()
        for _ in range(60):
            seen.update(int(t.split()[0][1:]) for t in plot_titles(app))
            await pilot.press("pagedown")
            await settle(app, pilot)
        assert seen == set(range(1, 51))


async def test_help_screen_lists_every_binding():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {description for _, description, _ in app.screen.rows}
        ids = {binding_id for _, _, binding_id in app.screen.rows}
        assert {b.description for b in app.BINDINGS} <= listed
        assert {b.description for b in MainScreen.BINDINGS} <= listed
        assert {b.id for b in ScopeScreen.BINDINGS} <= ids  # ids for the user's keymap
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_runs_initscope_commands():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        for query, check in [
            ("Scheme: he_normal", lambda: pane(app).config.scheme == "he_normal"),
            ("Activation: gelu", lambda: pane(app).config.activation == "gelu"),
            ("View: Weight gradients", lambda: pane(app).view == "weight_gradient"),
            ("Theme: projector", lambda: app.theme == "projector"),
            ("Preset 5", lambda: pane(app).config.scheme == "he_normal"
             and pane(app).config.activation == "relu"),
            ("Optimizer: adam", lambda: pane(app).config.optimizer == "adam"),
            ("Learning rate (lr): 0.003", lambda: pane(app).config.lr == 0.003),
            ("Task: spiral", lambda: pane(app).config.task == "spiral"),
            ("Steps: 500", lambda: pane(app).config.steps == 500),
        ]:
            await pilot.press("ctrl+p")
            await pilot.press(*query)
            await pilot.pause(0.3)  # the palette searches in the background
            await pilot.press("enter")
            await settle(app, pilot)
            assert check(), query
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_enter_pressed_thrice_on_a_palette_command_runs_it_once():
    # the second Enter dismissed the palette again and popped the app's own screen
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Preset 3")
        await pilot.pause(0.3)
        await burst(app, ["enter", "enter", "enter"])
        await settle(app, pilot)
        assert len(app.screen_stack) == 1
        assert pane(app).config.scheme == "lecun_normal" and pane(app).config.activation == "tanh"
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_a_resize_behind_a_dialog_reaches_the_main_screen():
    # the small-terminal classes went to whichever screen was on top
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        wide = app.query_one("#selectors").size.width
        await pilot.press("question_mark")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.query_one("#selectors").size.width < wide
        assert not app.query_one("Header").display  # short: the header gives its row


async def test_theme_switching_recolors_the_plots():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        before = pane(app).plot_request.colors
        app.theme = "initscope-light"
        await pilot.pause()
        await settle(app, pilot)
        assert pane(app).plot_request.colors != before
        assert pane(app).plot_request.colors[0] == "#005a9c"
        await pilot.press("t")
        await settle(app, pilot)
        assert app.theme != "initscope-light"


async def test_sparklines_carry_the_core_numbers():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        from textual.widgets import Sparkline
        result = Simulator().run(SMALL)
        spark = app.query_one(SparklinePanel).query_one(".act-std").query_one(".measured",
                                                                            Sparkline)
        import math
        expected = [math.log10(float(f"{lay.activation.std:.3g}")) for lay in result.layers]
        assert list(spark.data) == pytest.approx(expected)


async def test_a_burst_of_random_keys_ends_on_the_last_config():
    keys = ["s", "S", "a", "A", "left_square_bracket", "right_square_bracket", "g", "G", "b",
            "r", "v", "x", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "pagedown",
            "pageup", "up", "down", "left", "right", "left_curly_bracket", "space",
            "full_stop", "R"]
    rng = random.Random(7)
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await burst(app, [rng.choice(keys) for _ in range(200)] + ["R"])
        await settle(app, pilot, rounds=200)
        assert screen_rows(app) == core_rows(pane(app).config)
        assert pane(app).shown.config == pane(app).config


async def test_quit_key_exits_mid_run():
    app = InitScopeApp(Config(depth=200, width=(1000,), batch=1000))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("q")
    assert app.return_code == 0


async def test_phase_view_and_moving_the_marker():
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.meanfield import config_sigmas, phase_point

    app = InitScopeApp(SMALL.replace(scheme="lecun_normal"))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        while pane(app).view != "phase":
            await pilot.press("v")
        await settle(app, pilot)
        assert not app.query_one(HistogramGrid).display
        assert app.query_one(".diagram").display
        await pilot.press("shift+right", "shift+up")
        await settle(app, pilot)
        sw2, sb2, _ = config_sigmas(pane(app).config)
        assert sw2 == pytest.approx(1.1) and sb2 == pytest.approx(0.02)
        point = phase_point(ACTIVATIONS["tanh"], sw2, sb2)
        shown = str(app.query_one(".diagram").render())
        assert f"χ1 = {point.chi_1:.3g} ({point.phase})" in shown
        assert screen_rows(app) == core_rows(pane(app).config)  # the numbers followed


async def test_on_a_short_terminal_the_phase_diagram_gets_the_room():

    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        while pane(app).view != "phase":
            await pilot.press("v")
        await settle(app, pilot)
        panel = app.query_one(".diagram")
        assert not app.query_one(SparklinePanel).display
        assert not app.query_one(LayerTable).display
        lines = str(panel.render()).splitlines()
        assert len(lines) <= panel.content_size.height  # legend and notes included
        assert "shift+" in lines[-1]
        while pane(app).view in DIAGRAM_VIEWS:  # the histograms again: the rest comes back
            await pilot.press("v")
        await settle(app, pilot)
        assert app.query_one(SparklinePanel).display and app.query_one(LayerTable).display
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_stepping_through_a_data_dependent_init():
    app = InitScopeApp(SMALL.replace(scheme="lsuv", depth=3))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        assert pane(app).config.init_steps == -1
        seen = []
        for _ in range(5):
            await pilot.press("i")
            await settle(app, pilot)
            seen.append(pane(app).config.init_steps)
            assert screen_rows(app) == core_rows(pane(app).config)
        assert seen == [0, 1, 2, 3, -1]
        assert "init iteration" in str(app.query_one("#status").render())


@pytest.mark.parametrize("arch,prefix", [("residual", "B"), ("rnn", "t")])
async def test_architecture_views(arch, prefix):
    cfg = SMALL.replace(scheme="he_normal", activation="relu", time_steps=12)
    app = InitScopeApp(cfg)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*f"Network: {arch}")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        assert pane(app).config.arch == arch
        titles = plot_titles(app)
        assert titles and all(t.startswith(prefix) for t in titles)
        assert screen_rows(app) == core_rows(pane(app).config)
        assert len(screen_rows(app)) == pane(app).config.row_count()


async def test_spectrum_view():
    from initscope.sim.spectrum import jacobian_spectrum

    app = InitScopeApp(SMALL.replace(scheme="orthogonal", activation="linear", inputs=64))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        while pane(app).view != "spectrum":
            await pilot.press("v")
        await settle(app, pilot)
        shown = str(app.query_one(".diagram").render())
        data = jacobian_spectrum(pane(app).config).to_dict()
        assert "mean square 1 " in shown and data["mean_squared"] == pytest.approx(1.0)
        await pilot.press("s")  # another scheme: the spectrum follows
        await settle(app, pilot)
        assert "singular values" in str(app.query_one(".diagram").render())


async def test_spp_view_follows_the_keys():
    from initscope.report import fmt

    app = InitScopeApp(SMALL.replace(arch="residual", norm="nf", activation="relu",
                                     scheme="he_normal"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("V")  # the last view: the signal propagation plot
        await settle(app, pilot)
        assert pane(app).view == "spp"
        last = pane(app).shown.result.spp[-1]
        shown = str(app.query_one(".diagram").render())
        assert f"→{fmt(last.variance, 3)}" in shown and "theory at B6" in shown
        await pilot.press("N")  # nf -> none: plain He blocks, only the sum predicted
        await settle(app, pilot)
        assert pane(app).config.norm == "none"
        assert "theory: the sum v + m only" in str(app.query_one(".diagram").render())
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        main(app).set_view("spp")
        await settle(app, pilot)
        assert "measures residual blocks" in str(app.query_one(".diagram").render())


async def test_code_dialog_and_share_string():
    from initscope.sim.share import decode
    from initscope.tui.screens import CodeScreen

    app = InitScopeApp(SMALL.replace(scheme="he_normal", activation="relu"))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        assert isinstance(app.screen, CodeScreen)
        assert "kaiming" in app.screen.snippets["pytorch"] or \
            "normal_" in app.screen.snippets["pytorch"]
        assert decode(app.screen.snippets["share"]) == pane(app).config
        await pilot.press("y")
        assert app.clipboard == app.screen.snippets["share"]
        await pilot.press("escape")
        assert not isinstance(app.screen, CodeScreen)


async def test_export_writes_svg_csv_and_json(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press_and_finish(app, pilot, "e")
    stem = "initscope-plain-normal-tanh-d6-w64-s0"
    assert (tmp_path / f"{stem}.svg").read_text().startswith("<svg")
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    assert data["config"]["depth"] == 6 and len(data["layers"]) == 6
    assert (tmp_path / f"{stem}.csv").read_text().splitlines()[0].startswith("layer,")


async def test_compare_draws_a_signal_propagation_plot_per_side():
    from initscope.report import fmt
    from initscope.tui.scope.compare import CompareScreen

    base = SMALL.replace(arch="residual", activation="relu", scheme="he_normal")
    app = InitScopeApp(base, compare=(base.replace(norm="batch"), base.replace(norm="nf")))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        await settle(app, pilot, screen=screen)
        await pilot.press("V")  # from activations back to the signal propagation plot
        await settle(app, pilot, screen=screen)
        for side in screen.panes.values():
            assert side.view == "spp"
            last = side.shown.result.spp[-1]
            assert f"→{fmt(last.variance, 3)}" in str(side.query_one(".diagram").render())
        screen.set_view("phase")  # the phase diagram needs the whole width
        assert all(side.view == "spp" for side in screen.panes.values())


async def test_compare_sides_share_draws_and_keys_change_the_active_side():
    from initscope.sim.parse import parse_overrides
    from initscope.tui.scope.compare import CompareScreen

    a = parse_overrides("scheme=xavier_normal", SMALL.replace(activation="relu"))
    b = parse_overrides("scheme=he_normal", SMALL.replace(activation="relu"))
    app = InitScopeApp(SMALL, compare=(a, b))

    async def wait_sides(pilot):
        for _ in range(300):
            await pilot.pause(0.02)
            screen = app.screen
            if isinstance(screen, CompareScreen) and screen.settled() and not screen.workers:
                return screen
        raise AssertionError("compare did not settle")

    def side_rows(screen, side):
        from initscope.tui.widgets.table import LayerTable
        return [tuple(line.split()) for line in screen.query_one(f"#pane-{side} LayerTable",
                                                                 LayerTable).lines()]

    async with app.run_test(size=(160, 45)) as pilot:
        screen = await wait_sides(pilot)
        assert side_rows(screen, "A") == core_rows(a) and side_rows(screen, "B") == core_rows(b)
        await pilot.press("g")  # gain up on side A only
        screen = await wait_sides(pilot)
        assert screen.sides["A"].gain == 1.1 and screen.sides["B"].gain == 1.0
        await pilot.press("w", "a")  # now side B's activation
        screen = await wait_sides(pilot)
        assert screen.sides["B"].activation != "relu" and screen.sides["A"].activation == "relu"
        await pilot.press("r")  # a new seed goes to both: the draws stay shared
        screen = await wait_sides(pilot)
        assert screen.sides["A"].seed == screen.sides["B"].seed == 1
        for side in ("A", "B"):
            assert side_rows(screen, side) == core_rows(screen.sides[side])
        await pilot.press("escape")
        await settle(app, pilot)
        assert pane(app).config == screen.sides["B"]  # back to one network: the active side


def test_compare_overrides_are_checked():
    from initscope.sim import ConfigError
    from initscope.sim.parse import parse_overrides

    assert parse_overrides("scheme=he_normal, gain=2, width=8", SMALL).gain == 2.0
    for bad in ("scheme", "nope=1", "depth=x", "depth=0", "widths=3", "replace=1",
                "to_dict=1", "__class__=x", "depth=8.5"):
        with pytest.raises(ConfigError):
            parse_overrides(bad, SMALL)


async def test_range_and_bins_change_the_screen_without_a_new_run():
    app = InitScopeApp(SMALL.replace(depth=3))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        runs, config = pane(app).runs_started, pane(app).config
        before = [str(p.render()) for p in app.query("HistogramPlot") if p.display]
        await pilot.press("x")  # per-layer x-ranges
        await settle(app, pilot)
        assert not pane(app).shared_range
        per_layer = [str(p.render()) for p in app.query("HistogramPlot") if p.display]
        assert per_layer != before
        await pilot.press("h", "h")  # 30 -> 50 -> 80 bins
        await settle(app, pilot)
        assert pane(app).bins == 80
        assert "80 bins" in str(app.query_one(HistogramGrid).border_subtitle)
        await pilot.press("H")
        await settle(app, pilot)
        assert pane(app).bins == 50
        # the same config, the same run: only the kept samples were binned again
        assert pane(app).runs_started == runs and pane(app).config is config
        hists = pane(app).shown.result.histograms("activation", 50, shared=False)
        assert len(hists[0].counts) == 50


async def test_a_training_worker_that_raises_leaves_training_stopped_and_the_app_usable(
        monkeypatch):
    from initscope.sim.training import Trainer

    def broken_step(self):
        raise RuntimeError("the step broke")

    monkeypatch.setattr(Trainer, "step", broken_step)
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("space")
        for _ in range(200):
            await pilot.pause(0.01)
            if not main(app).training:
                break
        assert not main(app).training
        head = str(app.query_one("#train-head").render())
        assert "stopped: RuntimeError: the step broke" in head
        assert "training stopped" in str(app.query_one("#status").render())
        await pilot.press("a")  # still answers keys, and runs the core
        await settle(app, pilot)
        assert pane(app).config.activation == "sigmoid"
        assert screen_rows(app) == core_rows(pane(app).config)


async def test_user_keymap_rebinds_by_id_and_a_broken_one_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "initscope"
    folder.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (folder / "keys.toml").write_text('scheme-up = "z"\n')
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("z")
        await settle(app, pilot)
        assert pane(app).config.scheme == "uniform"
    (folder / "keys.toml").write_text('no-such-key = "z"\n')
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
        assert any("keys.toml" in m and "no-such-key" in m for m in messages)
        await pilot.press("s")  # the default keys still work
        await settle(app, pilot)
        assert pane(app).config.scheme == "uniform"


async def test_every_architecture_in_the_registry_is_reachable_in_the_app():
    from initscope.sim.arch import ARCHS

    app = InitScopeApp(SMALL)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        app.query_one("#sel-arch").focus()
        seen = []
        for _ in ARCHS:
            seen.append(pane(app).config.arch)
            assert screen_rows(app) == core_rows(pane(app).config)
            await pilot.press("right")
            await settle(app, pilot)
        assert seen == list(ARCHS)


async def test_a_conv_network_brings_its_batch_and_its_kernel_schemes():
    app = InitScopeApp(Config(depth=3, width=(64,), inputs=64))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("up")  # Network
        assert app.focused.id == "sel-arch"
        for arch in ("residual", "rnn", "conv"):
            await pilot.press("right")
            await settle(app, pilot)
            assert pane(app).config.arch == arch
        # the dense default batch of 1000 images would be 30 times the work
        assert pane(app).config.batch == 32
        main(app).propose(scheme="flax_dense")
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        assert pane(app).config.scheme == "dirac"
        assert screen_rows(app) == core_rows(pane(app).config)
        main(app).propose(batch=64)  # set by hand: it stays
        assert app.focused.id == "sel-arch"
        await pilot.press("right", "right")  # resconv, then the transformer
        await settle(app, pilot)
        # Dirac is a kernel's: the transformer refuses it, and the config stays resconv
        assert pane(app).config.arch == "resconv"
        main(app).propose(scheme="normal")
        await settle(app, pilot)
        await pilot.press("right", "right")  # the transformer, then plain
        await settle(app, pilot)
        assert (pane(app).config.arch, pane(app).config.batch) == ("plain", 64)
        main(app).propose(scheme="flax_dense")
        await pilot.press("s")
        await settle(app, pilot)
        assert pane(app).config.scheme == "lsuv"  # no kernel-only scheme on a dense stack


async def test_the_sweep_screen_trains_every_width_and_draws_the_coordinate_check():
    from initscope.sim.sweep import SweepSpec, sweep
    from initscope.tui.scope.sweeping import SweepScreen, sweep_config

    app = InitScopeApp(Config(scheme="he_normal", activation="relu", depth=3, width=(64,),
                              inputs=64))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("W")
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        await wait_for(pilot, lambda: screen.results is not None and screen.drawn_key)
        assert "15 networks trained" in str(screen.query_one("#sweep-status").render())
        # the numbers are the core's: the same sweep run here
        expected = sweep(sweep_config(pane(app).config, "adam"), SweepSpec(param="mup"))[0]
        assert screen.results[0].mean_l1().tolist() == expected.mean_l1().tolist()
        legend = str(screen.query_one("#sweep-legend").render())
        assert legend.startswith("step 0 of 3") and "o output -0.4" in legend
        await pilot.press("right")
        await wait_for(pilot, lambda: screen.drawn_key[1] == 1)
        assert "step 1 of 3" in str(screen.query_one("#sweep-legend").render())
        await pilot.press("p")  # mup -> sp: a new sweep
        await wait_for(pilot, lambda: screen.results and screen.results[0].spec.param == "sp")
        assert "sp, base width 64" in str(screen.query_one("#sweep-title").render())
        await pilot.press("p", "escape")  # ntk, closed at once: nothing waits for it
        await pilot.pause()
        assert not isinstance(app.screen, SweepScreen)
        assert screen.cancel.is_set()


async def test_the_inspect_screen_lists_the_tensors_and_draws_the_selected_one(tmp_path):
    import numpy as np
    from textual.widgets import DataTable

    from initscope.tui.scope.inspecting import InspectScreen
    from tests.sim.test_inspection import _model

    path = tmp_path / "model.npz"
    np.savez(path, **_model())
    app = InitScopeApp(SMALL, inspect=str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        await wait_for(pilot, lambda: screen.tensors is not None)
        table = screen.query_one(DataTable)
        assert table.row_count == 5
        assert [str(c) for c in table.get_row_at(0)] == ["fc1.weight", "256x64", "he_normal"]
        title = str(screen.query_one("#inspect-title").render())
        assert "5 tensors; weights: 1 he_normal, 1 torch default" in title
        await wait_for(pilot, lambda: "*" in str(screen.query_one("#inspect-plot").render()))
        await pilot.press("down")
        await wait_for(pilot, lambda: "fc1.bias" in str(screen.query_one("#inspect-stats")
                                                         .render()))
        assert "matches: zeros" in str(screen.query_one("#inspect-stats").render())
        assert "dense chain (tanh, the last linear)" in str(
            screen.query_one("#inspect-chain").render())
        await pilot.press("up", "s")  # fc1.weight's singular values: an init's
        await wait_for(pilot, lambda: "none beyond" in str(screen.query_one("#inspect-plot")
                                                          .render()))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, InspectScreen)
    path.write_bytes(b"not a zip")
    app = InitScopeApp(SMALL, inspect=str(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await wait_for(pilot, lambda: "not a readable npz file" in str(
            app.screen.query_one("#inspect-title").render()))
