"""Themes from files: shipped ones, the user's own, and broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style

from initscope.tui.app import InitScopeApp
from initscope.tui.themes import builtin_theme_dir, load_themes, theme_from_toml
from tests.tui.helpers import SMALL, pane, settle

SHIPPED = {"initscope-dark", "initscope-light", "projector", "sixteen"}


def test_shipped_themes_load():
    themes, errors = load_themes()
    assert errors == []
    assert SHIPPED <= {t.name for t in themes}
    for path in builtin_theme_dir().glob("*.toml"):
        theme = theme_from_toml(path)
        assert {"histogram-bar", "sparkline-theory"} <= set(theme.variables)


def test_sixteen_color_theme_uses_only_ansi_colors():
    ansi = {"#000000", "#800000", "#008000", "#808000", "#000080", "#800080", "#008080",
            "#C0C0C0", "#808080", "#FF0000", "#00FF00", "#FFFF00", "#0000FF", "#FF00FF",
            "#00FFFF", "#FFFFFF"}
    theme = theme_from_toml(builtin_theme_dir() / "sixteen.toml")
    colors = [theme.primary, theme.secondary, theme.accent, theme.foreground, theme.background,
              theme.surface, theme.panel, theme.success, theme.warning, theme.error,
              *theme.variables.values()]
    assert {c.upper() for c in colors} <= ansi


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


async def test_user_themes_load_and_broken_ones_are_named(tmp_path, monkeypatch):
    themes_dir = tmp_path / "initscope" / "themes"
    _write(themes_dir, "mine.toml", 'name = "mine"\nprimary = "#FF8800"\ndark = true\n')
    _write(themes_dir, "broken.toml", 'name = "broken"\nprimary = \n')
    _write(themes_dir, "badcolor.toml", 'name = "badcolor"\nprimary = "notacolor"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "mine" in app.available_themes
        assert "broken" not in app.available_themes
        assert app.theme == "initscope-dark"
        messages = [n.message for n in app._notifications]
        assert len(messages) == 1
        assert "broken.toml" in messages[0] and "badcolor.toml" in messages[0]
        app.theme = "mine"
        await settle(app, pilot)
        assert pane(app).plot_request.colors[0] == "#ff8800"


async def test_unknown_theme_name_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = InitScopeApp(SMALL, theme_name="nope")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.theme == "initscope-dark"
        assert "nope" in [n.message for n in app._notifications][0]


async def test_builtin_textual_themes_work_too(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = InitScopeApp(SMALL, theme_name="nord")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.theme == "nord"
        assert pane(app).plot_request.colors[0].startswith("#")


async def test_every_available_theme_draws_the_plots(monkeypatch, tmp_path):
    # Textual's ansi-dark and ansi-light name colors "ansi_blue", which Rich cannot
    # parse: the plot worker failed on them until the colors were converted
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for name in sorted(app.available_themes):
            app.theme = name
            await settle(app, pilot)
            bar, axis = pane(app).plot_request.colors
            Style.parse(f"{bar} on {axis}")  # what the plots are styled with
            assert pane(app).plots_key == pane(app).plot_request.key(), name
        assert app.theme == sorted(app.available_themes)[-1]


BASE_THEME = 'name = "t"\nprimary = "#ff0000"\n'


@pytest.mark.parametrize("extra", ["foreground = 5", "[variables]\nhistogram-bar = 5",
                                   'luminosity_spread = "big"', 'dark = "no"',
                                   "luminosity_spread = 1e308", "text_alpha = -1",
                                   "x = " + "{a = " * 3000 + "1" + "}" * 3000])
def test_broken_theme_values_are_named_at_load(tmp_path, extra):
    from initscope.tui.themes import theme_from_toml

    path = tmp_path / "t.toml"
    path.write_text(BASE_THEME + extra + "\n")
    with pytest.raises(ValueError) as e:
        theme_from_toml(path)
    assert "\n" not in str(e.value) and len(str(e.value)) < 120


@pytest.mark.parametrize("special", ["fifo", "device", "folder"])
def test_theme_files_that_are_not_files_are_named_and_skipped(tmp_path, special):
    import os

    from initscope.tui.themes import load_themes

    path = tmp_path / "odd.toml"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    (tmp_path / "fine.toml").write_text(BASE_THEME.replace('"t"', '"fine"'))
    themes, errors = load_themes([tmp_path])
    assert "fine" in {t.name for t in themes}
    assert errors == ["odd.toml: not a regular file"]


def test_a_color_of_the_wrong_type_is_named_as_such(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('name = "t"\nprimary = 5\n')
    with pytest.raises(ValueError, match="primary = 5 is not text"):
        theme_from_toml(path)
