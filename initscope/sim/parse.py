"""Text and loose values into a Config: the one way in for every source.

The CLI's options, `--compare` overrides, scene files (TOML values), share strings
(JSON values) and the values typed into the app all come through `config_from`, so
they accept and refuse the same things with the same words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from initscope.sim.arch import with_arch
from initscope.sim.config import Config, ConfigError, parse_width
from initscope.sim.validation import validate

FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# display settings that older share strings and scenes carried: accepted, ignored
DISPLAY_ONLY = frozenset({"bins", "hist_range"})
_KINDS = {"int": int, "float": float, "str": str}


def field_name(name: str) -> str:
    """`bias-value` and `bias_value` both name the field bias_value."""
    key = str(name).strip().replace("-", "_")
    if key not in FIELDS and key not in DISPLAY_ONLY:
        raise ConfigError(f"unknown option {str(name)[:40]!r}; options are "
                          f"{', '.join(FIELDS)}")
    return key


def _label(name: str) -> str:
    return name.replace("_", "-")


def coerce(name: str, value: object) -> object:
    """`value` (text, or a number or list from TOML or JSON) as field `name` stores it."""
    if name == "width":
        if isinstance(value, str):
            return parse_width(value)
        items = value if isinstance(value, list | tuple) else [value]
        if not items or not all(isinstance(w, int) and not isinstance(w, bool) for w in items):
            raise ConfigError("width must be a whole number or a list of them")
        return tuple(items)
    kind = _KINDS.get(FIELDS[name].type, FIELDS[name].type)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            return kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{_label(name)} needs {noun}, not {text[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (float, int) if kind is float else kind):
        noun = {int: "a whole number", float: "a number", str: "a name"}[kind]
        raise ConfigError(f"{_label(name)} needs {noun}, not {str(value)[:40]!r}")
    return float(value) if kind is float else value


def config_from(values: Mapping[str, object], base: Config | None = None,
                arch_defaults: bool = True) -> Config:
    """A validated Config: `base` (default: the defaults) with `values` on top. A new
    network brings its own defaults for the fields `base` left at the old one's (a
    transformer's batch of 8 sequences, not 1000), unless `arch_defaults` is False
    (a share string names every field that differs from the defaults)."""
    changes = {}
    for name, value in values.items():
        key = field_name(name)
        if key not in DISPLAY_ONLY:
            changes[key] = coerce(key, value)
    base = base or Config()
    if arch_defaults and changes.get("arch", base.arch) != base.arch:
        base = with_arch(base, changes["arch"])
    return validate(dataclasses.replace(base, **changes))


def parse_overrides(text: str, base: Config) -> Config:
    """`scheme=he_normal,gain=1.5` on top of `base`."""
    values = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"give name=value pairs of config options, not {part[:40]!r}")
        values[key] = value
    return config_from(values, base)
