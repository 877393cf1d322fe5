"""Where exports go, what they are called, and how they are written: never over an
earlier export, never through a link planted at the name, never half-written (a
full disk leaves no truncated file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from initscope.sim import Config

EXPORT_SUFFIXES = (".svg", ".csv", ".json")
SERVED_NOTE = ("files are not written in a browser session: they would land on the "
               "server. Run initscope in a terminal to export (copying still works)")


def served() -> bool:
    """Whether this app runs for a browser (`initscope serve` sets it)."""
    return os.environ.get("INITSCOPE_SERVED") == "1"


def export_folder() -> Path:
    """$INITSCOPE_EXPORT_DIR, or the folder initscope runs in, or the home folder when
    that one has been deleted under it (Path.cwd() then raises, and `c` once did)."""
    chosen = os.environ.get("INITSCOPE_EXPORT_DIR")
    if chosen:
        return Path(chosen)
    try:
        return Path.cwd()
    except FileNotFoundError:
        return Path.home()


def export_stem(cfg: Config, step: int = 0) -> str:
    """A file name that says what the config was."""
    width = "-".join(map(str, cfg.width[:3]))
    trained = f"-step{step}" if step else ""
    return (f"initscope-{cfg.arch}-{cfg.scheme}-{cfg.activation}-d{cfg.row_count()}-w{width}"
            f"-s{cfg.seed}{trained}")


def free_stem(folder: Path, stem: str, suffixes: tuple[str, ...] = EXPORT_SUFFIXES) -> str:
    """`stem`, or `stem-2`, `stem-3`, ...: the first whose files do not exist yet, so
    an export never overwrites an earlier one."""
    def taken(name: str) -> bool:  # lexists: a link counts, even one to nothing
        return any(os.path.lexists(folder / f"{name}{suffix}") for suffix in suffixes)

    if not taken(stem):
        return stem
    n = 2
    while taken(f"{stem}-{n}"):
        n += 1
    return f"{stem}-{n}"


def write_new(path: Path, text: str) -> None:
    """Write `text` to `path`, which must not exist (not even as a link): into a
    temporary file in the same folder first, then linked into place in one step. A
    failure (a full disk) removes the temporary file and leaves nothing at `path`."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".initscope-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)  # fails if anything is at `path`; never follows a link
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: the same, by rename
            if os.path.lexists(path):
                raise FileExistsError(f"{path} exists") from None
            os.replace(temp, path)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
