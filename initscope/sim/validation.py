"""Whether a config can run: every value in range, every name known, and what its
architecture asks of it. Messages speak of the config's own fields; each front end
adds its own hint (the CLI its flags, the app its keys)."""

from __future__ import annotations

import dataclasses
import math

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS
from initscope.sim.config import (
    MAX_BATCH,
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_IMAGE,
    MAX_MEMORY_GIB,
    MAX_MLP_RATIO,
    MAX_STEPS,
    MAX_TOKENS,
    MAX_WIDTH,
    Config,
    ConfigError,
    option_name,
)
from initscope.sim.schemes import SCHEMES


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


def _known(kind: str, value: str, registry: dict) -> None:
    if value not in registry:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of: {', '.join(registry)}")


def _listed(names: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def validate(cfg: Config) -> Config:
    """Return `cfg` if it can run, else raise ConfigError naming the first problem."""
    _known("architecture", cfg.arch, ARCHS)
    _known("scheme", cfg.scheme, SCHEMES)
    _known("activation", cfg.activation, ACTIVATIONS)
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
    if cfg.memory_limit > MAX_MEMORY_GIB:
        raise ConfigError(f"memory-limit must be at most {MAX_MEMORY_GIB:g} GiB, not "
                          f"{cfg.memory_limit:g}")
    if not 0.0 <= cfg.slope <= 1.0 or not math.isfinite(cfg.slope):
        raise ConfigError(f"slope must be between 0 and 1, not {cfg.slope}")
    _check_finite("lr", cfg.lr, positive=True)
    if not (math.isfinite(cfg.momentum) and 0.0 <= cfg.momentum < 1.0):
        raise ConfigError(f"momentum must be at least 0 and below 1, not {cfg.momentum}")
    _check_range("batch-size", cfg.batch_size, 0, MAX_BATCH)
    _check_range("steps", cfg.steps, 0, MAX_STEPS)  # 0: a sweep records the init alone
    _check_range("init-steps", cfg.init_steps, -1, 10 * MAX_DEPTH)
    _check_range("time-steps", cfg.time_steps, 1, MAX_DEPTH)
    _check_range("channels", cfg.channels, 1, MAX_CHANNELS)
    _check_range("image", cfg.image, 1, MAX_IMAGE)
    _check_range("kernel", cfg.kernel, 1, 15)
    _check_range("stride", cfg.stride, 1, 4)
    _check_range("padding", cfg.padding, -1, 14)
    _check_finite("nf-alpha", cfg.nf_alpha, nonneg=True)
    _check_range("tokens", cfg.tokens, 2, MAX_TOKENS)
    _check_range("heads", cfg.heads, 1, MAX_WIDTH)
    _check_range("mlp-ratio", cfg.mlp_ratio, 1, MAX_MLP_RATIO)
    if not (math.isfinite(cfg.correlation) and 0.0 <= cfg.correlation < 1.0):
        raise ConfigError(f"correlation must be at least 0 and below 1, not {cfg.correlation}")
    if cfg.norm != "none" and not ARCHS[cfg.arch].normalizes:
        takes = _listed([a.name for a in ARCHS.values() if a.normalizes])
        raise ConfigError(f"norm is for the {takes} networks: set norm to none for "
                          f"the {cfg.arch} network")
    if cfg.norm not in ARCHS[cfg.arch].norms:
        raise ConfigError(f"the {cfg.arch} network's norm is "
                          f"{_listed(list(ARCHS[cfg.arch].norms)).replace(' and ', ' or ')}, "
                          f"not {cfg.norm}")
    if SCHEMES[cfg.scheme].data_init and not ARCHS[cfg.arch].tunes:
        raise ConfigError(f"{cfg.scheme} tunes a dense stack on the batch: choose the plain "
                          f"network, or another scheme for the {cfg.arch} network")
    if SCHEMES[cfg.scheme].conv_only and not ARCHS[cfg.arch].convolutional:
        takes = _listed([a.name for a in ARCHS.values() if a.convolutional])
        raise ConfigError(f"{cfg.scheme} is a convolution kernel's init, for the {takes} "
                          f"networks: choose another scheme for the {cfg.arch} network")
    if SCHEMES[cfg.scheme].recipe and not ARCHS[cfg.arch].attends:
        takes = _listed([a.name for a in ARCHS.values() if a.attends])
        raise ConfigError(f"{cfg.scheme} is a transformer recipe, for the {takes} "
                          f"network: choose another scheme for the {cfg.arch} network")
    ARCHS[cfg.arch].check(cfg)
    return cfg
