"""Scenes: an ordered list of steps, each a config, a view and a caption, for teaching.

A scene is a TOML file:

    title = "The course tour"
    [[step]]
    caption = "One or two sentences shown large on screen."
    config = { scheme = "normal", std = 0.01 }   # any config option; the rest default
    view = "activation"                          # optional
    train = 40                                   # optional: SGD steps to take
    sweep = "mup"                                # optional: open the sweep screen (sp,
                                                 # ntk, mup, or depth)

Built-in scenes live in initscope/scenes/; `--scene` also takes a path. A broken file
is refused with its name and the line at fault.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from initscope.sim.budget import runnable
from initscope.sim.config import Config, ConfigError
from initscope.sim.memory import MemoryBudgetError
from initscope.sim.parse import config_from
from initscope.textfiles import TextFileError, nesting, read_small_text
from initscope.views import VIEWS

BUILTIN_DIR = Path(__file__).parent / "scenes"


class SceneError(ValueError):
    """A scene that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class SceneStep:
    config: Config
    caption: str
    view: str = "activation"
    train: int = 0
    sweep: str = ""  # "sp", "ntk", "mup" (a width sweep) or "depth": the sweep screen

SWEEPS = ("sp", "ntk", "mup", "depth")


@dataclass(frozen=True)
class Scene:
    name: str
    title: str
    steps: tuple[SceneStep, ...]


def builtin_scenes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.toml"))}


def _step_lines(text: str) -> list[int]:
    """1-based line of each [[step]] header."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == "[[step]]"]


def _line_of(source: list[str], first: int, last: int, key: str) -> int:
    """1-based line of `key = ...` between lines first and last (inclusive), or first."""
    pattern = re.compile(rf"(^|[{{,\s]){re.escape(key)}\s*=")
    for number in range(first, last + 1):
        if pattern.search(source[number - 1]):
            return number
    return first


def _field_named(message: str, values: dict) -> str | None:
    """The config option a refusal is about: one the step sets and the message names."""
    for key in values:
        if key in message or key.replace("_", "-") in message:
            return key
    return None


def _config(values: dict) -> Config:
    """The step's config: the parser every source of config text uses, and the budget."""
    return runnable(config_from(values))


MAX_SCENE_BYTES = 1 << 20  # a scene is a few KB: read no more than this
MAX_NESTING = 8  # a scene nests a list in a table in a table: deeper is not a scene


def parse_scene(text: str, name: str) -> Scene:
    text = text.removeprefix("\ufeff")  # a byte-order mark from some editors
    if nesting(text) > MAX_NESTING:
        raise SceneError(f"{name}: brackets nested more than {MAX_NESTING} deep: not a scene")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        where = f"line {m.group(1)}" if m else "somewhere"
        reason = str(e).split(" (at line")[0]
        raise SceneError(f"{name} {where}: {reason}") from None
    lines = _step_lines(text)
    source = text.splitlines()
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise SceneError(f"{name}: a scene needs at least one [[step]]")
    out = []
    for k, step in enumerate(steps):
        first = lines[k] if k < len(lines) else None
        last = lines[k + 1] - 1 if k + 1 < len(lines) else len(source)

        def fail(reason: str, key: str | None = None, k: int = k, first: int | None = first,
                 last: int = last) -> SceneError:
            """The error at the line of `key` within this step, else at its header."""
            line = _line_of(source, first, last, key) if first and key else first
            return SceneError(f"{name} line {line or '?'} (step {k + 1}): {reason}")

        if not isinstance(step, dict):
            raise fail("a step is a table")
        extra = set(step) - {"caption", "config", "view", "train", "sweep"}
        if extra:
            raise fail(f"unknown key {sorted(extra)[0]!r}", sorted(extra)[0])
        caption = step.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise fail("every step needs a caption", "caption")
        view = step.get("view", "activation")
        if view not in VIEWS:
            raise fail(f"view must be one of {', '.join(VIEWS)}, not {view!r}", "view")
        train = step.get("train", 0)
        if not isinstance(train, int) or isinstance(train, bool) or not 0 <= train <= 10_000:
            raise fail("train is a number of steps, 0-10000", "train")
        sweep = step.get("sweep", "")
        if sweep and sweep not in SWEEPS:
            raise fail(f"sweep must be one of {', '.join(SWEEPS)}, not {sweep!r}", "sweep")
        values = step.get("config", {})
        if not isinstance(values, dict):
            raise fail("config is a table of options", "config")
        try:
            cfg = _config(values)
        except (ConfigError, MemoryBudgetError) as e:
            raise fail(str(e), _field_named(str(e), values) or "config") from None
        out.append(SceneStep(cfg, caption.strip(), view, train, sweep))
    title = data.get("title", name)
    return Scene(name, str(title), tuple(out))


def load_scene(name_or_path: str) -> Scene:
    """A built-in scene by name, or a scene file by path."""
    builtin = builtin_scenes()
    path = builtin.get(name_or_path, Path(name_or_path))
    if not path.exists():
        raise SceneError(f"no scene {name_or_path!r}: built-in ones are "
                         f"{', '.join(builtin)}, or give a path to a .toml file")
    try:
        text = read_small_text(path, MAX_SCENE_BYTES)
    except TextFileError as e:
        raise SceneError(f"{path.name}: {e}") from None
    return parse_scene(text, path.name)
