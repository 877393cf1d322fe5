"""The whole state of one experiment, as one frozen value.

Every front end (the app, the CLI, the tests) builds a `Config`, checks it with
`validate`, and hands it to the core. Field metadata names the CLI option and its
help text, so the option list is derived from this file and cannot drift.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

MAX_DEPTH = 1000
MAX_WIDTH = 8192
MAX_BATCH = 65536
MAX_BINS = 200

FAN_MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
INPUT_DISTS = ("normal", "uniform")
BIAS_MODES = ("auto", "zeros", "constant", "normal")
DTYPES = ("float32", "float64")
RANGE_MODES = ("shared", "layer")
TASKS = ("teacher", "spiral", "output")
ARCHS = ("plain", "residual", "rnn")
BRANCHES = ("plain", "zero_last", "fixup", "rezero")
RNN_INPUTS = ("all", "first")


class ConfigError(ValueError):
    """A config that cannot be run; the message is one line meant for a person."""


def _opt(default, help: str, option: str | None = None, **extra):
    """A dataclass field that also describes its command-line option."""
    return field(default=default, metadata={"help": help, "option": option, **extra})


@dataclass(frozen=True)
class Config:
    """One experiment: network shape, initialization, activation, data and display."""

    arch: str = _opt(
        "plain", "plain stack; residual: blocks x + F(x), F two dense layers, depth in "
        "blocks; rnn: h_t = phi(h_{t-1} W + x_t U + b)", choices=ARCHS,
    )
    scheme: str = _opt("normal", "initialization scheme (see `initscope schemes`)")
    std: float = _opt(0.01, "std of the `normal` scheme")
    bound: float = _opt(0.05, "bound a of the `uniform` scheme, U(-a, a)")
    value: float = _opt(0.01, "weight value of the `constant` scheme")
    gain: float = _opt(1.0, "multiplier applied to any scheme's weights")
    mode: str = _opt("fan_in", "fan used by he_* and variance_scaling", choices=FAN_MODES)
    distribution: str = _opt(
        "truncated_normal", "distribution of variance_scaling", choices=DISTRIBUTIONS
    )
    scale: float = _opt(1.0, "scale s of variance_scaling, Var = s / fan")
    activation: str = _opt("tanh", "activation (see `initscope activations`)")
    slope: float = _opt(0.01, "negative slope of leaky_relu")
    depth: int = _opt(10, f"hidden layers, 1-{MAX_DEPTH}")
    width: tuple[int, ...] = _opt(
        (500,), f"units per layer, 1-{MAX_WIDTH}: one number or a comma list, one per layer"
    )
    inputs: int = _opt(500, "input features")
    batch: int = _opt(1000, f"samples in the batch, 1-{MAX_BATCH}")
    input_dist: str = _opt(
        "normal", "input distribution: unit Gaussian, or uniform with unit variance",
        choices=INPUT_DISTS,
    )
    bias: str = _opt(
        "auto", "bias init: auto (the scheme's own), zeros, constant, normal",
        choices=BIAS_MODES,
    )
    bias_value: float = _opt(0.01, "bias value (constant) or std (normal)")
    seed: int = _opt(0, "random seed; the same seed gives the same draws for every scheme")
    dtype: str = _opt("float32", "float32 or float64", choices=DTYPES)
    bins: int = _opt(30, f"histogram bins, 2-{MAX_BINS}")
    hist_range: str = _opt(
        "shared", "histogram x-range: shared across layers or per layer",
        option="--range", choices=RANGE_MODES,
    )
    memory_limit: float = _opt(
        0.0, "memory budget in GiB (0: the smaller of 2 GiB and half the free memory)"
    )
    branch: str = _opt(
        "plain", "residual: both branch layers from the scheme (plain), last layer zero, "
        "fixup, or rezero (x + alpha F(x), alpha = 0)", choices=BRANCHES,
    )
    time_steps: int = _opt(50, "rnn: time steps T, 1-1000")
    rnn_input: str = _opt(
        "all", "rnn: unit-Gaussian input at every step, or only the first", choices=RNN_INPUTS,
    )
    init_steps: int = _opt(
        -1, "lsuv, data_dependent: stop after this many iterations (-1: run to the end)"
    )
    task: str = _opt(
        "teacher", "training task: teacher (regression), spiral (2 classes), output (the "
        "output is the loss)", choices=TASKS,
    )
    lr: float = _opt(0.01, "training: SGD learning rate")
    momentum: float = _opt(0.0, "training: momentum, 0 for plain SGD")
    batch_size: int = _opt(0, "training: minibatch size (0: the full batch every step)")

    def widths(self) -> list[int]:
        """Units of each hidden layer, one entry per layer."""
        if len(self.width) == 1:
            return [self.width[0]] * self.depth
        return list(self.width)

    def row_count(self) -> int:
        """Rows of a result: layers, blocks (residual) or time steps (rnn)."""
        return self.time_steps if self.arch == "rnn" else self.depth

    def fans(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each layer's weight matrix."""
        ws = self.widths()
        return list(zip([self.inputs] + ws[:-1], ws))

    def replace(self, **changes) -> Config:
        """A copy with some fields changed (the config is never mutated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-ready form, with option names as keys."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def option_name(f: dataclasses.Field) -> str:
    """The CLI option of a config field: `--bias-value` for `bias_value`."""
    return f.metadata.get("option") or "--" + f.name.replace("_", "-")


def parse_width(text: str) -> tuple[int, ...]:
    """Parse `500` or `500,400,300` into a tuple of widths."""
    try:
        parts = tuple(int(p) for p in str(text).replace(" ", "").split(",") if p != "")
    except ValueError:
        raise ConfigError(
            f"width must be a whole number or a comma list of them, not {text!r}"
        ) from None
    if not parts:
        raise ConfigError("width is empty")
    return parts


def _check_range(name: str, v: int, lo: int, hi: int) -> None:
    if not lo <= v <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {v}")


def _check_finite(name: str, v: float, positive: bool = False, nonneg: bool = False) -> None:
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, not {v}")
    if positive and v <= 0:
        raise ConfigError(f"{name} must be positive, not {v}")
    if nonneg and v < 0:
        raise ConfigError(f"{name} must not be negative, not {v}")


def validate(cfg: Config) -> Config:
    """Return `cfg` if it can run, else raise ConfigError naming the first problem."""
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.schemes import SCHEMES

    if cfg.scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {cfg.scheme!r}; choose one of: {', '.join(SCHEMES)}")
    if cfg.activation not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {cfg.activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
        )
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        v = getattr(cfg, f.name)
        if choices and v not in choices:
            name = option_name(f)[2:]
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {v!r}")
    _check_range("depth", cfg.depth, 1, MAX_DEPTH)
    if len(cfg.width) not in (1, cfg.depth):
        raise ConfigError(
            f"width lists one number per layer: got {len(cfg.width)} for depth {cfg.depth}"
        )
    for w in cfg.width:
        _check_range("width", w, 1, MAX_WIDTH)
    _check_range("inputs", cfg.inputs, 1, MAX_WIDTH)
    _check_range("batch", cfg.batch, 1, MAX_BATCH)
    _check_range("bins", cfg.bins, 2, MAX_BINS)
    _check_range("seed", cfg.seed, 0, 2**63 - 1)
    _check_finite("std", cfg.std, nonneg=True)
    _check_finite("bound", cfg.bound, nonneg=True)
    _check_finite("value", cfg.value)
    _check_finite("gain", cfg.gain)
    _check_finite("scale", cfg.scale, positive=True)
    _check_finite("bias-value", cfg.bias_value)
    if cfg.bias == "normal" and cfg.bias_value < 0:
        raise ConfigError(
            f"bias-value is the bias std here and must not be negative, not {cfg.bias_value}"
        )
    _check_finite("memory-limit", cfg.memory_limit, nonneg=True)
    if not 0.0 <= cfg.slope <= 1.0 or not math.isfinite(cfg.slope):
        raise ConfigError(f"slope must be between 0 and 1, not {cfg.slope}")
    _check_finite("lr", cfg.lr, positive=True)
    if not (math.isfinite(cfg.momentum) and 0.0 <= cfg.momentum < 1.0):
        raise ConfigError(f"momentum must be at least 0 and below 1, not {cfg.momentum}")
    _check_range("batch-size", cfg.batch_size, 0, MAX_BATCH)
    _check_range("init-steps", cfg.init_steps, -1, 10 * MAX_DEPTH)
    _check_range("time-steps", cfg.time_steps, 1, MAX_DEPTH)
    if cfg.arch != "plain" and SCHEMES[cfg.scheme].data_init:
        raise ConfigError(f"{cfg.scheme} tunes a plain stack: use --arch plain with it")
    if cfg.arch != "plain" and len(cfg.width) > 1:
        raise ConfigError(f"the {cfg.arch} network has one width: give --width one number")
    return cfg
