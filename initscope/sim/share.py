"""Share strings: a whole config in one short, copyable line.

The text is `is1.` followed by URL-safe base64 of the zlib-compressed JSON of the
fields that differ from the defaults (floats as Python writes them, so they come
back bit for bit). Decoding validates, so a damaged string is refused, not guessed:
bytes after the compressed stream, a body that inflates past MAX_JSON_BYTES (a
config is a few hundred), JSON nested deeper than a config's, an empty string.
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
MAX_JSON_BYTES = 64 * 1024  # far more than any config: bounds a "zip bomb"
MAX_TEXT = 16 * 1024  # characters of share string read at all


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
    if not text.startswith(PREFIX) or len(text) == len(PREFIX):
        raise ConfigError(f"not an initscope share string (they start with {PREFIX!r})")
    if len(text) > MAX_TEXT:
        raise ConfigError(f"the share string is {len(text)} characters long: a config's is "
                          "a few hundred at most")
    body = text[len(PREFIX):]
    damaged = ConfigError("the share string is damaged: copy it again in full")
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)),
                                 MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES or not inflate.eof or inflate.unused_data:
            raise damaged  # too big to be a config, cut short, or bytes after its end
        if _depth(raw) > 3:
            raise damaged  # a config nests one list in one object
        changed = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError, RecursionError):
        raise damaged from None
    if not isinstance(changed, dict):
        raise ConfigError("the share string does not describe a config")
    try:
        return config_from(changed, arch_defaults=False)
    except ConfigError as e:
        raise ConfigError(f"the share string has a bad value: {e}") from None


def _depth(raw: bytes) -> int:
    """How deep the brackets of a JSON text nest (strings not told apart: a config's
    strings hold no brackets, and a false alarm only refuses a damaged string)."""
    depth = deepest = 0
    for byte in raw:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest
