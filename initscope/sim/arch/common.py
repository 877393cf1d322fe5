"""Checks and memory terms that the residual and recurrent networks share."""

from __future__ import annotations

from initscope.sim.config import Config, ConfigError


def check_single_width(cfg: Config, noun: str) -> None:
    """These networks keep one width."""
    if len(cfg.width) > 1:
        raise ConfigError(f"the {noun} has one width: give width one number")
