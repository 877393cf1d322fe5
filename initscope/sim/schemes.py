"""Registry of initialization schemes.

A scheme does not draw numbers itself: it says which unit "basis" draw a layer uses
(standard normal, U(-1, 1), normal truncated at +-2, orthogonal, or all ones) and
the factor that scales it. The draws are cached per seed and layer (draws.py), so
every scheme with the same seed reuses the same random numbers and a change of
scheme, gain or fan mode costs no new random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.config import Config
from initscope.sim.recipes import FORMULAS, RECIPES, recipe_stds

# std of a standard normal cut at +-2; dividing by it restores the lost variance
TRUNCATED_STD = 0.87962566103423978

NORMAL, UNIFORM, TRUNCATED, ORTHOGONAL, ONES = (
    "normal", "uniform", "truncated_normal", "orthogonal", "ones"
)
# convolution kernels zero but at the centre tap: the identity there (PyTorch's
# dirac_), or an orthogonal channel mixing (delta-orthogonal, Xiao et al. 2018)
DIRAC, DELTA = "dirac", "delta_orthogonal"
CENTRE_ONLY = (DIRAC, DELTA)


@dataclass(frozen=True)
class WeightSpec:
    """Weights of one layer: `scale` times a cached unit draw of kind `basis`."""

    basis: str
    scale: float
    fan_in: int
    fan_out: int

    @property
    def std(self) -> float:
        """The standard deviation every entry has by construction."""
        return abs(self.scale) * basis_std(self.basis, self.fan_in, self.fan_out)

    @property
    def var(self) -> float:
        """std squared; inf (not OverflowError, as `** 2` raises) for a huge std."""
        return self.std * self.std

    @property
    def mean(self) -> float:
        return self.scale if self.basis == ONES else 0.0


@dataclass(frozen=True)
class BiasSpec:
    """Biases of one layer: a constant `mean` plus `scale` times a unit draw."""

    mean: float = 0.0
    scale: float = 0.0
    basis: str = NORMAL  # NORMAL or UNIFORM (U(-1, 1))

    @property
    def std(self) -> float:
        return abs(self.scale) * basis_std(self.basis, 1, 1)

    @property
    def var(self) -> float:
        return self.std * self.std  # inf for a huge std, where `** 2` would raise


def basis_std(basis: str, fan_in: int, fan_out: int) -> float:
    """Entry std of a unit draw of each kind."""
    if basis == NORMAL:
        return 1.0
    if basis == UNIFORM:
        return 1.0 / math.sqrt(3.0)
    if basis == TRUNCATED:
        return TRUNCATED_STD
    if basis == ORTHOGONAL:
        # orthonormal columns (or rows) of length max(fan_in, fan_out)
        return 1.0 / math.sqrt(max(fan_in, fan_out))
    if basis == DIRAC:  # fan_out ones among fan_in fan_out entries: mean and E[w^2] 1/fan_in
        return math.sqrt(1.0 / fan_in - 1.0 / fan_in ** 2)
    if basis == DELTA:  # fan_out unit columns among fan_in rows: E[w^2] = 1/fan_in, mean ~ 0
        return 1.0 / math.sqrt(fan_in)
    return 0.0


def fan(cfg: Config, fan_in: int, fan_out: int, modes: tuple[str, ...]) -> float:
    """The fan a scheme divides by, chosen by `cfg.mode` among the allowed ones."""
    mode = cfg.mode if cfg.mode in modes else modes[0]
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def he_factor(cfg: Config) -> float:
    """The 2 of He init, or for leaky ReLU 2 / (1 + slope^2): PyTorch's kaiming_* with
    a = slope and nonlinearity='leaky_relu' (gain^2 = 2 / (1 + a^2), torch.nn.init).
    Keras' he_normal ignores the slope; that form is variance_scaling with scale 2."""
    if cfg.activation == "leaky_relu":
        return 2.0 / (1.0 + cfg.slope ** 2)
    return 2.0


def random_walk_gain(activation: str, n: int, slope: float) -> float:
    """Sussillo & Abbott (2014): the gain that keeps log |h| a fair random walk."""
    if activation == "linear":
        return math.exp(1.0 / (2.0 * n))
    if activation == "relu":
        return math.sqrt(2.0) * math.exp(1.2 / (max(n, 6) - 2.4))
    if activation == "tanh":
        return 1.13
    return ACTIVATIONS[activation].gain(slope)


def _variance_scaling(c: Config, fi: int, fo: int) -> tuple[str, float]:
    n = fan(c, fi, fo, ("fan_in", "fan_out", "fan_avg"))
    var = c.scale / n
    if c.distribution == "uniform":
        return UNIFORM, math.sqrt(3.0 * var)
    if c.distribution == "truncated_normal":
        return TRUNCATED, math.sqrt(var) / TRUNCATED_STD
    return NORMAL, math.sqrt(var)


@dataclass(frozen=True)
class Scheme:
    """One initialization scheme: its formula, its parameters, how to build a layer."""

    name: str
    formula: str
    params: tuple[str, ...]
    weights: Callable[[Config, int, int], tuple[str, float]]
    bias: Callable[[int], BiasSpec] | None = None  # the scheme's own bias, if not zero
    zero_mean: bool = True  # False: the variance theory does not apply
    data_init: bool = False  # tuned on the batch (datainit.py); `weights` is the start
    conv_only: bool = False  # a kernel's structure: for convolutional networks only
    recipe: bool = False  # a std per transformer weight group (recipes.py): transformers only

    def weight_spec(self, cfg: Config, fan_in: int, fan_out: int) -> WeightSpec:
        basis, scale = self.weights(cfg, fan_in, fan_out)
        return WeightSpec(basis, scale * cfg.gain, fan_in, fan_out)


def _recipe_default(name: str) -> Callable[[Config, int, int], tuple[str, float]]:
    """A recipe's rule for a query or key weight (its "everywhere else"); the
    transformer network reads each group's own std from recipes.py."""

    def weights(c: Config, fi: int, fo: int) -> tuple[str, float]:
        std = recipe_stds(name, fi, 1, max(c.depth, 1))["k"]
        return NORMAL, std

    return weights


def _torch_bias(fan_in: int) -> BiasSpec:
    return BiasSpec(scale=1.0 / math.sqrt(fan_in), basis=UNIFORM)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("zeros", "W = 0", (), lambda c, fi, fo: (ONES, 0.0)),
        Scheme("constant", "W = value", ("value",), lambda c, fi, fo: (ONES, c.value),
               zero_mean=False),
        Scheme("normal", "W ~ N(0, std^2)", ("std",), lambda c, fi, fo: (NORMAL, c.std)),
        Scheme("uniform", "W ~ U(-bound, bound)", ("bound",),
               lambda c, fi, fo: (UNIFORM, c.bound)),
        Scheme("lecun_normal", "W ~ N(0, 1/fan_in) (untruncated)", (),
               lambda c, fi, fo: (NORMAL, math.sqrt(1.0 / fi))),
        Scheme("lecun_uniform", "W ~ U(-a, a), a = sqrt(3/fan_in)", (),
               lambda c, fi, fo: (UNIFORM, math.sqrt(3.0 / fi))),
        Scheme("xavier_normal", "W ~ N(0, 2/(fan_in + fan_out)) (untruncated)", (),
               lambda c, fi, fo: (NORMAL, math.sqrt(2.0 / (fi + fo)))),
        Scheme("xavier_uniform", "W ~ U(-a, a), a = sqrt(6/(fan_in + fan_out))", (),
               lambda c, fi, fo: (UNIFORM, math.sqrt(6.0 / (fi + fo)))),
        Scheme("he_normal", "W ~ N(0, 2/fan) (untruncated), fan = fan_in or fan_out (mode); "
               "leaky_relu: 2/((1 + slope^2) fan), as PyTorch's kaiming_normal_",
               ("mode",),
               lambda c, fi, fo: (NORMAL, math.sqrt(
                   he_factor(c) / fan(c, fi, fo, ("fan_in", "fan_out"))))),
        Scheme("he_uniform", "W ~ U(-a, a), a = sqrt(6/fan), fan = fan_in or fan_out (mode); "
               "leaky_relu: a = sqrt(6/((1 + slope^2) fan)), as PyTorch's kaiming_uniform_",
               ("mode",),
               lambda c, fi, fo: (UNIFORM, math.sqrt(
                   3.0 * he_factor(c) / fan(c, fi, fo, ("fan_in", "fan_out"))))),
        Scheme("variance_scaling",
               "Var(W) = scale/fan (mode: fan_in, fan_out, fan_avg); normal, uniform, or "
               "normal cut at +-2 std with std divided by 0.87962566",
               ("scale", "mode", "distribution"), _variance_scaling),
        Scheme("orthogonal", "W = gain * Q, Q from the QR of a Gaussian matrix, sign-fixed; "
               "every singular value equals gain", (),
               lambda c, fi, fo: (ORTHOGONAL, 1.0)),
        Scheme("random_walk", "W ~ N(0, g^2/fan_in); g = exp(1/(2N)) linear, "
               "sqrt(2) exp(1.2/(max(N,6) - 2.4)) relu, 1.13 tanh, else the activation's gain",
               (), lambda c, fi, fo: (NORMAL, random_walk_gain(c.activation, fi, c.slope)
                                      / math.sqrt(fi))),
        Scheme("torch_linear", "PyTorch nn.Linear: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) "
               "(kaiming_uniform with a = sqrt(5))", (),
               lambda c, fi, fo: (UNIFORM, 1.0 / math.sqrt(fi)), bias=_torch_bias),
        Scheme("keras_dense", "Keras Dense: glorot_uniform, a = sqrt(6/(fan_in + fan_out)); "
               "zero bias", (), lambda c, fi, fo: (UNIFORM, math.sqrt(6.0 / (fi + fo)))),
        Scheme("flax_dense", "Flax Dense: lecun_normal, truncated normal with Var = 1/fan_in; "
               "zero bias", (), lambda c, fi, fo: (TRUNCATED, math.sqrt(1.0 / fi) / TRUNCATED_STD)),
        Scheme("dirac", "conv: W = gain at the kernel's centre from channel c to channel c, "
               "0 elsewhere (PyTorch's dirac_): each layer passes its input on", (),
               lambda c, fi, fo: (DIRAC, 1.0), conv_only=True),
        Scheme("delta_orthogonal", "conv: W = gain * Q at the kernel's centre, Q a random "
               "orthogonal channel mixing, 0 elsewhere (Xiao et al. 2018)", (),
               lambda c, fi, fo: (DELTA, 1.0), conv_only=True),
        *(Scheme(name, FORMULAS[name], (), _recipe_default(name), recipe=True)
          for name in RECIPES),
        Scheme("lsuv", "LSUV (Mishkin & Matas): orthonormal, then layer by layer W /= std(z) on "
               "the batch until |Var(z) - 1| < 0.1 (10 tries at most); zero bias",
               ("init_steps",), lambda c, fi, fo: (ORTHOGONAL, 1.0), data_init=True),
        Scheme("data_dependent", "Krahenbuhl et al.: each unit to unit std (bias -mean/std) on "
               "the batch, then layers rescaled by sqrt(r_k / geomean r), "
               "r_k = sqrt(mean dW^2 / mean W^2), 10 rounds",
               ("init_steps",), lambda c, fi, fo: (NORMAL, 1.0 / math.sqrt(fi)), data_init=True),
    )
}


def bias_spec(cfg: Config, fan_in: int) -> BiasSpec:
    """The bias of a layer: the scheme's own under `auto`, else the chosen mode."""
    if cfg.bias == "constant":
        return BiasSpec(mean=cfg.bias_value)
    if cfg.bias == "normal":
        return BiasSpec(scale=cfg.bias_value)
    own = SCHEMES[cfg.scheme].bias
    if cfg.bias == "auto" and own is not None:
        return own(fan_in)
    return BiasSpec()
