"""ASCII for terminals that cannot show Unicode (a non-UTF-8 locale over SSH).

`to_ascii` rewrites every glyph initscope and plotext draw with: blocks and shades
as `#%+.`, box drawing as `+-|`, arrows, markers and Greek letters spelled out. The
CLI switches to it on its own when its output's encoding cannot carry the glyphs,
or when asked (`--ascii`, or INITSCOPE_ASCII=1); then it never ends in a
UnicodeEncodeError.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import TextIO

GLYPHS = {
    "█": "#", "▓": "%", "▒": "+", "░": ".", "▀": "#", "▄": "#", "▌": "#", "▐": "#",
    "▁": "_", "▂": ".", "▃": ":", "▅": "=", "▆": "*", "▇": "%",
    "┃": "|", "●": "o", "◀": "<", "▶": ">", "▲": "^", "▼": "v", "⭘": "o",
    "σ": "s", "χ": "chi", "ξ": "xi", "Φ": "Phi", "φ": "phi", "α": "alpha", "μ": "mu",
    "²": "^2", "→": "->", "←": "<-", "↑": "^", "↓": "v", "·": "-", "…": "...",
    "⚠": "!", "±": "+-", "‹": "<", "›": ">", "≈": "~", "×": "x", "√": "sqrt",
    "—": "--", "–": "-", "≤": "<=", "≥": ">=", "∞": "inf",
}
SAMPLE = "█σ→·…┃"  # what the app and the CLI draw with


def _box(char: str) -> str:
    """Box drawing (U+2500-U+257F) as +, - or |, from the character's name."""
    name = unicodedata.name(char, "")
    if "VERTICAL" in name and "HORIZONTAL" in name:
        return "+"
    if "VERTICAL" in name:
        return "|"
    if "HORIZONTAL" in name or "DASH" in name:
        return "-"
    return "+"  # corners, arcs, tees


def to_ascii(text: str) -> str:
    """`text` with every non-ASCII character replaced by an ASCII stand-in."""
    if text.isascii():
        return text
    out = []
    for char in text:
        if char.isascii():
            out.append(char)
        elif char in GLYPHS:
            out.append(GLYPHS[char])
        elif "\u2500" <= char <= "\u257f":
            out.append(_box(char))
        else:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(plain or "?")
    return "".join(out)


def forced() -> bool:
    return os.environ.get("INITSCOPE_ASCII", "") not in ("", "0")


def can_show_unicode(stream: TextIO) -> bool:
    """Whether `stream`'s encoding carries the glyphs initscope draws with."""
    try:
        SAMPLE.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class AsciiStream:
    """A text stream that writes through `to_ascii` (and never raises on encoding)."""

    # Click re-wraps a stream whose encoding looks misconfigured (ascii) around its
    # binary buffer, which would bypass this one: so say utf-8 (everything written is
    # ASCII, a subset) and offer no buffer
    encoding = "utf-8"
    errors = "strict"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def underlying_encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "unknown"

    def write(self, text: str) -> int:
        return self._stream.write(to_ascii(text))

    def __getattr__(self, name: str):
        if name == "buffer":
            raise AttributeError(name)
        return getattr(self._stream, name)


def ascii_streams_if_needed(force: bool = False) -> bool:
    """Put stdout and stderr through `to_ascii` when asked or when they cannot show
    Unicode; True when they were."""
    if not (force or forced() or not can_show_unicode(sys.stdout)
            or not can_show_unicode(sys.stderr)):
        return False
    if not isinstance(sys.stdout, AsciiStream):
        sys.stdout = AsciiStream(sys.stdout)
        sys.stderr = AsciiStream(sys.stderr)
    return True
