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

from initscope.sim.config import Config, ConfigError
from initscope.sim.parse import config_from

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
    if not isinstance(changed, dict):
        raise ConfigError("the share string does not describe a config")
    try:
        return config_from(changed)
    except ConfigError as e:
        raise ConfigError(f"the share string has a bad value: {e}") from None
