"""The whole state of one experiment, as one frozen value.

Every front end (the app, the CLI, the tests) builds a `Config` (from text through
`initscope.sim.parse`), checks it with `initscope.sim.validation.validate`, and hands
it to the core. Field metadata names the CLI option and its help text, so the option
list is derived from this file and cannot drift. Only what changes the numbers lives
here: how histograms are binned and which view is shown are display settings.

A leaf of the core: it imports nothing of initscope.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

MAX_DEPTH = 1000
MAX_WIDTH = 8192
MAX_BATCH = 65536
MAX_CHANNELS = 512
MAX_IMAGE = 256
MAX_TOKENS = 2048
MAX_MLP_RATIO = 16

FAN_MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
INPUT_DISTS = ("normal", "uniform")
BIAS_MODES = ("auto", "zeros", "constant", "normal")
DTYPES = ("float32", "float64")
TASKS = ("teacher", "spiral", "output")
OPTIMIZERS = ("sgd", "adam")
MAX_STEPS = 100_000
MAX_MEMORY_GIB = 4096.0  # a bound on the memory-limit option (4 TiB)
BRANCHES = ("plain", "zero_last", "fixup", "rezero")
RNN_INPUTS = ("all", "first")
LAYER_NORMS = ("batch", "layer", "rms")  # the norms that are layers of their own
NORMS = ("none", *LAYER_NORMS, "nf")  # nf: scaled weight standardization
NORM_PLACES = ("before", "after")  # plain: before or after phi; residual: pre- or post-norm
MASKS = ("causal", "full")
SWITCH = ("on", "off")


class ConfigError(ValueError):
    """A config that cannot be run; the message is one line meant for a person."""


def _opt(default, help: str, option: str | None = None, **extra):
    """A dataclass field that also describes its command-line option."""
    return field(default=default, metadata={"help": help, "option": option, **extra})


@dataclass(frozen=True)
class Config:
    """One experiment: network shape, initialization, activation, data and training."""

    arch: str = _opt("plain", "network architecture (see `initscope archs`)")
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
    memory_limit: float = _opt(
        0.0, "memory budget in GiB, up to 4096 (0: the smaller of 2 GiB and half the free "
        "memory)"
    )
    branch: str = _opt(
        "plain", "residual: both branch layers from the scheme (plain), last layer zero, "
        "fixup, or rezero (x + alpha F(x), alpha = 0)", choices=BRANCHES,
    )
    norm: str = _opt(
        "none", "normalization: batch, layer or rms norm (eps 1e-5, scale 1, shift 0), or "
        "nf (scaled weight standardization; residual: x + alpha F(x / beta))", choices=NORMS,
    )
    norm_at: str = _opt(
        "before", "where the norm sits: plain, before or after the activation; residual, "
        "before the branch (pre-norm, x + F(norm x)) or after the add (post-norm)",
        choices=NORM_PLACES,
    )
    nf_alpha: float = _opt(0.2, "nf residual blocks: alpha in x + alpha F(x / beta)")
    channels: int = _opt(16, f"conv: channels of every layer and of the input, 1-{MAX_CHANNELS}")
    image: int = _opt(16, f"conv: the input images' height and width, 1-{MAX_IMAGE}")
    kernel: int = _opt(3, "conv: kernel size k (k x k), 1-15")
    stride: int = _opt(1, "conv: stride, 1-4")
    padding: int = _opt(-1, "conv: zero padding per side, below the kernel (-1: same, k // 2)")
    time_steps: int = _opt(50, "rnn: time steps T, 1-1000")
    rnn_input: str = _opt(
        "all", "rnn: unit-Gaussian input at every step, or only the first", choices=RNN_INPUTS,
    )
    tokens: int = _opt(64, f"transformer: tokens T per sequence, 2-{MAX_TOKENS}")
    heads: int = _opt(4, "transformer: attention heads h; the width splits into heads of "
                         "width / h")
    mlp_ratio: int = _opt(4, f"transformer: the MLP's hidden units per unit of width, "
                             f"1-{MAX_MLP_RATIO}")
    mask: str = _opt("causal", "transformer: causal (a token sees the ones before it) or "
                               "full attention", choices=MASKS)
    correlation: float = _opt(
        0.0, "transformer: share c of each embedding common to its sequence, 0 <= c < 1 "
        "(tokens start at cosine similarity about c)"
    )
    skips: str = _opt("on", "transformer: the residual skips around attention and the "
                            "MLP, on or off", choices=SWITCH)
    init_steps: int = _opt(
        -1, "lsuv, data_dependent: stop after this many iterations (-1: run to the end)"
    )
    task: str = _opt(
        "teacher", "training task: teacher (regression), spiral (2 classes), output (the "
        "output is the loss)", choices=TASKS,
    )
    lr: float = _opt(0.01, "training: learning rate")
    momentum: float = _opt(0.0, "training: SGD's momentum, 0 for plain SGD")
    batch_size: int = _opt(0, "training: minibatch size (0: the full batch every step)")
    optimizer: str = _opt(
        "sgd", "training: sgd, or adam (betas 0.9, 0.999, eps 1e-8, as PyTorch's)",
        choices=OPTIMIZERS,
    )
    steps: int = _opt(100, f"training: steps to take, 1-{MAX_STEPS} (sweep: steps after "
                           "the init, 0-20)")

    def widths(self) -> list[int]:
        """Units of each hidden layer, one entry per layer."""
        if len(self.width) == 1:
            return [self.width[0]] * self.depth
        return list(self.width)

    def row_count(self) -> int:
        """Rows of a result: layers, blocks (residual) or time steps (rnn)."""
        return self.time_steps if self.arch == "rnn" else self.depth  # arch/rnn.py

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
