"""Plain-words warnings about a run: what a student should notice first."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initscope.sim.result import RunResult

DEAD_WARN = 0.10  # fraction of a layer's units dead on the whole batch
SATURATED_WARN = 0.10  # fraction of activations in the flat tails
VANISH_STD = 1e-3  # activation std under which a deep layer has collapsed


def _worst(values: list[tuple[int, float | None]]) -> tuple[int, float] | None:
    present = [(i, v) for i, v in values if v is not None]
    return max(present, key=lambda p: p[1]) if present else None


def diagnose(result: RunResult) -> list[str]:
    """Warnings in the order they matter: overflow, symmetry, dead, saturated, collapse."""
    cfg = result.config
    out = []
    if result.overflow_layer is not None:
        where = "" if result.overflow_pass == "forward" else " in the backward pass"
        out.append(f"overflow from layer {result.overflow_layer}{where}")
    same = [lay.index for lay in result.layers if lay.identical_units]
    if same:
        out.append(
            f"all units identical in {len(same)} of {len(result.layers)} layers "
            "(symmetry never broken)"
        )
    worst = _worst([(lay.index, lay.dead_fraction) for lay in result.layers])
    if worst and worst[1] >= DEAD_WARN:
        out.append(f"{worst[1]:.0%} of {cfg.activation} units dead in layer {worst[0]}")
    worst = _worst([(lay.index, lay.saturated_fraction) for lay in result.layers])
    if worst and worst[1] >= SATURATED_WARN:
        out.append(f"{worst[1]:.0%} of {cfg.activation} outputs saturated in layer {worst[0]}")
    last = next((lay for lay in reversed(result.layers) if lay.activation is not None), None)
    if (last is not None and last.activation.finite and not last.identical_units
            and 0 < last.activation.std < VANISH_STD and len(result.layers) > 1):
        out.append(f"activations collapse toward 0: std {last.activation.std:.1e} "
                   f"at layer {last.index}")
    return out
