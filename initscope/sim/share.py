"""Share strings: a whole config in one short, copyable line.

The text is `is1.` followed by URL-safe base64 of the zlib-compressed JSON of the
fields that differ from the defaults (floats as Python writes them, so they come
back bit for bit). Decoding validates, so a damaged string is refused, not guessed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import zlib

from initscope.sim.config import Config, ConfigError, validate

PREFIX = "is1."


def encode(cfg: Config) -> str:
    """The share string of `cfg`."""
    default = Config()
    changed = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value != getattr(default, f.name):
            changed[f.name] = list(value) if isinstance(value, tuple) else value
    raw = json.dumps(changed, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode(text: str) -> Config:
    """The config a share string encodes; ConfigError if it is not one."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise ConfigError(f"not an initscope share string (they start with {PREFIX!r})")
    body = text[len(PREFIX):]
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        changed = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError):
        raise ConfigError("the share string is damaged: copy it again in full") from None
    names = {f.name: f for f in dataclasses.fields(Config)}
    if not isinstance(changed, dict) or set(changed) - set(names):
        raise ConfigError("the share string names fields this initscope does not have")
    if "width" in changed:
        widths = changed["width"]
        if not isinstance(widths, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) for w in widths):
            raise ConfigError("the share string has a bad value for width")
        changed["width"] = tuple(widths)
    for name, value in changed.items():
        kind = type(getattr(Config(), name))
        if isinstance(value, bool):
            raise ConfigError(f"the share string has a bad value for {name}")
        if kind is float and isinstance(value, int):
            changed[name] = float(value)
        elif not isinstance(value, kind):
            raise ConfigError(f"the share string has a bad value for {name}")
    try:
        return validate(Config(**changed))
    except TypeError:
        raise ConfigError("the share string does not describe a config") from None
