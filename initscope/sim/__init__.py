"""The simulation core: pure NumPy, no UI. Build a Config, run it, read the result."""

from initscope.sim.config import Config, ConfigError, validate
from initscope.sim.memory import MemoryBudgetError
from initscope.sim.network import Cancelled, LayerResult, RunResult, Simulator

__all__ = [
    "Cancelled",
    "Config",
    "ConfigError",
    "LayerResult",
    "MemoryBudgetError",
    "RunResult",
    "Simulator",
    "validate",
]
