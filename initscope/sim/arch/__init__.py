"""The architecture registry: one module per kind of network, each an `Arch`.

The CLI's --arch choices, the app's Network field, `initscope archs`, the memory
budget, the Simulator's dispatch and the tests all read `ARCHS`.
"""

from initscope.sim.arch.base import Arch, Workspace
from initscope.sim.arch.conv import CONV
from initscope.sim.arch.plain import PLAIN
from initscope.sim.arch.resconv import RESCONV
from initscope.sim.arch.residual import RESIDUAL
from initscope.sim.arch.rnn import RNN

ARCHS: dict[str, Arch] = {a.name: a for a in (PLAIN, RESIDUAL, RNN, CONV, RESCONV)}

__all__ = ["ARCHS", "Arch", "Workspace"]
