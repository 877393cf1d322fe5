"""Scenes: every built-in loads; broken files name the line; keys step through them."""

from functools import cache

import numpy as np
import pytest

from initscope.scenes import SceneError, builtin_scenes, load_scene, parse_scene
from initscope.sim import Simulator
from initscope.tui.app import InitScopeApp
from tests.tui.helpers import core_rows, main, pane, screen_rows, settle


@cache
def _run(cfg):
    """Each scene step's run, once for every test here."""
    return Simulator().run(cfg)


EXPECTED = {"course_tour", "symmetry", "he_vs_xavier", "residual", "rnn", "check_the_notes",
            "normalization", "convolutions", "coordinate_check", "transformer_norms",
            "gpt2_scaling", "attention_collapse"}


def test_every_builtin_scene_loads_and_runs():
    assert set(builtin_scenes()) == EXPECTED
    for name in builtin_scenes():
        scene = load_scene(name)
        assert scene.steps and scene.title
        for step in scene.steps:
            assert 20 < len(step.caption) < 300  # one or two sentences
            _run(step.config)


def test_the_transformer_scenes_show_what_their_captions_say():
    def meters(name):
        return [_run(step.config).meters for step in load_scene(name).steps]

    pre, _, post, _, deepnet, rms = meters("transformer_norms")
    assert pre[-1].stream_variance == pytest.approx(24, rel=0.15)  # about a unit a block
    assert post[-1].stream_variance == pytest.approx(1, abs=1e-3)
    ratio = post[-1].grad_norms["mlp"] / pre[-1].grad_norms["mlp"]
    assert ratio == pytest.approx(24 ** 0.5, rel=0.3)  # about sqrt(L) (Xiong et al.)
    assert post[-1].similarity > 0.99 and pre[-1].similarity < 0.8
    assert abs(deepnet[-1].similarity) < 0.02
    assert deepnet[-1].grad_norms["mlp"] == pytest.approx(deepnet[0].grad_norms["mlp"],
                                                           rel=0.05)
    assert rms[-1].stream_variance == pytest.approx(pre[-1].stream_variance, rel=0.05)
    short, deep, gpt2, small, zero = meters("gpt2_scaling")
    grow_short, grow_deep = short[-1].stream_variance - 1, deep[-1].stream_variance - 1
    assert grow_deep / grow_short == pytest.approx(4, rel=0.25)  # linear in depth
    assert abs(gpt2[-1].stream_variance - 1) < 0.05 and small[-1].stream_variance < 1.15
    assert all(m.attention_variance == m.mlp_variance == 0 for m in zero)
    assert zero[0].grad_norms["o"] > 0 and zero[0].grad_norms["q"] == 0
    kept, collapsed, correlated, uniform, full = meters("attention_collapse")
    assert abs(kept[-1].similarity) < 0.02 and collapsed[-1].similarity > 0.99
    assert correlated[-1].similarity == pytest.approx(0.5, abs=0.03)
    assert all(m.entropy == pytest.approx(1, abs=1e-6) for m in uniform)
    assert full[0].similarity > collapsed[0].similarity


def test_course_tour_follows_the_notes():
    steps = load_scene("course_tour").steps
    assert [(s.config.scheme, s.config.activation) for s in steps] == [
        ("normal", "tanh"), ("normal", "tanh"), ("lecun_normal", "tanh"),
        ("lecun_normal", "relu"), ("he_normal", "relu")]
    assert [s.config.std for s in steps[:2]] == [0.01, 1.0]


def test_check_the_notes_shows_variance_two():
    # a finite network's variance wanders around the prediction (the more, the narrower
    # and deeper): width 100 stays within 15% of 2, far from the notes' 1.36 and 0.93
    narrow, wide = load_scene("check_the_notes").steps
    measured = [lay.preactivation.std ** 2 for lay in Simulator().run(narrow.config).layers]
    for got, notes in zip(measured, [2.0, 1.3632, 0.9290]):
        assert got == pytest.approx(2.0, rel=0.15)
        if notes != 2.0:
            assert abs(got - notes) > 3 * abs(got - 2.0)
    for lay in Simulator().run(wide.config).layers:
        assert lay.preactivation.std ** 2 == pytest.approx(2.0, rel=0.2)


def test_the_normalization_scene_shows_what_its_captions_say():
    import math

    steps = [Simulator().run(step.config).layers for step in load_scene("normalization").steps]
    tiny, batch_norm, _, layer_norm, he_blocks, pre, post, bn_resnet, nf = steps
    assert tiny[-1].activation.std < 1e-8  # gone by layer 10
    assert tiny[1].activation.std / tiny[0].activation.std == pytest.approx(0.113, rel=0.05)
    assert all(lay.preactivation.std == pytest.approx(1, abs=0.01) for lay in batch_norm)
    g = [lay.gradient.std ** 2 for lay in batch_norm]
    assert (g[0] / g[-1]) ** (1 / 9) == pytest.approx(math.pi / (math.pi - 1), rel=0.05)
    g = [lay.gradient.std ** 2 for lay in layer_norm]
    assert (g[0] / g[-1]) ** (1 / 9) == pytest.approx(1.0, abs=0.05)
    assert he_blocks[3].activation.std ** 2 == pytest.approx(3 ** 4, rel=0.2)
    assert [round(lay.activation.std ** 2) for lay in pre[:5]] == [3, 5, 7, 9, 11]
    assert all(lay.activation.std == pytest.approx(1, abs=1e-3) for lay in post)
    assert all(lay.activation.std ** 2 == pytest.approx(1 + k * 0.04, rel=0.05)
               for k, lay in enumerate(nf, start=1))
    spp = Simulator().run(load_scene("normalization").steps[7].config).spp
    # linear: each block adds 2 (1 - 1/pi) = 1.36 to the channel variance
    assert all(1.2 < step < 1.55 for step in np.diff([row.variance for row in spp]))


def test_the_convolutions_scene_shows_what_its_captions_say():
    steps = [Simulator().run(step.config) for step in load_scene("convolutions").steps]
    he, torch_default, small, means, bn, dirac, delta, plain, bn_res, nf = steps
    assert he.layers[-1].activation.std == pytest.approx(he.layers[0].activation.std, rel=0.3)
    shrink = [lay.activation.std for lay in torch_default.layers]
    assert all(b < a / 2 for a, b in zip(shrink[:4], shrink[1:4]))
    floor = torch_default.layers[-1]  # the bias's fixed point, predicted
    assert floor.activation.std == pytest.approx(floor.theory.activation_std, rel=0.25)
    # on an 8 x 8 image the border pixels (28 of 64) pull the average down, as predicted
    assert small.layers[0].preactivation.std < he.layers[0].preactivation.std
    assert small.layers[0].theory.preactivation_std < he.layers[0].theory.preactivation_std
    assert means.layers[-1].channel_mean.std > 0.1 * means.layers[-1].activation.std
    assert all(lay.preactivation.std == pytest.approx(1, abs=0.01) for lay in bn.layers)
    assert len({round(lay.activation.std, 9) for lay in dirac.layers}) == 1  # relu(x) throughout
    stds = [lay.activation.std for lay in delta.layers]
    assert stds[-1] / stds[9] > 0.6  # slow: a power law in depth, not a geometric decay
    assert stds[-1] == pytest.approx(delta.layers[-1].theory.activation_std, rel=0.05)
    growth = [row.variance + row.squared_mean for row in plain.spp]
    assert all(b / a > 1.5 for a, b in zip(growth, growth[1:]))
    steps_bn = np.diff([row.variance for row in bn_res.spp])
    assert np.all(steps_bn > 0) and steps_bn.max() / steps_bn.min() < 1.6
    for k, row in enumerate(nf.spp, start=1):
        assert row.variance == pytest.approx(1 + k * 0.04, rel=0.1)


def test_the_coordinate_check_scene_opens_the_sweeps_its_captions_describe():
    steps = load_scene("coordinate_check").steps
    assert [s.sweep for s in steps] == ["sp", "sp", "mup", "ntk", "depth"]


async def test_a_scene_step_with_a_sweep_opens_the_sweep_screen():
    from initscope.tui.scope.sweeping import SweepScreen

    app = InitScopeApp(scene=load_scene("coordinate_check"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, SweepScreen)
        assert app.screen.param == "sp" and "step 0 every hidden layer" in str(
            app.screen.query_one("#sweep-caption").render())
        await pilot.press("n")  # step 2, from the sweep screen itself
        await pilot.pause()
        await pilot.press("n")  # step 3: muP
        await pilot.pause()
        assert isinstance(app.screen, SweepScreen) and app.screen.param == "mup"
        assert main(app).scene_index == 2
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SweepScreen)


# the line of the bad value, not of its step's header
@pytest.mark.parametrize("text,line,words", [
    ('title = "x"\n[[step]]\ncaption = "ok"\nconfig = { depth = 0 }\n', 4, "depth must be"),
    ('[[step]]\ncaption = "a"\n\n[[step]]\ncaption = "b"\nview = "sideways"\n', 6, "view"),
    ('[[step]]\ncaption = "a"\nconfig = { nope = 1 }\n', 3, "unknown option"),
    ('[[step]]\ncaption = "a"\nsweep = "wide"\n', 3, "sweep must be one of"),
    ('[[step]]\ncaption = \n', 2, "Invalid"),
    ('[[step]]\ncaption = "a"\nconfig = { width = 8192, batch = 65536, depth = 100 }\n', 3,
     "GiB"),
])
def test_broken_scenes_name_the_line(text, line, words):
    with pytest.raises(SceneError) as err:
        parse_scene(text, "mine.toml")
    assert f"mine.toml line {line}" in str(err.value) and words in str(err.value)


def test_cli_refuses_a_broken_scene(tmp_path, capsys):
    from initscope.cli import main

    path = tmp_path / "broken.toml"
    path.write_text('[[step]]\ncaption = "a"\nconfig = { scheme = "nope" }\n')
    with pytest.raises(SystemExit) as code:
        main(["--scene", str(path)])
    err = capsys.readouterr().err
    assert code.value.code == 2 and "broken.toml line 3" in err and "unknown scheme" in err


async def test_keys_step_through_a_scene():
    scene = load_scene("course_tour")
    app = InitScopeApp(scene=scene)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(app, pilot)
        caption = app.query_one("#caption")
        for index, key in [(1, "n"), (2, "pagedown"), (1, "p"), (0, "pageup"), (0, "pageup"),
                           (4, "n n n n n")]:
            for k in key.split():
                await pilot.press(k)
            await settle(app, pilot)
            step = scene.steps[index]
            assert main(app).scene_index == index and pane(app).config == step.config
            assert pane(app).view == step.view
            assert str(caption.render()) == step.caption
            assert f"step {index + 1} of 5" in caption.border_title
            assert screen_rows(app) == core_rows(step.config)


async def test_scene_step_with_training():
    scene = load_scene("symmetry")
    app = InitScopeApp(scene=scene)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        for _ in range(200):
            await pilot.pause(0.02)
            history = main(app).shown_history
            if history and history[-1].step == 40 and not main(app).training:
                break
        assert main(app).shown_history[-1].step == 40
        assert all(lay.distinct_units == 1 for lay in main(app).shown_history[-1].layers)


def test_every_scene_step_that_trains_runs_500_steps_without_diverging():
    import math

    from initscope.sim.training import Trainer

    trained = 0
    for name in builtin_scenes():
        for step in load_scene(name).steps:
            if not step.train:
                continue
            trainer = Trainer(step.config)
            records = trainer.run(500, stop_on_divergence=True)
            assert trainer.stopped is None and len(records) == 500, (name, step.caption)
            assert all(math.isfinite(r.loss) for r in records)
            if step.config.scheme in ("zeros", "constant"):  # the lesson: one unit a layer
                assert all(lay.distinct_units == 1 for r in records for lay in r.layers)
            trained += 1
    assert trained >= 3


@pytest.mark.parametrize("make", ["nested", "bom", "latin-1", "folder", "fifo", "device"])
def test_scene_files_that_cannot_be_scenes_get_one_line(tmp_path, make):
    import os

    path = tmp_path / "s.toml"
    good = 'title = "t"\n[[step]]\ncaption = "c"\nconfig = { depth = 3 }\n'
    if make == "nested":
        path.write_text(good.replace("depth = 3", "width = " + "[" * 5000 + "]" * 5000))
    elif make == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + good.encode())
    elif make == "latin-1":
        path.write_bytes(good.replace('"c"', '"caf\xe9"').encode("latin-1"))
    elif make == "folder":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    if make == "bom":
        assert load_scene(str(path)).steps[0].config.depth == 3  # an editor's mark is fine
        return
    with pytest.raises(SceneError) as e:
        load_scene(str(path))
    message = str(e.value)
    assert message.startswith("s.toml: ") and "\n" not in message and len(message) < 120
