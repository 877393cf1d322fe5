"""The memory budget, checked before anything is allocated: every architecture's
own estimate against the limit."""

from __future__ import annotations

from initscope.sim.arch import ARCHS
from initscope.sim.config import Config
from initscope.sim.memory import Estimate, MemoryBudgetError, budget_bytes, format_bytes
from initscope.sim.validation import validate


def estimate(cfg: Config) -> Estimate:
    """Peak bytes of one run of `cfg`, by its architecture's own count."""
    return ARCHS[cfg.arch].estimate(cfg)


def sizes_to_lower(cfg: Config | None) -> str:
    """What makes the network smaller, in the config's own fields."""
    if cfg is not None and ARCHS[cfg.arch].convolutional:
        return "channels, image, depth or batch"
    if cfg is not None and cfg.arch == "rnn":
        return "width, time steps or batch"
    if cfg is not None and ARCHS[cfg.arch].attends:  # attention's arrays grow as tokens^2
        return "tokens, width, depth or batch"
    return "width, depth or batch"


def over_budget(need: int, limit: int, what: str = "this config",
                cfg: Config | None = None) -> MemoryBudgetError:
    return MemoryBudgetError(
        f"{what} needs {format_bytes(need)}, over the memory budget of "
        f"{format_bytes(limit)}: lower the {sizes_to_lower(cfg)}"
    )


def check_budget(cfg: Config) -> Estimate:
    """The estimate, or MemoryBudgetError when it is over the budget."""
    est = estimate(cfg)
    limit = budget_bytes(cfg)
    if est.total > limit:
        raise over_budget(est.total, limit, cfg=cfg)
    return est


def runnable(cfg: Config) -> Config:
    """`cfg`, once it is valid and fits the budget; ConfigError or MemoryBudgetError
    (a one-line message) otherwise."""
    check_budget(validate(cfg))
    return cfg
