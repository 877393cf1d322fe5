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
    """Box drawing (U+2500-U+257F) as +, - or |, from the character's name: corners
    and tees (`DOWN AND RIGHT`, `UP AND HORIZONTAL`) are +, so axis ticks stay."""
    words = unicodedata.name(char, "").split()
    if "AND" in words:
        return "+"
    if {"VERTICAL", "UP", "DOWN"} & set(words):
        return "|"
    if {"HORIZONTAL", "LEFT", "RIGHT", "DASH"} & set(words):
        return "-"
    return "+"


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


# The app's screen is a grid: a stand-in there must take exactly the cells its glyph
# took, so each is one character (two for a wide glyph), chosen to keep the picture:
# the eighth blocks of sparklines and scrollbars rise through `_.:-=+*#`.
CELL_GLYPHS = {
    "▁": "_", "▂": ".", "▃": ":", "▄": "-", "▅": "=", "▆": "+", "▇": "*", "█": "#",
    "▀": '"', "▌": "#", "▐": "#", "▔": "-", "▏": "|", "▕": "|", "▓": "%", "▒": "+",
    "░": ".", "●": "o", "○": "o", "◀": "<", "▶": ">", "▲": "^", "▼": "v", "⭘": "o",
    "σ": "s", "χ": "X", "ξ": "E", "Φ": "F", "φ": "f", "α": "a", "μ": "u", "²": "2",
    "→": ">", "←": "<", "↑": "^", "↓": "v", "·": ".", "…": "~", "⚠": "!", "±": "+",
    "‹": "<", "›": ">", "≈": "~", "×": "x", "√": "V", "—": "-", "–": "-", "≤": "<",
    "≥": ">", "∞": "8", "⏎": "/", "⇥": ">", "⌫": "<", "✓": "v", "✗": "x", "✔": "v",
    "✘": "x", "┃": "|", "▉": "#", "▊": "#", "▋": "#", "▍": "|", "▎": "|",
}


class _CellTable(dict):
    """str.translate's table for `to_cells`, filled on first sight of each glyph."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char.isascii():
            stand_in = char
        elif char in CELL_GLYPHS:
            stand_in = CELL_GLYPHS[char]
        elif "\u2500" <= char <= "\u257f":
            stand_in = _box(char)
        elif "\u2580" <= char <= "\u259f":  # the other block elements: quadrants
            stand_in = "#"
        elif "\u25a0" <= char <= "\u25ff":  # geometric shapes: squares, circles
            stand_in = "o"
        elif "\u2800" <= char <= "\u28ff":  # braille dots: more dots, a heavier mark
            stand_in = " .:+#"[min(4, (bin(code - 0x2800).count("1") + 1) // 2)]
        elif unicodedata.combining(char):
            stand_in = ""
        else:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            stand_in = plain[:1] or "?"
            if unicodedata.east_asian_width(char) in ("W", "F"):
                stand_in = (stand_in + " ")[:2] if plain else "  "
        self[code] = stand_in
        return stand_in


_CELLS = _CellTable()


def to_cells(text: str) -> str:
    """`text` in ASCII, cell for cell: what a terminal without Unicode is sent by the
    app, whose layout has already counted every glyph's width."""
    return text if text.isascii() else text.translate(_CELLS)
