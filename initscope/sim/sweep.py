"""Width and depth sweeps: how an initialization scales, and muP's coordinate check.

A width sweep trains the same network at several widths for a few steps and records,
per layer and step, the size of the activations: the mean absolute value ("l1", the
muP package's coord_check.py) and the std, for every hidden layer and the output.
Plotted against width on log-log axes, a line's slope says how that coordinate
scales: 0 is what a width-independent rule gives.

The network: an input layer (inputs -> width), depth - 1 hidden layers (width ->
width), a linear readout (width -> 16 outputs), zero biases, trained on a mean
squared error onto 16 outputs of a fixed random tanh network of the inputs (the
`teacher` task with 16 outputs: with one, the output's size is that of a single
random offset, ReLU's mean through the readout, and too noisy to fit a slope to). Each layer is
z = multiplier * (h W) + b, trained with its own learning rate. The
parametrizations (Yang & Hu 2021, "Tensor Programs IV"; Yang et al. 2022, "Tensor
Programs V", Table 3; microsoft/mup's MuReadout, MuAdam and MuSGD), with
r = width / base_width:

- `sp`: the config's scheme at every width, one learning rate;
- `ntk`: W ~ N(0, 1), multiplier 1/sqrt(fan_in), one learning rate;
- `mup`: every layer starts as `sp` does at the base width; the hidden weights'
  variance is then divided by r (their std by sqrt r) and the readout's output
  multiplied by 1/r (MuReadout). With Adam the hidden learning rate is divided by r
  and the rest keep it; with SGD the hidden rate stays and the input layer's, the
  biases' and the readout's are multiplied by r (the "vector-like" parameters).

Why sp blows up with Adam: Adam's first step moves every entry of W by about the
learning rate, with the sign of its gradient g_j h_i. The change of a unit's input,
sum_i dW_ij h_i ~ lr sum_i |h_i|, adds up coherently over the fan-in, so it grows
linearly with width while z itself stays O(1): after one step l1 = a + b width, a
log-log slope b w / (a + b w) that tends to 1. Under mup the hidden rate lr / r
makes the change lr base E|h|, independent of width: slope 0. At initialization the
mup readout's output is (1/r) h W with Var(W) that of sp at the base width: its std
falls as 1/sqrt(r), the slope -0.5 the muP package lists as expected.

A depth sweep trains residual stacks x <- x + m F(x), F = phi(x W1 + b1) W2 + b2,
at several depths, with branch multiplier m = 1, or m = 1/sqrt(depth) and, with Adam,
the blocks' learning rate divided by sqrt(depth) too (depth-muP: Yang, Yu, Zhu, Hayou
2023, "Tensor Programs VI"), and records the stream's size after the last block.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config, ConfigError
from initscope.sim.draws import DrawCache
from initscope.sim.layers import input_batch, weight_matrix
from initscope.sim.memory import MemoryBudgetError, budget_bytes, format_bytes
from initscope.sim.optim import make_optimizer
from initscope.sim.result import Cancelled
from initscope.sim.schemes import NORMAL, SCHEMES, WeightSpec
from initscope.sim.stats import std_of
from initscope.sim.validation import validate

PARAMS = ("sp", "ntk", "mup")
# each parametrization's rules, in words (initscope params), r = width / base width
PARAM_RULES = {
    "sp": "every layer: the scheme's init at this width, multiplier 1, one learning rate",
    "ntk": "every layer: W ~ N(0, 1), output times 1/sqrt(fan_in), one learning rate",
    "mup": "input layer: the scheme's init at the base width, lr (Adam) or lr r (SGD); "
           "hidden: that init's variance / r, lr / r (Adam) or lr (SGD); readout: the "
           "base width's init, output times 1/r, lr (Adam) or lr r (SGD); biases as the "
           "input layer's (Tensor Programs V, Table 3; microsoft/mup's MuReadout, MuAdam, "
           "MuSGD)",
}
OUTPUTS = 16  # the readout's width
TEACHER_WIDTH = 32
BRANCH_SCALES = ("1", "1/sqrt(L)")
MAX_SWEEP_STEPS = 20
MAX_SEEDS = 16


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. `widths` (a width sweep) or `depths` (a depth sweep of residual
    stacks), `steps` updates after the init, `seeds` draws per point."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    depths: tuple[int, ...] = ()
    steps: int = 3
    seeds: int = 3
    param: str = "sp"
    base_width: int = 64


@dataclass(frozen=True)
class Rule:
    """One layer under a parametrization: its init, forward multiplier, learning rate
    factor."""

    spec: WeightSpec
    multiplier: float = 1.0
    lr_factor: float = 1.0
    bias_lr_factor: float = 1.0  # biases are "vector-like" in muP: their own rate


def layer_rules(cfg: Config, param: str, width: int, base: int) -> list[Rule]:
    """Input layer, hidden layers, readout, at this width."""
    scheme = SCHEMES[cfg.scheme]
    fans = [(cfg.inputs, width)] + [(width, width)] * (cfg.depth - 1) + [(width, OUTPUTS)]
    last = len(fans) - 1
    if param == "sp":
        return [Rule(scheme.weight_spec(cfg, fi, fo)) for fi, fo in fans]
    if param == "ntk":
        return [Rule(WeightSpec(NORMAL, 1.0, fi, fo), 1.0 / math.sqrt(fi)) for fi, fo in fans]
    r = width / base
    adam = cfg.optimizer == "adam"
    vector = 1.0 if adam else r  # the rate of muP's vector-like parameters
    rules = []
    for i, (fi, fo) in enumerate(fans):
        at_base = scheme.weight_spec(cfg, base if i else fi, base if i < last else fo)
        spec = replace(at_base, fan_in=fi, fan_out=fo)
        if 0 < i < last:  # hidden: Var / r; Adam's rate / r (SGD's stays)
            rules.append(Rule(replace(spec, scale=spec.scale / math.sqrt(r)),
                              lr_factor=1.0 / r if adam else 1.0, bias_lr_factor=vector))
        elif i == last:  # MuReadout: output / r
            rules.append(Rule(spec, multiplier=1.0 / r, lr_factor=vector,
                              bias_lr_factor=vector))
        else:
            rules.append(Rule(spec, lr_factor=vector, bias_lr_factor=vector))
    return rules


@dataclass
class SweepPoint:
    """One width (or depth) and seed: per step, per layer (hidden layers, then the
    output), the mean |h| and the std."""

    size: int
    seed: int
    l1: list[list[float]]  # [step][layer]
    std: list[list[float]]


@dataclass
class SweepResult:
    spec: SweepSpec
    config: Config
    points: list[SweepPoint] = field(default_factory=list)
    layer_names: list[str] = field(default_factory=list)
    branch: str | None = None  # a depth sweep's branch multiplier, "1" or "1/sqrt(L)"

    @property
    def sizes(self) -> list[int]:
        return list(self.spec.depths or self.spec.widths)

    def mean_l1(self) -> np.ndarray:
        """[size, step, layer], the mean over seeds."""
        by_size = {s: [p.l1 for p in self.points if p.size == s] for s in self.sizes}
        return np.array([np.mean(by_size[s], axis=0) for s in self.sizes])

    def slopes(self) -> np.ndarray:
        """[step, layer]: the least-squares slope of log l1 against log size, over the
        sizes where it stayed finite (a run that diverged has none); NaN with fewer
        than two."""
        x = np.log(np.array(self.sizes, dtype=float))
        l1 = self.mean_l1()
        out = np.full(l1.shape[1:], np.nan)
        for t, layer in np.ndindex(out.shape):
            ok = np.isfinite(l1[:, t, layer]) & (l1[:, t, layer] > 0)
            if ok.sum() >= 2:
                out[t, layer] = np.polyfit(x[ok], np.log(l1[ok, t, layer]), 1)[0]
        return out

    def diverged(self) -> list[int]:
        """The sizes whose runs went non-finite (averaged over seeds: any seed)."""
        l1 = self.mean_l1()
        return [s for s, v in zip(self.sizes, l1) if not np.all(np.isfinite(v))]

    def to_dict(self) -> dict:
        slopes = self.slopes() if len(self.sizes) > 1 else None
        kind = "depth" if self.spec.depths else "width"
        return {
            "kind": kind, "param": self.spec.param, "base_width": self.spec.base_width,
            "branch": self.branch,
            "steps": self.spec.steps, "seeds": self.spec.seeds, "sizes": self.sizes,
            "layers": self.layer_names, "config": self.config.to_dict(),
            "points": [{kind: p.size, "seed": p.seed, "l1": p.l1, "std": p.std}
                       for p in self.points],
            "diverged": self.diverged(),
            "slopes": None if slopes is None else [
                {"step": t, **{name: float(slopes[t, i])
                               for i, name in enumerate(self.layer_names)}}
                for t in range(slopes.shape[0])],
        }


def _forward(x: np.ndarray, weights, rules, act, slope: float):
    """Every layer's z and output; the last layer is linear."""
    zs, outs, h = [], [], x
    for i, (w, rule) in enumerate(zip(weights, rules)):
        z = h @ w[0]
        if rule.multiplier != 1.0:
            z *= z.dtype.type(rule.multiplier)
        z += w[1]
        h = z if i == len(weights) - 1 else act.apply(z, slope)
        zs.append(z)
        outs.append(h)
    return zs, outs


def task(cfg: Config, draws: DrawCache) -> tuple[np.ndarray, np.ndarray]:
    """The inputs (report's own, for this seed) and OUTPUTS targets: a fixed random
    tanh network of them, each output scaled to unit std."""
    dt = np.dtype(cfg.dtype)
    x = np.array(input_batch(cfg, draws, dt))
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(11,)))
    w1 = rng.standard_normal((cfg.inputs, TEACHER_WIDTH)) / math.sqrt(cfg.inputs)
    w2 = rng.standard_normal((TEACHER_WIDTH, OUTPUTS)) / math.sqrt(TEACHER_WIDTH)
    y = np.tanh(x.astype(np.float64) @ w1) @ w2
    y /= np.maximum(y.std(axis=0), 1e-12)
    return x, y.astype(dt)


def _size(h: np.ndarray) -> tuple[float, float]:
    """(mean |h|, std h), the sums by BLAS (stats.std_of)."""
    flat = h.reshape(-1)
    return float(np.dot(np.abs(flat), np.ones_like(flat))) / flat.size, std_of(flat)


def _train(cfg: Config, rules: list[Rule], seed: int, steps: int, draws: DrawCache,
           check: Callable[[], None], residual_scale: float | None = None):
    """Train `steps` updates; the (l1, std) of every recorded layer at every step."""
    dt, act = np.dtype(cfg.dtype), ACTIVATIONS[cfg.activation]
    run_cfg = cfg.replace(seed=seed)
    x, y = task(run_cfg, draws)
    weights = [[weight_matrix(run_cfg, draws, i, r.spec, dt), np.zeros(r.spec.fan_out, dt)]
               for i, r in enumerate(rules)]
    groups: dict[float, list[np.ndarray]] = {}
    for (w, b), r in zip(weights, rules):
        groups.setdefault(r.lr_factor, []).append(w)
        groups.setdefault(r.bias_lr_factor, []).append(b)
    optimizers = [(params, make_optimizer(cfg.optimizer, params, cfg.lr * factor, cfg.momentum))
                  for factor, params in groups.items()]
    if residual_scale is None:  # every layer's output is recorded
        forward, backward, recorded = _forward, _backward, slice(None)
    else:  # the stream after the last block, and the output
        forward = partial(_residual_forward, scale=residual_scale)
        backward = partial(_residual_backward, scale=residual_scale)
        recorded = slice(-2, None)
    l1s, stds = [], []
    for t in range(steps + 1):
        check()
        zs, outs = forward(x, weights, rules, act, cfg.slope)
        sizes = [_size(h) for h in outs[recorded]]
        l1s.append([s[0] for s in sizes])
        stds.append([s[1] for s in sizes])
        if t == steps:
            break
        grads = backward(x, weights, rules, act, cfg.slope, zs, outs, (outs[-1] - y) / x.shape[0])
        for params, opt in optimizers:
            opt.update(params, [grads[id(p)] for p in params])
    return l1s, stds


def _backward(x, weights, rules, act, slope, zs, outs, g):
    """Gradients of every weight and bias, keyed by id(param)."""
    grads = {}
    for i in range(len(weights) - 1, -1, -1):
        w, b = weights[i]
        m = rules[i].multiplier
        below = x if i == 0 else outs[i - 1]
        grads[id(b)] = g.sum(axis=0)
        grads[id(w)] = (below.T @ g) * w.dtype.type(m)
        if i == 0:
            break
        g = (g @ w.T) * w.dtype.type(m)
        d = np.empty_like(g)
        act.derivative(zs[i - 1], outs[i - 1], d, slope)
        g *= d
    return grads


def _residual_forward(x, weights, rules, act, slope, scale):
    """Input layer, blocks x + scale (phi(x W1 + b1) W2 + b2), readout; zs and outs
    hold, per block, z1 then the stream."""
    h = x @ weights[0][0] * x.dtype.type(rules[0].multiplier) + weights[0][1]
    zs, outs = [h], [h]
    blocks = (len(weights) - 2) // 2
    for k in range(blocks):
        (w1, b1), (w2, b2) = weights[1 + 2 * k], weights[2 + 2 * k]
        z = h @ w1 + b1
        h = h + h.dtype.type(scale) * (act.apply(z, slope) @ w2 + b2)
        zs.append(z)
        outs.append(h)
    out = h @ weights[-1][0] * h.dtype.type(rules[-1].multiplier) + weights[-1][1]
    zs.append(out)
    outs.append(out)
    return zs, outs


def _residual_backward(x, weights, rules, act, slope, zs, outs, g, scale):
    grads = {}
    w, b = weights[-1]
    m = w.dtype.type(rules[-1].multiplier)
    grads[id(b)] = g.sum(axis=0)
    grads[id(w)] = (outs[-2].T @ g) * m
    g = (g @ w.T) * m
    blocks = (len(weights) - 2) // 2
    for k in range(blocks - 1, -1, -1):
        (w1, b1), (w2, b2) = weights[1 + 2 * k], weights[2 + 2 * k]
        z, below = zs[1 + k], outs[k]
        a = act.apply(z, slope)
        gb = g * g.dtype.type(scale)
        grads[id(b2)] = gb.sum(axis=0)
        grads[id(w2)] = a.T @ gb
        dz = (gb @ w2.T) * act.slope_of(z, slope)
        grads[id(b1)] = dz.sum(axis=0)
        grads[id(w1)] = below.T @ dz
        g = g + dz @ w1.T
    w, b = weights[0]
    m = w.dtype.type(rules[0].multiplier)
    grads[id(b)] = g.sum(axis=0)
    grads[id(w)] = (x.T @ g) * m
    return grads


def residual_rules(cfg: Config, depth: int, width: int, depth_mup: bool) -> list[Rule]:
    """Input layer, two layers per block (the config's scheme), readout; under
    depth-muP with Adam the blocks learn at lr / sqrt(depth)."""
    scheme = SCHEMES[cfg.scheme]
    fans = [(cfg.inputs, width)] + [(width, width)] * (2 * depth) + [(width, OUTPUTS)]
    factor = 1.0 / math.sqrt(depth) if depth_mup and cfg.optimizer == "adam" else 1.0
    return [Rule(scheme.weight_spec(cfg, fi, fo), lr_factor=factor if 0 < i < len(fans) - 1
                 else 1.0) for i, (fi, fo) in enumerate(fans)]


def sweep_bytes(cfg: Config, spec: SweepSpec) -> int:
    """The largest run's peak: its weights four or five times (weights, gradients,
    the optimizer's state), every layer's z and output, the task."""
    item = np.dtype(cfg.dtype).itemsize
    outputs = OUTPUTS
    state = 5 if cfg.optimizer == "adam" else 4
    if spec.depths:
        w, layers = cfg.width[0], 2 * max(spec.depths)
    else:
        w, layers = max(spec.widths), cfg.depth - 1
    weights = (cfg.inputs * w + layers * w * w + w * outputs + (layers + 2) * w) * item
    acts = 3 * (layers + 2) * cfg.batch * w * item
    task = 3 * cfg.batch * (cfg.inputs + outputs) * item
    return state * weights + acts + task + (cfg.inputs * w + layers * w * w) * 8


def check_sweep(cfg: Config, spec: SweepSpec) -> None:
    """ConfigError or MemoryBudgetError, in one line, before anything runs."""
    validate(cfg)
    if cfg.arch != "plain" or cfg.norm != "none":
        raise ConfigError("a sweep trains a plain stack without a norm (a depth sweep "
                          "builds its own residual blocks): set arch to plain, norm to none")
    if SCHEMES[cfg.scheme].data_init or SCHEMES[cfg.scheme].conv_only or \
            SCHEMES[cfg.scheme].recipe:
        raise ConfigError(f"{cfg.scheme} has no rule for every width: choose another scheme")
    if spec.param not in PARAMS:
        raise ConfigError(f"param must be one of {', '.join(PARAMS)}, not {spec.param!r}")
    sizes = spec.depths or spec.widths
    if len(sizes) < 2 or len(set(sizes)) != len(sizes):
        raise ConfigError("a sweep needs at least two different widths (or depths)")
    if spec.depths and spec.param != "sp":
        raise ConfigError("a depth sweep compares branch multipliers, not parametrizations: "
                          "leave param at sp")
    limit = 8192 if not spec.depths else 256
    if min(sizes) < 1 or max(sizes) > limit:
        noun = "depths" if spec.depths else "widths"
        raise ConfigError(f"{noun} must be between 1 and {limit}, not {max(sizes)}")
    if not 0 <= spec.steps <= MAX_SWEEP_STEPS:
        raise ConfigError(f"steps must be between 0 and {MAX_SWEEP_STEPS}, not {spec.steps}")
    if not 1 <= spec.seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds must be between 1 and {MAX_SEEDS}, not {spec.seeds}")
    if not 1 <= spec.base_width <= 8192:
        raise ConfigError(f"base-width must be between 1 and 8192, not {spec.base_width}")
    need, limit_bytes = sweep_bytes(cfg, spec), budget_bytes(cfg)
    if need > limit_bytes:
        raise MemoryBudgetError(f"this sweep needs {format_bytes(need)}, over the memory "
                                f"budget of {format_bytes(limit_bytes)}: lower the widths, "
                                "depth or batch")


def runs(spec: SweepSpec) -> list[tuple[int, int, str | None]]:
    """(size, seed, branch scale) of every run, in order; a depth sweep runs both
    branch multipliers."""
    sizes = spec.depths or spec.widths
    scales = BRANCH_SCALES if spec.depths else (None,)
    return [(s, seed, scale) for scale in scales for s in sizes for seed in range(spec.seeds)]


def sweep(cfg: Config, spec: SweepSpec, cancel: threading.Event | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[SweepResult]:
    """The sweep: one result (a depth sweep: one per branch multiplier). `progress`
    hears (runs done, runs in all) after every run; `cancel` stops between steps."""
    check_sweep(cfg, spec)

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    plan = runs(spec)
    results: dict[str | None, SweepResult] = {}
    draws = DrawCache()
    with np.errstate(all="ignore"):
        for done, (size, seed, scale) in enumerate(plan, start=1):
            draws.keep_only(set())
            if spec.depths:
                multiplier = 1.0 if scale == "1" else 1.0 / math.sqrt(size)
                rules = residual_rules(cfg, size, cfg.width[0], scale != "1")
                l1, std = _train(cfg, rules, cfg.seed + seed, spec.steps, draws, check,
                                 residual_scale=multiplier)
                names = ["stream", "output"]
            else:
                rules = layer_rules(cfg, spec.param, size, spec.base_width)
                l1, std = _train(cfg, rules, cfg.seed + seed, spec.steps, draws, check)
                names = [f"L{i + 1}" for i in range(cfg.depth)] + ["output"]
            result = results.setdefault(scale, SweepResult(spec, cfg, layer_names=names,
                                                           branch=scale))
            result.points.append(SweepPoint(size, seed, l1, std))
            if progress is not None:
                progress(done, len(plan))
    return [results[s] for s in (BRANCH_SCALES if spec.depths else (None,))]
