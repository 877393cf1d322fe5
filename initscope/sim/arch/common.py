"""Checks and memory terms that the residual and recurrent networks share."""

from __future__ import annotations

from initscope.sim.config import Config, ConfigError
from initscope.sim.schemes import SCHEMES


def check_single_width(cfg: Config, noun: str) -> None:
    """These networks keep one width, and no data-dependent scheme tunes them."""
    if SCHEMES[cfg.scheme].data_init:
        raise ConfigError(f"{cfg.scheme} tunes a plain stack: choose the plain network "
                          "or another scheme")
    if len(cfg.width) > 1:
        raise ConfigError(f"the {noun} has one width: give width one number")
