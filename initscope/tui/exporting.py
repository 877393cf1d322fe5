"""Where exports go and what they are called: never over an earlier export."""

from __future__ import annotations

import os
from pathlib import Path

from initscope.sim import Config

EXPORT_SUFFIXES = (".svg", ".csv", ".json")


def export_folder() -> Path:
    """$INITSCOPE_EXPORT_DIR, or the folder initscope was started in."""
    return Path(os.environ.get("INITSCOPE_EXPORT_DIR") or Path.cwd())


def export_stem(cfg: Config, step: int = 0) -> str:
    """A file name that says what the config was."""
    width = "-".join(map(str, cfg.width[:3]))
    trained = f"-step{step}" if step else ""
    return (f"initscope-{cfg.arch}-{cfg.scheme}-{cfg.activation}-d{cfg.row_count()}-w{width}"
            f"-s{cfg.seed}{trained}")


def free_stem(folder: Path, stem: str, suffixes: tuple[str, ...] = EXPORT_SUFFIXES) -> str:
    """`stem`, or `stem-2`, `stem-3`, ...: the first whose files do not exist yet, so
    an export never overwrites an earlier one."""
    def taken(name: str) -> bool:
        return any((folder / f"{name}{suffix}").exists() for suffix in suffixes)

    if not taken(stem):
        return stem
    n = 2
    while taken(f"{stem}-{n}"):
        n += 1
    return f"{stem}-{n}"
