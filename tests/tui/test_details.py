"""Details a new user trips over: no terminal, cut numbers, labels that lie, presets
that depend on what came before, exports that overwrite, errors at the wrong line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from initscope.presets import PRESETS
from initscope.scenes import SceneError, parse_scene
from initscope.sim import Config
from initscope.tui.app import InitScopeApp
from initscope.tui.display import isometry_verdict
from initscope.tui.widgets.histograms import HistogramGrid
from tests.tui.helpers import SMALL, main, pane, plot_titles, press_and_finish, settle, wait_for


def test_the_app_refuses_to_start_without_a_terminal():
    done = subprocess.run([sys.executable, "-m", "initscope"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "terminal" in lines[0] and "initscope report" in lines[0]


async def test_plot_titles_never_cut_a_number_at_80x24():
    app = InitScopeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for view in ("activation", "gradient"):
            main(app).set_view(view)
            await settle(app, pilot)
            titles = plot_titles(app)
            assert titles and all("…" not in t for t in titles), titles
            result = pane(app).shown.result
            for title, lay in zip(titles, result.layers):
                assert title.split()[0] == f"L{lay.index}"


async def test_the_bias_field_says_std_for_a_normal_bias():
    app = InitScopeApp(SMALL.replace(bias="normal", bias_value=0.1))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert str(app.query_one("#sel-bias_value").render()).split()[0] == "std"
        main(app).propose(bias="constant")
        await settle(app, pilot)
        assert str(app.query_one("#sel-bias_value").render()).split()[0] == "value"


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.key], ids=lambda p: p.name)
def test_a_preset_key_gives_the_same_network_whatever_came_before(preset):
    starts = [Config(), Config(activation="relu", scheme="he_normal", gain=2.0, bias="normal"),
              Config(activation="selu", scheme="orthogonal", std=0.3)]
    assert len({preset.apply(start) for start in starts}) == 1


async def test_an_export_never_overwrites_an_earlier_one(tmp_path, monkeypatch):
    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for _ in range(2):
            await press_and_finish(app, pilot, "e")
        messages = [n.message for n in app._notifications]
    stem = "initscope-plain-normal-tanh-d6-w64-s0"
    for suffix in ("", "-2"):
        for ext in (".svg", ".csv", ".json"):
            assert (tmp_path / f"{stem}{suffix}{ext}").exists()
    assert any("earlier export" in m for m in messages)


async def test_an_export_never_follows_a_planted_link(tmp_path, monkeypatch):
    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    stem = "initscope-plain-normal-tanh-d6-w64-s0"
    (tmp_path / f"{stem}.csv").symlink_to(victim)
    (tmp_path / f"{stem}.json").symlink_to(tmp_path / "nowhere.json")  # dangling
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press_and_finish(app, pilot, "e")
    assert victim.read_text() == "keep me" and not (tmp_path / "nowhere.json").exists()
    assert all((tmp_path / f"{stem}-2{ext}").is_file() for ext in (".svg", ".csv", ".json"))


def test_a_failed_export_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno
    import os

    from initscope.tui.exporting import write_new

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_new(tmp_path / "a.json", "x" * 100_000)
    assert list(tmp_path.iterdir()) == []  # no truncated file, no temporary one
    monkeypatch.undo()
    write_new(tmp_path / "a.json", "{}")
    with pytest.raises(FileExistsError):
        write_new(tmp_path / "a.json", "[]")
    assert (tmp_path / "a.json").read_text() == "{}" and len(list(tmp_path.iterdir())) == 1


async def test_one_visible_layer_is_named_alone():
    app = InitScopeApp(SMALL.replace(depth=3))
    async with app.run_test(size=(60, 40)) as pilot:
        await settle(app, pilot)
        app.query_one(HistogramGrid).jump(True)
        await settle(app, pilot)
        title = str(app.query_one(HistogramGrid).border_title)
        assert "layers 3-3" not in title
        if len(app.query_one(HistogramGrid).visible_layers()) == 1:
            assert "layer 3 of 3" in title


def test_the_spectrum_verdict_follows_the_numbers():
    assert isometry_verdict(0.95, 1.05) == "all near 1: dynamical isometry"
    assert "shrink" in isometry_verdict(0.01, 0.5)
    assert "grow" in isometry_verdict(1.5, 3.0)
    assert "far from isometry" in isometry_verdict(0.01, 5.0)


SCENE = """title = "t"
[[step]]
caption = "one"
config = { scheme = "normal" }

view = "bogus"

[[step]]
caption = "two"
[step.config]
scheme = "normal"
depth = 0
"""


def test_a_scene_error_points_at_the_line_of_the_bad_value():
    with pytest.raises(SceneError, match=r"x.toml line 6 \(step 1\): view"):
        parse_scene(SCENE, "x.toml")
    with pytest.raises(SceneError, match=r"x.toml line 12 \(step 2\): depth"):
        parse_scene(SCENE.replace('view = "bogus"', ""), "x.toml")


def test_help_version_and_preset_list():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "initscope", *args],
                              capture_output=True, text=True, timeout=60)

    help_text = run("report", "--help").stdout
    assert "[default: table]" in help_text and "\\\\[" not in help_text
    assert all(p.name in help_text for p in PRESETS)  # --preset lists them
    from initscope import __version__

    assert run("--version").stdout.strip() == f"initscope {__version__}"


def test_sparklines_draw_a_tiny_change_flat_and_keep_a_real_one():
    from initscope.tui.widgets.sparklines import clean

    assert len(set(clean([0.628, 0.6285, 0.629], log=True))) == 1
    assert len(set(clean([0.628, 0.629], log=False))) == 1
    assert len(set(clean([0.213, 0.0476, 3e-7], log=True))) == 3
    assert clean([1e-4, 4.7e-12], log=False) == [1e-4, 4.7e-12]


async def test_rows_without_a_prediction_draw_no_theory_line():
    app = InitScopeApp(SMALL.replace(scheme="constant", value=0.01))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        spark = app.query_one(".act-std .theory")
        assert not spark.display
        assert "no theory" in str(app.query_one(".act-std .spark-ends").render())
        main(app).propose(scheme="lecun_normal")
        await settle(app, pilot)
        assert app.query_one(".act-std .theory").display


def test_the_phase_diagram_takes_in_the_configs_sigma_w2():
    from initscope.phaseplot import phase_text
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.meanfield import config_sigmas, phase_grid, sw2_range_for

    sw2, sb2, _ = config_sigmas(Config())  # N(0, 0.01^2) at width 500: 0.05
    assert sw2 == pytest.approx(0.05)
    grid = phase_grid(ACTIVATIONS["tanh"], sw2_range=sw2_range_for(sw2))
    text = phase_text(grid, (sw2, sb2)).plain
    assert "●" in text and "◀" not in text
    assert sw2_range_for(1.0) == (0.25, 4.0) and sw2_range_for(9.0)[1] > 9.0


async def test_code_dialog_says_how_copying_works_and_writes_files(tmp_path, monkeypatch):
    from initscope.sim.share import decode

    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert any("OSC 52" in n.message and "set-clipboard" in n.message
                   for n in app._notifications)
        share = str(app.screen.query_one("#share-string").render())
        assert len(share.splitlines()) == 1  # one unbroken line
        for _ in range(2):
            await pilot.press("w")
            await pilot.pause()
    stem = "initscope-plain-normal-tanh-d6-w64-s0"
    assert decode((tmp_path / f"{stem}-share.txt").read_text()) == SMALL
    assert "nn.init" in (tmp_path / f"{stem}-pytorch.py").read_text()
    assert (tmp_path / f"{stem}-2-jax.py").exists()  # the second `w` kept the first


async def test_every_scheme_and_activation_reads_in_full_at_80x24():
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.schemes import SCHEMES
    from initscope.tui.widgets.selectors import SHORT_FORMS

    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for field, names in (("scheme", SCHEMES), ("activation", ACTIVATIONS)):
            selector = app.query_one(f"#sel-{field}")
            selector.focus()
            for name in names:
                scheme = SCHEMES[name] if field == "scheme" else None
                arch = ("conv" if scheme and scheme.conv_only else
                        "transformer" if scheme and scheme.recipe else SMALL.arch)
                main(app).propose(**{field: name, "arch": arch})
                await pilot.pause()
                shown = str(selector.render())
                assert name in shown or SHORT_FORMS.get(name, name) in shown, shown
                assert shown.rstrip().endswith("›"), shown
            main(app).propose(**{field: getattr(SMALL, field)})


async def test_the_table_follows_the_histogram_pages():
    from initscope.tui.widgets.table import LayerTable

    app = InitScopeApp(SMALL.replace(depth=30))
    async with app.run_test(size=(120, 38)) as pilot:
        await settle(app, pilot)
        table = app.query_one(LayerTable)
        assert table.scroll_y == 0
        await pilot.press("ctrl+end")
        await settle(app, pilot)
        first = app.query_one(HistogramGrid).visible_layers()[0]
        assert first > 0 and table.scroll_y == min(first, table.max_scroll_y)
        await pilot.press("ctrl+home")
        await settle(app, pilot)
        assert table.scroll_y == 0


async def test_the_symmetry_meter_is_on_screen_at_80x24():
    cfg = Config(scheme="constant", value=0.01, bias="zeros", lr=0.01, width=(64,))
    app = InitScopeApp(cfg)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("full_stop")
        await wait_for(pilot, lambda: main(app).shown_history, rounds=300)
        await pilot.pause()
        meter = app.query_one("#train-meter")
        assert "fewest: 1 of 64" in str(meter.render())
        # drawn, not only laid out: the meter's text is in what the terminal shows
        assert "fewest:" in app.export_screenshot().replace("&#160;", " ")
        # on a short terminal it takes the room of the sparklines and the table
        assert not app.query_one("SparklinePanel").display


async def test_compare_at_80x24_gives_the_sides_the_width():
    from initscope.tui.scope.compare import CompareScreen

    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen)
                       and app.screen.settled(), rounds=300, seconds=0.02)
        sides = [app.screen.query_one(f"#side-{s}") for s in ("A", "B")]
        assert all(side.region.width >= 38 for side in sides)
        await pilot.press("g")  # keys still change the active side
        await wait_for(pilot, lambda: app.screen.sides["A"].gain != 1.0
                       and app.screen.settled(), rounds=300, seconds=0.02)
        assert app.screen.sides["A"].gain == 1.1


async def test_at_60x20_every_box_keeps_its_bottom_border():
    from initscope.tui.widgets.table import LayerTable

    app = InitScopeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(app, pilot)
        main_area = app.query_one("#main").region
        for box in (app.query_one(LayerTable), app.query_one(HistogramGrid)):
            assert box.region.bottom <= main_area.bottom, box


async def test_the_phase_summary_never_wraps_mid_phrase_at_80x24():
    app = InitScopeApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        main(app).set_view("phase")
        await settle(app, pilot)
        diagram = app.query_one(".diagram")
        lines = str(diagram.render()).splitlines()
        assert any(line.strip().startswith("ξc =") for line in lines)
        assert all(len(line.rstrip()) <= diagram.content_size.width for line in lines), lines


async def test_every_column_of_the_table_fits_at_120x38():
    from initscope.tui.widgets.table import LayerTable

    app = InitScopeApp(Config())  # the course demo: the widest numbers of the default
    async with app.run_test(size=(120, 38)) as pilot:
        await settle(app, pilot)
        table = app.query_one(LayerTable)
        assert table.max_scroll_x == 0, "the table scrolls sideways at 120x38"
        assert table.lines()[0].split()[-1] == "0%"  # sat, the last column


async def test_the_last_layer_keeps_its_axis_labels_with_per_layer_ranges():
    from initscope.tui.widgets.histograms import HistogramPlot

    app = InitScopeApp(Config())
    async with app.run_test(size=(120, 38)) as pilot:
        await settle(app, pilot)
        await pilot.press("x", "ctrl+end")  # x-range per layer, then the last page
        await settle(app, pilot)
        plot = [p for p in app.query(HistogramPlot) if p.display][-1]
        lines = str(plot.render()).splitlines()
        assert lines[0].startswith("L10")
        labels = lines[-1].split()
        assert len(labels) == 3 and all(float(x) == float(x) for x in labels), lines[-1]
        assert float(labels[0]) < float(labels[1]) < float(labels[2])


@pytest.mark.parametrize("width", [50, 80, 120])
def test_the_spectrum_captions_break_between_phrases(width):
    from initscope.sim import Simulator
    from initscope.tui.display import PlotRequest, spectrum_content

    result = Simulator().run(SMALL)
    lines = spectrum_content(PlotRequest(result, "spectrum", (), width, 20, ("red", "white")))
    lines = lines.plain.splitlines()
    assert len(lines) == 20 and all(len(line) <= width for line in lines), lines
    words = " ".join(lines)
    assert "singular values of the input-output Jacobian at" in words
    assert all(not line.startswith(("t ", "·")) for line in lines)  # not mid-word or mid-phrase


async def test_a_served_session_writes_no_files(tmp_path, monkeypatch):
    from initscope.tui.exporting import SERVED_NOTE

    monkeypatch.setenv("INITSCOPE_EXPORT_DIR", str(tmp_path))
    monkeypatch.setenv("INITSCOPE_SERVED", "1")
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press_and_finish(app, pilot, "e", "c", "w")  # export; the code dialog's write
        messages = [n.message for n in app._notifications]
    assert list(tmp_path.iterdir()) == []
    assert messages.count(SERVED_NOTE) == 2


async def test_the_layout_follows_resizes_made_in_compare():
    from initscope.tui.widgets.selectors import SelectorPane

    app = InitScopeApp(SMALL)
    async with app.run_test(size=(150, 45)) as pilot:
        await settle(app, pilot)
        await pilot.resize_terminal(20, 10)
        await pilot.pause()
        await pilot.press("C")
        await pilot.pause(0.3)
        await pilot.resize_terminal(150, 45)
        await pilot.pause()
        await pilot.press("escape")
        await settle(app, pilot)
        assert not app.has_class("-narrow") and not app.has_class("-short")
        assert main(app).query_one(SelectorPane).outer_size.width == 34  # not the narrow 27


def test_exports_go_home_when_the_working_folder_is_gone(tmp_path, monkeypatch):
    # the folder initscope runs in, deleted under it: `c` (which names the export
    # folder) once raised FileNotFoundError from Path.cwd() and ended the app
    import os

    from initscope.tui.exporting import export_folder

    monkeypatch.delenv("INITSCOPE_EXPORT_DIR", raising=False)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    assert export_folder() == gone
    os.rmdir(gone)
    from pathlib import Path

    assert export_folder() == Path.home()
