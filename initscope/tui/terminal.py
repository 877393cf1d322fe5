"""The app's terminal driver: Textual's own, with two duties added.

- **ASCII** (`ascii_only`): on a terminal that cannot show Unicode, every frame goes
  out in ASCII. Textual lays the screen out in cells and writes it through the
  driver, which rewrites each glyph to an ASCII stand-in of the same width
  (`initscope.ascii.to_cells`): every border, sparkline, plot, scrollbar and
  Textual's own glyphs alike.
- **A terminal that went away** (an SSH drop, a closed window): writes to it fail with
  EIO. Textual's writer thread dies of the first one, its queue fills, and the next
  write (the one that restores the terminal on the way out) waits for ever. Here
  the output stream swallows those errors, so the app can always leave.
"""

from __future__ import annotations

from typing import TextIO

from textual.driver import Driver

from initscope.ascii import to_cells


class LostTerminalSafe:
    """A text stream that drops what it cannot write once the terminal is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except OSError:  # EIO: the terminal hung up
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError:
                self.gone = True

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def app_driver(base: type[Driver], ascii_only: bool) -> type[Driver]:
    """`base` (the platform's driver, or the web driver `serve` asks for) with the
    duties above, where it writes to a terminal."""

    class InitScopeDriver(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if getattr(self, "_file", None) is not None:  # a terminal driver's output
                self._file = LostTerminalSafe(self._file)

        def write(self, data: str) -> None:
            super().write(to_cells(data) if ascii_only else data)

    InitScopeDriver.__name__ = InitScopeDriver.__qualname__ = f"InitScope{base.__name__}"
    return InitScopeDriver
