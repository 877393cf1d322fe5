"""The app on a terminal that cannot show Unicode: every frame goes out in ASCII.

Textual lays the screen out in cells and then writes it through its driver; the
driver made here rewrites each glyph to an ASCII stand-in of the same width
(`initscope.ascii.to_cells`) on the way out. One place covers every border,
sparkline, plot, scrollbar and Textual's own glyphs alike.
"""

from __future__ import annotations

from textual.driver import Driver

from initscope.ascii import to_cells


def ascii_driver(base: type[Driver]) -> type[Driver]:
    """`base` (the platform's driver), writing only ASCII."""

    class AsciiDriver(base):  # type: ignore[misc, valid-type]
        def write(self, data: str) -> None:
            super().write(to_cells(data))

    AsciiDriver.__name__ = AsciiDriver.__qualname__ = f"Ascii{base.__name__}"
    return AsciiDriver
