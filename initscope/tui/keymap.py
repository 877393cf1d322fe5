"""The user's own keys: `$XDG_CONFIG_HOME/initscope/keys.toml` maps binding ids to
keys, as Textual's keymaps do:

    action-train = "t"
    scheme-up = "s,right_square_bracket"

Every binding of the app carries an id (listed by the help screen, `?`). A file that
cannot be used is named in one notification and changes no key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from initscope.textfiles import TextFileError, nesting, read_small_text

MAX_BYTES = 64 * 1024


def keymap_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "initscope" / "keys.toml"


def load_keymap(known_ids: set[str], path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """(binding id -> keys, None), or ({}, why the file was not used). No file is no
    keymap and no error."""
    path = path or keymap_path()
    if not path.exists():
        return {}, None
    try:
        text = read_small_text(path, MAX_BYTES)
        if nesting(text) > 2:  # one flat table of id = "keys"
            return {}, f"{path}: tables nested too deep for a keymap"
        data = tomllib.loads(text)
    except (TextFileError, tomllib.TOMLDecodeError) as e:
        return {}, f"{path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    keymap = {}
    for binding_id, keys in data.items():
        if binding_id not in known_ids:
            return {}, f"{path}: no key has the id {binding_id[:40]!r} (see ? for the ids)"
        if not isinstance(keys, str) or not keys.strip():
            return {}, f"{path}: {binding_id} needs keys as text, like \"t\" or \"t,ctrl+t\""
        keymap[binding_id] = keys.strip()
    return keymap, None
