"""Data-dependent initializations: the weights are tuned on the batch itself.

- `lsuv` (Mishkin & Matas 2015): orthonormal weights and zero biases, then layer by
  layer, while |Var(z) - 1| >= tol and tries < max, divide the layer's weights by
  the std of its output z on the batch. One iteration = one layer done.
- `data_dependent` (Krähenbühl et al. 2015): Gaussian weights; within each layer,
  every unit is scaled to unit std on the batch and its bias set to -mean/std; then,
  in rounds, each layer k is rescaled by sqrt(r_k / geometric mean of r), with
  r_k = sqrt(mean(dW_k^2) / mean(W_k^2)) from a backward pass of the fixed upstream
  gradient, so every layer's weights change at the same relative rate. One iteration
  = the within-layer pass, then one round each.

Each returns the weights, the biases, and the trace: after every iteration, the std
of every layer's output (and, for `data_dependent`, the ratios r_k).

The procedure runs to its end once per config (whatever `init_steps` says) and keeps
what each iteration did: the scale factors (and, for `data_dependent`, the per-unit
stds and biases) in the order they were applied. Stopping after k iterations then
replays the first k on fresh starting weights, bit for bit the same, at the cost
of one multiplication per factor: stepping through the iterations (`i` / `I`)
costs no more than showing one run.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.draws import DrawCache
from initscope.sim.layers import input_batch, upstream_gradient, weight_matrix
from initscope.sim.schemes import NORMAL, ORTHOGONAL, WeightSpec

LSUV_TOL = 0.1  # as in the reference implementation
LSUV_TRIES = 10
ROUNDS = 10
MAX_TRACE = 24  # iterations kept in the trace (evenly spread for deep networks)


@dataclass
class DataInit:
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    trace: list[dict] = field(default_factory=list)
    iterations: int = 0  # how many the full procedure takes


@dataclass
class Replay:
    """What every iteration of a finished procedure did, to redo the first k."""

    trace: list[dict]
    iterations: int
    layer_scales: list[list]  # lsuv: the factors each layer was multiplied by, in order
    unit_stds: list[np.ndarray] | None = None  # data_dependent, iteration 1: per unit
    unit_biases: list[np.ndarray] | None = None
    round_alphas: list[list] = field(default_factory=list)  # data_dependent, rounds 2...


_REPLAYS: OrderedDict = OrderedDict()  # the last few configs' procedures
_REPLAYS_LOCK = threading.Lock()
KEEP_REPLAYS = 4


def has_replay(cfg: Config) -> bool:
    """Whether the procedure of `cfg` has run (stepping to another iteration replays)."""
    with _REPLAYS_LOCK:
        return cfg.replace(init_steps=-1) in _REPLAYS


def _replay_of(cfg: Config, draws: DrawCache, record) -> Replay:
    key = cfg.replace(init_steps=-1)
    with _REPLAYS_LOCK:
        if key in _REPLAYS:
            _REPLAYS.move_to_end(key)
            return _REPLAYS[key]
    replay = record(key, draws)
    with _REPLAYS_LOCK:
        _REPLAYS[key] = replay
        while len(_REPLAYS) > KEEP_REPLAYS:
            _REPLAYS.popitem(last=False)
    return replay


def _inputs(cfg: Config, draws: DrawCache) -> tuple[np.ndarray, np.ndarray]:
    dt = np.dtype(cfg.dtype)
    return (np.asarray(input_batch(cfg, draws, dt)),
            np.asarray(upstream_gradient(cfg, draws, dt, cfg.widths()[-1])))


def _start(cfg: Config, draws: DrawCache, basis: str, scale) -> list[np.ndarray]:
    """The weights the tuning starts from: `scale(fan_in)` times the unit draws."""
    dt = np.dtype(cfg.dtype)
    return [weight_matrix(cfg, draws, i, WeightSpec(basis, scale(fi), fi, fo), dt)
            for i, (fi, fo) in enumerate(cfg.fans())]


def _forward(cfg: Config, x, weights, biases) -> tuple[list, list]:
    act = ACTIVATIONS[cfg.activation]
    zs, hs, h = [], [], x
    for w, b in zip(weights, biases):
        z = h @ w
        z += b
        h = act.apply(z, cfg.slope)
        zs.append(z)
        hs.append(h)
    return zs, hs


def _output_stds(cfg: Config, x, weights, biases) -> list[float]:
    zs, _ = _forward(cfg, x, weights, biases)
    return [float(np.std(z, dtype=np.float64)) for z in zs]


def _keep(total: int) -> set[int]:
    """Which iterations to trace: all of them, or an even spread with both ends."""
    if total + 1 <= MAX_TRACE:
        return set(range(total + 1))
    return {round(i * total / (MAX_TRACE - 1)) for i in range(MAX_TRACE)}


def _record_lsuv(cfg: Config, draws: DrawCache) -> Replay:
    dt = np.dtype(cfg.dtype)
    x, _ = _inputs(cfg, draws)
    weights = _start(cfg, draws, ORTHOGONAL, lambda fi: 1.0)
    biases = [np.zeros(fo, dt) for _, fo in cfg.fans()]
    act = ACTIVATIONS[cfg.activation]
    total = len(weights)
    keep = _keep(total)
    trace = [{"iteration": 0, "std": _output_stds(cfg, x, weights, biases)}]
    scales: list[list] = [[] for _ in weights]
    h = x
    for i, w in enumerate(weights):
        z = h @ w
        for _ in range(LSUV_TRIES):
            var = float(np.var(z, dtype=np.float64))
            if abs(var - 1.0) < LSUV_TOL or not (var > 0 and math.isfinite(var)):
                break
            scale = dt.type(1.0 / math.sqrt(var))
            w *= scale
            z *= scale
            scales[i].append(scale)
        h = act.apply(z, cfg.slope)
        if i + 1 in keep:
            trace.append({"iteration": i + 1, "std": _output_stds(cfg, x, weights, biases)})
    return Replay(trace, total, scales)


def _trace_until(replay: Replay, stop_after: int) -> list[dict]:
    return [t for t in replay.trace if stop_after < 0 or t["iteration"] <= stop_after]


def lsuv(cfg: Config, draws: DrawCache, stop_after: int = -1) -> DataInit:
    replay = _replay_of(cfg, draws, _record_lsuv)
    dt = np.dtype(cfg.dtype)
    weights = _start(cfg, draws, ORTHOGONAL, lambda fi: 1.0)
    for i, w in enumerate(weights):
        if stop_after >= 0 and i >= stop_after:
            break
        for scale in replay.layer_scales[i]:
            w *= scale
    biases = [np.zeros(fo, dt) for _, fo in cfg.fans()]
    return DataInit(weights, biases, _trace_until(replay, stop_after), replay.iterations)


def gradient_ratios(cfg: Config, x, g, weights, biases) -> list[float]:
    """r_k = sqrt(mean(dW_k^2) / mean(W_k^2)) for the fixed upstream gradient."""
    act = ACTIVATIONS[cfg.activation]
    zs, hs = _forward(cfg, x, weights, biases)
    out = [0.0] * len(weights)
    dh = g
    for k in range(len(weights) - 1, -1, -1):
        dz = dh * act.slope_of(zs[k], cfg.slope)
        below = x if k == 0 else hs[k - 1]
        dw = below.T @ dz
        mean_w2 = float(np.mean(np.square(weights[k], dtype=np.float64)))
        mean_g2 = float(np.mean(np.square(dw, dtype=np.float64)))
        out[k] = math.sqrt(mean_g2 / mean_w2) if mean_w2 > 0 else math.inf
        dh = dz @ weights[k].T
    return out


def _record_data_dependent(cfg: Config, draws: DrawCache) -> Replay:
    dt = np.dtype(cfg.dtype)
    x, g = _inputs(cfg, draws)
    act = ACTIVATIONS[cfg.activation]
    weights = _start(cfg, draws, NORMAL, lambda fi: 1.0 / math.sqrt(fi))
    biases = [np.zeros(fo, dt) for _, fo in cfg.fans()]

    def record(iteration: int) -> dict:
        return {"iteration": iteration, "std": _output_stds(cfg, x, weights, biases),
                "ratio": gradient_ratios(cfg, x, g, weights, biases)}

    trace = [record(0)]
    replay = Replay(trace, 1 + ROUNDS, [], [], [])
    h = x  # within each layer: every unit to zero mean and unit std on the batch
    with np.errstate(all="ignore"):
        for w, b in zip(weights, biases):
            z = h @ w
            mean = z.mean(axis=0, dtype=np.float64)
            std = z.std(axis=0, dtype=np.float64)
            std[~(std > 0)] = 1.0
            w /= std.astype(dt)
            b[...] = (-mean / std).astype(dt)
            replay.unit_stds.append(std.astype(dt))
            replay.unit_biases.append(b.copy())
            h = act.apply((z - mean.astype(dt)) / std.astype(dt), cfg.slope)
        trace.append(record(1))
        for round_ in range(2, replay.iterations + 1):
            ratios = np.array(trace[-1]["ratio"])
            if not np.all(np.isfinite(ratios) & (ratios > 0)):
                break
            mean_log = float(np.mean(np.log(ratios)))
            alphas = [dt.type(math.sqrt(r / math.exp(mean_log))) for r in ratios]
            for w, b, alpha in zip(weights, biases, alphas):
                w *= alpha
                b *= alpha
            replay.round_alphas.append(alphas)
            trace.append(record(round_))
    return replay


def data_dependent(cfg: Config, draws: DrawCache, stop_after: int = -1) -> DataInit:
    replay = _replay_of(cfg, draws, _record_data_dependent)
    dt = np.dtype(cfg.dtype)
    weights = _start(cfg, draws, NORMAL, lambda fi: 1.0 / math.sqrt(fi))
    biases = [np.zeros(fo, dt) for _, fo in cfg.fans()]
    trace = _trace_until(replay, stop_after)
    if stop_after == 0:
        return DataInit(weights, biases, trace, replay.iterations)
    with np.errstate(all="ignore"):
        for w, b, std, bias in zip(weights, biases, replay.unit_stds, replay.unit_biases):
            w /= std
            b[...] = bias
        for round_, alphas in enumerate(replay.round_alphas, start=2):
            if stop_after >= 0 and round_ > stop_after:
                break
            for w, b, alpha in zip(weights, biases, alphas):
                w *= alpha
                b *= alpha
    return DataInit(weights, biases, trace, replay.iterations)


DATA_INITS = {"lsuv": lsuv, "data_dependent": data_dependent}
