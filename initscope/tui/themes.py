"""Themes from TOML files: the ones shipped in themes/, then the user's own.

A file holds one Textual theme: `name`, `dark`, the base colors, and a
`[variables]` table for initscope's own colors (plots and sparklines). A file that
fails to load is reported by name; the others still load.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

import initscope
from initscope.textfiles import TextFileError, nesting, read_small_text

DEFAULT_THEME = "initscope-dark"
_COLOR_FIELDS = {"primary", "secondary", "warning", "error", "success", "accent",
                 "foreground", "background", "surface", "panel", "boost"}
_FIELDS = {f.name for f in dataclasses.fields(Theme)}


def builtin_theme_dir() -> Path:
    """themes/ inside the installed wheel, or at the top of a source checkout."""
    package = Path(initscope.__file__).parent
    inside = package / "themes"
    return inside if inside.is_dir() else package.parent / "themes"


def user_theme_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "initscope" / "themes"


MAX_THEME_BYTES = 64 * 1024  # a theme is under 1 KB
_FLOATS = {"luminosity_spread": (0.0, 1.0), "text_alpha": (0.0, 1.0)}
_BOOLS = {"dark", "ansi"}


def theme_from_toml(path: Path) -> Theme:
    """One theme from one file, checked whole (types, ranges, colors, and Textual's
    own color system built once), so a broken file is named at start and never
    fails later when shown; ValueError with a short reason."""
    try:
        text = read_small_text(path, MAX_THEME_BYTES)
        if nesting(text) > 4:
            raise ValueError("tables nested too deep for a theme")
        data = tomllib.loads(text)
    except (TextFileError, tomllib.TOMLDecodeError) as e:
        raise ValueError(str(e).split("\n")[0]) from None
    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    for key in ("name", "primary"):
        if key not in data or data[key] == "":
            raise ValueError(f"'{key}' is missing")
        if not isinstance(data[key], str):
            raise ValueError(f"{key} = {data[key]!r} is not text")
    for key in _BOOLS & set(data):
        if not isinstance(data[key], bool):
            raise ValueError(f"{key} must be true or false, not {data[key]!r}")
    for key, (low, high) in _FLOATS.items():
        if key in data and (isinstance(data[key], bool)
                            or not isinstance(data[key], (int, float))
                            or not low <= data[key] <= high):
            raise ValueError(f"{key} must be a number from {low:g} to {high:g}")
    colors = {k: v for k, v in data.items() if k in _COLOR_FIELDS}
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("[variables] must be a table")
    for key, value in {**colors, **variables}.items():
        if not isinstance(value, str):
            raise ValueError(f"{key} = {value!r} is not a color (colors are text)")
        try:
            Color.parse(value)
        except ColorParseError:
            raise ValueError(f"{key} = {value!r} is not a color") from None
    theme = Theme(**data)
    try:
        theme.to_color_system().generate()  # what Textual does when the theme is shown
    except Exception as e:  # noqa: BLE001 - any failure here is the file's, named once
        raise ValueError(f"Textual cannot use it: {e}") from None
    return theme


def load_themes(extra_dirs: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Every theme that loads, and one line per file that did not."""
    themes, errors = [], []
    for folder in [builtin_theme_dir(), user_theme_dir(), *(extra_dirs or [])]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                themes.append(theme_from_toml(path))
            except ValueError as e:
                errors.append(f"{path.name}: {e}")
    return themes, errors


def rich_color(value: str) -> str:
    """A theme color as Rich writes it, for text styled off the UI thread. Textual
    names ANSI colors "ansi_blue", which Rich does not know: they become "color(4)",
    which keeps the terminal's own palette."""
    try:
        color = Color.parse(value).rich_color
    except ColorParseError:
        return "default"
    return color.name if color is not None else "default"


def variable_defaults(theme: Theme) -> dict[str, str]:
    """initscope's own theme variables, from any theme's base colors, so Textual's
    built-in themes work too; a theme file's [variables] override them."""
    fallback_axis = "#A0A0A0" if theme.dark else "#505050"
    return {
        "histogram-bar": theme.primary,
        "histogram-axis": theme.foreground or fallback_axis,
        "sparkline-measured": theme.primary,
        "sparkline-theory": theme.accent or theme.secondary or theme.primary,
    }


def plot_colors(app) -> tuple[str, str]:
    """(bar, axis) colors of the app's current theme, as Rich color names for text
    built off the UI thread."""
    variables = app.theme_variables or app.get_css_variables()
    return (rich_color(variables.get("histogram-bar") or variables["primary"]),
            rich_color(variables.get("histogram-axis") or variables["foreground"]))
