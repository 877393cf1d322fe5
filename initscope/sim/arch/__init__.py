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
from initscope.sim.arch.transformer import TRANSFORMER
from initscope.sim.config import Config
from initscope.sim.schemes import SCHEMES

ARCHS: dict[str, Arch] = {a.name: a for a in (PLAIN, RESIDUAL, RNN, CONV, RESCONV,
                                                   TRANSFORMER)}



def scheme_fits(arch: str, scheme: str) -> bool:
    """Whether the network takes the scheme: kernel-only ones go on convolutional
    networks, data-dependent ones on the network they tune, recipes on transformers."""
    a, s = ARCHS[arch], SCHEMES[scheme]
    return ((a.convolutional or not s.conv_only) and (a.tunes or not s.data_init)
            and (a.attends or not s.recipe))


def with_arch(cfg: Config, name: str) -> Config:
    """`cfg` on another architecture: a field left at the old architecture's default
    takes the new one's (the batch of a dense stack, 1000, becomes a conv network's
    32, and back), a field the user set keeps its value."""
    old, new = ARCHS[cfg.arch], ARCHS.get(name)
    if new is None:  # validation names the unknown architecture
        return cfg.replace(arch=name)
    changes = {"arch": name}
    for field in set(old.defaults) | set(new.defaults):
        if getattr(cfg, field) == old.default(field):
            changes[field] = new.default(field)
    return cfg.replace(**changes)


__all__ = ["ARCHS", "Arch", "Workspace", "scheme_fits", "with_arch"]
