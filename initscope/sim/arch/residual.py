"""Residual blocks of dense layers: the stream x (width units) passes `depth` blocks
x <- x + alpha F(x), F(x) = phi(x W1 + b1) W2 + b2 (blocks.py has the block itself).

A row of the result is a block: its pre-activations (x W1 + b1), its output (the
stream after the block), the gradient w.r.t. that output, and the gradient of W1.
The prediction follows the variance recursion through the block:
Var x' = Var x + alpha^2 Var F.
"""

from __future__ import annotations

import numpy as np

from initscope.sim.arch.base import Arch, Workspace
from initscope.sim.arch.blocks import ResidualRun, theory
from initscope.sim.arch.common import check_single_width
from initscope.sim.config import Config
from initscope.sim.memory import Estimate, basis_transient, copies, samples_bytes
from initscope.sim.norm import describe
from initscope.sim.result import RunResult
from initscope.sim.schemes import SCHEMES


def run(space: Workspace, cfg: Config, cancel=None, on_forward=None) -> RunResult:
    return ResidualRun(space, cfg, cancel, on_forward).execute()



def estimate(cfg: Config) -> Estimate:
    """Every block's weights materialized, and every block's z and stream kept."""
    item = np.dtype(cfg.dtype).itemsize
    w, rows = cfg.width[0], cfg.depth
    spec = SCHEMES[cfg.scheme].weight_spec(cfg, w, w)
    # the branch's last layer starts at zero under zero_last and fixup
    last = 1 if cfg.branch in ("zero_last", "fixup") else copies(spec)
    first = 2 if cfg.branch == "fixup" else copies(spec)
    inputs = 3 if cfg.input_dist == "uniform" else 2  # + the cached U(-1, 1) draw
    draws = ((first + last) * cfg.depth * w * w + inputs * cfg.batch * w
             + 4 * cfg.depth * w) * item
    kept = (3 * rows + 1) * cfg.batch * w * item  # the stream, and each block's z, phi(z)
    scratch = (4 * cfg.batch * w + w * w) * item + 2 * 65536 * 8
    transient = basis_transient(spec.basis, w * w, item)
    if cfg.norm == "nf" or (cfg.norm != "none" and cfg.norm_at == "before"):
        kept += rows * cfg.batch * w * item  # each block's branch input, a new array
    if cfg.norm == "nf":  # W1's standardized unit draw, for its gradient; float64 stats
        draws += cfg.depth * w * w * item
        transient = max(transient, w * w * (8 + 2 * item))
    elif cfg.norm != "none":
        scratch += 2 * cfg.batch * w * item + cfg.batch * 8 * 2
    return Estimate(draws, kept, scratch, samples_bytes(cfg, [(w, w)] * rows), transient)


RESIDUAL = Arch(
    name="residual",
    description="residual blocks x + F(x), F two dense layers; depth counts blocks",
    row_noun="blocks",
    row_prefix="B",
    run=run,
    estimate=estimate,
    shape=lambda cfg: ", ".join(filter(None, [
        f"{cfg.depth} {cfg.branch} residual blocks",
        describe(cfg.norm, cfg.norm_at, cfg.nf_alpha, True)])),
    theory=theory,
    check=lambda cfg: check_single_width(cfg, "residual network"),
    normalizes=True,
    blocks=True,
)
