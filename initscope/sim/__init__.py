"""The simulation core: pure NumPy, no UI. Build a Config, run it, read the result."""

from initscope.sim.config import Config, ConfigError
from initscope.sim.memory import MemoryBudgetError
from initscope.sim.network import Simulator
from initscope.sim.result import Cancelled, LayerResult, RunResult
from initscope.sim.validation import validate

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
