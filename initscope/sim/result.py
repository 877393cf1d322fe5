"""What a run produces: per-row results, the run's result, and how a run stops early.

Every runner, the trainer, the reports and the app read these types; this module
imports nothing of the core above the statistics it carries, so any module may
import it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from initscope.sim.stats import DEFAULT_BINS, Summary, histograms

if TYPE_CHECKING:
    from initscope.sim.config import Config
    from initscope.sim.theory import LayerTheory

QUANTITIES = ("preactivation", "activation", "gradient", "weight_gradient", "channel_mean")
FORWARD, COMPLETE = "forward", "complete"


class Cancelled(Exception):
    """Raised inside a run whose cancel event was set; the run leaves no result."""


@dataclass
class LayerResult:
    """Everything measured (and predicted) for one row: a layer, block or time step."""

    index: int  # 1-based, as on screen
    fan_in: int
    fan_out: int
    weight_std: float
    weight_target_std: float
    preactivation: Summary | None = None
    activation: Summary | None = None
    gradient: Summary | None = None
    weight_gradient: Summary | None = None
    channel_mean: Summary | None = None  # each unit's mean over the batch (and pixels)
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    identical_units: bool = False  # every unit equal on every sample: no symmetry broken
    identical_gradients: bool = False  # every unit's activation gradient equal, likewise
    theory: LayerTheory | None = None

    def to_dict(self, hists: dict[str, Any] | None = None) -> dict:
        hists = hists or {}
        out = {"index": self.index, "fan_in": self.fan_in, "fan_out": self.fan_out}
        for q in QUANTITIES:
            s = getattr(self, q)
            out[q] = s.to_dict(hists.get(q)) if s is not None else None
        out.update(
            dead_fraction=self.dead_fraction,
            saturated_fraction=self.saturated_fraction,
            weight_std=self.weight_std,
            weight_target_std=self.weight_target_std,
            theory=self.theory.to_dict() if self.theory else None,
        )
        return out


@dataclass(frozen=True)
class SignalPropagation:
    """One block of a signal propagation plot (Brock, De, Smith 2021), measured over
    the batch and averaged over units (channels): the stream after the block, and the
    branch F before it joins the skip (before alpha). `predicted` holds the same three
    from the variance recursion, or None where it does not apply."""

    block: int
    squared_mean: float  # mean_c (mean_N x_c)^2
    variance: float  # mean_c var_N x_c
    branch_variance: float  # mean_c var_N F_c
    predicted: tuple[float, float, float] | None = None

    def to_dict(self) -> dict:
        names = ("squared_mean", "variance", "branch_variance")
        out = {"block": self.block, **{n: getattr(self, n) for n in names}}
        out["theory"] = dict(zip(names, self.predicted)) if self.predicted else None
        return out


METER_GROUPS = ("q", "k", "v", "o", "mlp")  # a block's parameter groups, by gradient norm


@dataclass
class BlockMeters:
    """What a transformer block does at initialization (arch/transformer.py): the
    stream's variance after it, each branch's variance before it joins the stream,
    attention's entropy (normalized: 1 uniform, 0 one-hot) and logits' std, the mean
    cosine similarity between a sequence's tokens after it, and the gradient norm of
    each parameter group. `predicted` holds what the theory gives, where it does."""

    block: int
    stream_variance: float
    attention_variance: float
    mlp_variance: float
    entropy: float
    logit_std: float
    similarity: float
    grad_norms: dict[str, float] | None = None  # METER_GROUPS; None before the backward pass
    predicted: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("block", "stream_variance", "attention_variance",
                                             "mlp_variance", "entropy", "logit_std",
                                             "similarity")}
        out["grad_norms"] = dict(self.grad_norms) if self.grad_norms else None
        out["theory"] = dict(self.predicted)
        return out


@dataclass
class RunResult:
    """One run of one config. `phase` is FORWARD while only the forward half is in."""

    config: Config
    layers: list[LayerResult]
    phase: str = FORWARD
    overflow_layer: int | None = None
    overflow_pass: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    step: int = 0  # training steps taken before these numbers (0: as initialized)
    theory_note: str | None = None  # where the predictions do not hold, or only roughly
    init_trace: list[dict] | None = None  # data-dependent schemes: each iteration's stds
    init_iterations: int = 0  # how many iterations the whole data-dependent init takes
    hidden_norm: list[float | None] | None = None  # rnn: batch-mean |h_t| per step
    gradient_norm: list[float | None] | None = None  # rnn: batch-mean |dL/dh_t| per step
    spp: list[SignalPropagation] | None = None  # residual: the signal propagation plot
    meters: list[BlockMeters] | None = None  # transformer: each block's meters
    input_similarity: float | None = None  # transformer: the embeddings' token similarity

    def spp_dicts(self) -> list[dict] | None:
        return None if self.spp is None else [row.to_dict() for row in self.spp]

    def meter_dicts(self) -> list[dict] | None:
        return None if self.meters is None else [m.to_dict() for m in self.meters]

    def snapshot(self) -> RunResult:
        """A copy that later changes to this result (the backward pass) do not touch."""
        meters = None if self.meters is None else [dataclasses.replace(m)
                                                   for m in self.meters]
        return dataclasses.replace(
            self, layers=[dataclasses.replace(lay) for lay in self.layers],
            warnings=list(self.warnings), meters=meters,
        )

    def histograms(self, quantity: str, bins: int = DEFAULT_BINS,
                   shared: bool = True) -> list:
        """Every row's histogram of one quantity, binned now from the kept samples."""
        return histograms([getattr(lay, quantity) for lay in self.layers], bins, shared)

    def to_dict(self, bins: int = DEFAULT_BINS, shared: bool = True) -> dict:
        """JSON-ready, histograms binned as asked: every non-finite number becomes
        None (null)."""
        per_quantity = {q: self.histograms(q, bins, shared) for q in QUANTITIES}
        layers = [lay.to_dict({q: per_quantity[q][i] for q in QUANTITIES})
                  for i, lay in enumerate(self.layers)]
        out = {
            "config": self.config.to_dict(),
            "layers": layers,
            "overflow_layer": self.overflow_layer,
            "overflow_pass": self.overflow_pass,
            "theory_note": self.theory_note,
        }
        if self.init_trace is not None:
            out["init_trace"] = self.init_trace
        if self.hidden_norm is not None:
            out["steps"] = [{"step": t + 1, "hidden_norm": h, "gradient_norm": g}
                            for t, (h, g) in enumerate(zip(self.hidden_norm,
                                                           self.gradient_norm))]
        if self.spp is not None:
            out["spp"] = self.spp_dicts()
        if self.meters is not None:
            out["input_similarity"] = self.input_similarity
            out["meters"] = self.meter_dicts()
        out["warnings"] = list(self.warnings)
        return finite_or_none(out)


def finite_or_none(value):
    """JSON has no infinity or NaN: such numbers, however deep, become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value
