"""Reading the small text files users hand to initscope (scenes, themes, keymaps):
regular files only, of bounded size, UTF-8, and TOML that nests no deeper than such
a file can (tomllib recurses once per level, to a RecursionError at ~1000)."""

from __future__ import annotations

from pathlib import Path


class TextFileError(ValueError):
    """A file that cannot be one of ours; the message is one short line."""


def read_small_text(path: Path, limit: int) -> str:
    """The text of `path`: a regular file (not a folder, FIFO or device, whatever a
    link points to) of at most `limit` bytes of UTF-8 (a leading byte-order mark
    dropped)."""
    if not path.is_file():
        raise TextFileError("not a regular file")
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise TextFileError(f"cannot be read ({e.strerror})") from None
    if len(data) > limit:
        raise TextFileError(f"over {limit >> 10} KB: too big to be one")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise TextFileError(f"not UTF-8 text (byte {e.start})") from None


def nesting(text: str) -> int:
    """How deep the brackets and braces of a TOML text nest, outside strings and
    comments (an escaped quote may end a string early: the count errs high, which
    only refuses a broken file)."""
    depth = deepest = 0
    quote = None
    for char in text:
        if quote:
            if char == quote or (char == "\n" and quote == "#"):
                quote = None
        elif char in "\"'#":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
