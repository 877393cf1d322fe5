""""Copy as code": the config's scheme, gain and bias as PyTorch, Keras and JAX code.

Every snippet sets up one dense layer (`fan_in` -> `fan_out`) the way initscope does.
Schemes with a framework call use it; the rest are written with the framework's
generic normal, uniform or variance-scaling initializers and the numbers spelled
out. The plain Gaussian is "untruncated_normal" in Keras' VarianceScaling and
"normal" in jax.nn.initializers.variance_scaling, which accepts only
"truncated_normal", "normal" and "uniform" (jax/_src/nn/initializers.py);
"truncated_normal" (cut at 2 std, with the 0.8796 correction) is the same in both.

initscope's lecun/xavier/he `_normal` schemes are untruncated, as PyTorch's
functions of those names are; Keras' and JAX's functions of the same names are
truncated, so the snippets spell out the untruncated distribution initscope drew.

A negative gain flips the sign of every weight (the statistics of a symmetric
scheme do not change): the snippets draw with |gain| and negate the weights.
"""

from __future__ import annotations

import math

from initscope.sim.arch import ARCHS
from initscope.sim.arch.grids import padding_of
from initscope.sim.config import Config
from initscope.sim.norm import EPS, activation_gamma
from initscope.sim.schemes import SCHEMES, he_factor, random_walk_gain

NAMING_NOTE = ("lecun_normal, xavier_normal and he_normal are untruncated normals, as PyTorch's "
               "functions of those names; Keras' and JAX's functions of the same names draw "
               "truncated normals: for those, use variance_scaling with the truncated_normal "
               "distribution (flax_dense is JAX's lecun_normal)")
# initscope's distribution names -> Keras' and JAX's names for the same distribution
KERAS_DIST = {"normal": "untruncated_normal", "uniform": "uniform",
              "truncated_normal": "truncated_normal"}
JAX_DIST = {"untruncated_normal": "normal", "uniform": "uniform",
            "truncated_normal": "truncated_normal"}


def _num(x: float) -> str:
    return f"{x:.6g}"


def _conv(cfg: Config) -> bool:
    return ARCHS[cfg.arch].convolutional


NO_SNIPPET = "tunes the weights on a data batch: no fixed initializer"


def variance_scaling(cfg: Config, fan_in: int) -> tuple[float, str, str] | None:
    """(scale, mode, distribution) in Keras' sense, or None if not expressible."""
    g2 = cfg.gain ** 2
    mode = cfg.mode if cfg.mode in ("fan_in", "fan_out") else "fan_in"
    table = {
        "lecun_normal": (g2, "fan_in", "untruncated_normal"),
        "lecun_uniform": (g2, "fan_in", "uniform"),
        "xavier_normal": (g2, "fan_avg", "untruncated_normal"),
        "xavier_uniform": (g2, "fan_avg", "uniform"),
        "keras_dense": (g2, "fan_avg", "uniform"),
        "he_normal": (he_factor(cfg) * g2, mode, "untruncated_normal"),
        "he_uniform": (he_factor(cfg) * g2, mode, "uniform"),
        "variance_scaling": (cfg.scale * g2, cfg.mode, KERAS_DIST[cfg.distribution]),
        "flax_dense": (g2, "fan_in", "truncated_normal"),
        "torch_linear": (g2 / 3, "fan_in", "uniform"),
        "random_walk": (random_walk_gain(cfg.activation, fan_in, cfg.slope) ** 2 * g2,
                        "fan_in", "untruncated_normal"),
    }
    return table.get(cfg.scheme)


def _bias_parts(cfg: Config, fan_in: int) -> tuple[str, float]:
    """The bias rule ("zeros", "constant", "normal", "uniform") and its number."""
    mode = cfg.bias
    if mode == "auto":
        if SCHEMES[cfg.scheme].bias is not None:
            return "uniform", 1 / math.sqrt(fan_in)
        return "zeros", 0.0
    return mode, cfg.bias_value


def pytorch(cfg: Config, fan_in: int, fan_out: int) -> str:
    g = abs(cfg.gain)  # a negative gain: drawn with |gain|, then negated below
    w = "layer.weight"
    lines = ["import math", "import torch", "from torch import nn", "", _torch_layer(cfg)]
    simple = {
        "zeros": f"nn.init.zeros_({w})",
        "constant": f"nn.init.constant_({w}, {_num(cfg.value * g)})",
        "normal": f"nn.init.normal_({w}, mean=0.0, std={_num(cfg.std * g)})",
        "uniform": f"nn.init.uniform_({w}, -{_num(cfg.bound * g)}, {_num(cfg.bound * g)})",
        "xavier_normal": f"nn.init.xavier_normal_({w}, gain={_num(g)})",
        "xavier_uniform": f"nn.init.xavier_uniform_({w}, gain={_num(g)})",
        "keras_dense": f"nn.init.xavier_uniform_({w}, gain={_num(g)})",
        "orthogonal": f"nn.init.orthogonal_({w}, gain={_num(g)})",
    }
    vs = variance_scaling(cfg, fan_in)
    centre = cfg.kernel // 2
    if cfg.scheme in simple:
        lines.append(simple[cfg.scheme])
    elif cfg.scheme == "dirac":
        lines.append(f"nn.init.dirac_({w})")
        if g != 1:
            lines.append(f"with torch.no_grad():\n    {w}.mul_({_num(g)})")
    elif cfg.scheme == "delta_orthogonal":  # Xiao et al. 2018: orthogonal at the centre tap
        lines += [f"nn.init.zeros_({w})",
                  "with torch.no_grad():",
                  f"    {w}[:, :, {centre}, {centre}] = nn.init.orthogonal_(",
                  f"        torch.empty({cfg.channels}, {cfg.channels}), gain={_num(g)})"]
    elif cfg.scheme == "torch_linear":
        lines.append("layer.reset_parameters()  # kaiming_uniform_(a=sqrt(5)): the default")
        if g != 1:
            lines.append(f"with torch.no_grad():\n    {w}.mul_({_num(g)})")
    elif vs is not None:
        scale, mode, dist = vs
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        std = math.sqrt(scale / fan)
        lines.append(f"# Var(W) = {_num(scale)} / {mode} ({_num(fan)})")
        if dist == "uniform":
            a = math.sqrt(3) * std
            lines.append(f"nn.init.uniform_({w}, -{_num(a)}, {_num(a)})")
        elif dist == "truncated_normal":
            s = std / 0.87962566103423978
            lines.append(f"nn.init.trunc_normal_({w}, std={_num(s)}, a=-{_num(2 * s)}, "
                         f"b={_num(2 * s)})")
        else:
            lines.append(f"nn.init.normal_({w}, mean=0.0, std={_num(std)})")
    else:
        return f"# {cfg.scheme} {NO_SNIPPET}"
    if cfg.gain < 0:
        lines.append(f"with torch.no_grad():\n    {w}.neg_()  # gain {_num(cfg.gain)}")
    rule, value = _bias_parts(cfg, fan_in)
    bias = {"zeros": "nn.init.zeros_(layer.bias)",
            "constant": f"nn.init.constant_(layer.bias, {_num(value)})",
            "normal": f"nn.init.normal_(layer.bias, mean=0.0, std={_num(value)})",
            "uniform": None}[rule]
    if bias and not (cfg.scheme == "torch_linear" and rule == "uniform"):
        lines.append(bias)
    return "\n".join(lines)


def _keras_init(cfg: Config, fan_in: int) -> str | None:
    g = abs(cfg.gain)  # a negative gain: drawn with |gain|, then negated
    simple = {
        "zeros": "keras.initializers.Zeros()",
        "constant": f"keras.initializers.Constant({_num(cfg.value * g)})",
        "normal": f"keras.initializers.RandomNormal(mean=0.0, stddev={_num(cfg.std * g)})",
        "uniform": f"keras.initializers.RandomUniform(-{_num(cfg.bound * g)}, "
                   f"{_num(cfg.bound * g)})",
        "orthogonal": f"keras.initializers.Orthogonal(gain={_num(g)})",
    }
    if cfg.scheme in simple:
        return simple[cfg.scheme]
    vs = variance_scaling(cfg, fan_in)
    if vs is None:
        return None
    scale, mode, dist = vs
    return (f'keras.initializers.VarianceScaling(scale={_num(scale)}, mode="{mode}", '
            f'distribution="{dist}")')


def _centre_tap_function(cfg: Config, library: str) -> list[str]:
    """A kernel initializer (HWIO) for Dirac or delta-orthogonal: zero but the centre
    tap, which is gain times the identity or an orthogonal matrix."""
    g, c = _num(abs(cfg.gain)), cfg.channels
    if cfg.scheme == "dirac":
        centre = f"{g} * np.eye({c})"
    elif library == "keras":
        centre = f"np.asarray(keras.initializers.Orthogonal(gain={g})(({c}, {c})))"
    else:
        centre = f"np.asarray(init.orthogonal(scale={g})(jax.random.key(1), ({c}, {c})))"
    return ["import numpy as np", "",
            f"def {cfg.scheme}({'key, ' if library == 'jax' else ''}shape, dtype=None):"
            "  # (k, k, in, out), zero but the centre",
            "    w = np.zeros(shape, \"float32\")",
            f"    w[shape[0] // 2, shape[1] // 2] = {centre}",
            "    return w", ""]


def keras(cfg: Config, fan_in: int, fan_out: int) -> str:
    init = cfg.scheme if SCHEMES[cfg.scheme].conv_only else _keras_init(cfg, fan_in)
    if init is None:
        return f"# {cfg.scheme} {NO_SNIPPET}"
    rule, value = _bias_parts(cfg, fan_in)
    bias = {"zeros": "keras.initializers.Zeros()",
            "constant": f"keras.initializers.Constant({_num(value)})",
            "normal": f"keras.initializers.RandomNormal(mean=0.0, stddev={_num(value)})",
            "uniform": f"keras.initializers.RandomUniform(-{_num(value)}, {_num(value)})"}[rule]
    if _conv(cfg):
        c, k, p = cfg.channels, cfg.kernel, padding_of(cfg)
        head = [f"layer = keras.layers.Conv2D({c}, {k}, strides={cfg.stride}, padding=\"valid\","]
        build = f"layer.build((None, {cfg.image + 2 * p}, {cfg.image + 2 * p}, {c}))"
        if p:  # Keras' "same" is not every padding: pad explicitly
            build += f"  # after keras.layers.ZeroPadding2D({p})"
    else:
        head = [f"layer = keras.layers.Dense({fan_out},"]
        build = f"layer.build(({fan_in},))"
    own = _centre_tap_function(cfg, "keras") if SCHEMES[cfg.scheme].conv_only else [""]
    lines = ["import keras", *own, *head,
             f"    kernel_initializer={init},",
             f"    bias_initializer={bias})",
             build]
    if cfg.gain < 0:
        lines.append(f"layer.kernel.assign(-layer.kernel)  # gain {_num(cfg.gain)}")
    return "\n".join(lines)


def jax(cfg: Config, fan_in: int, fan_out: int) -> str:
    g = abs(cfg.gain)  # a negative gain: drawn with |gain|, then negated
    simple = {
        "zeros": "init.zeros",
        "constant": f"init.constant({_num(cfg.value * g)})",
        "normal": f"init.normal(stddev={_num(cfg.std * g)})",
        "uniform": f"symmetric_uniform({_num(cfg.bound * g)})",
        "orthogonal": f"init.orthogonal(scale={_num(g)})",
    }
    vs = variance_scaling(cfg, fan_in)
    if cfg.scheme in simple:
        kernel = simple[cfg.scheme]
    elif cfg.scheme == "delta_orthogonal":  # JAX's own, HWIO (Xiao et al. 2018)
        kernel = f"init.delta_orthogonal(scale={_num(g)})"
    elif cfg.scheme == "dirac":
        kernel = "dirac"
    elif vs is not None:
        scale, mode, dist = vs
        kernel = f'init.variance_scaling({_num(scale)}, "{mode}", "{JAX_DIST[dist]}")'
    else:
        return f"# {cfg.scheme} {NO_SNIPPET}"
    rule, value = _bias_parts(cfg, fan_in)
    bias = {"zeros": "init.zeros", "constant": f"init.constant({_num(value)})",
            "normal": f"init.normal(stddev={_num(value)})",
            "uniform": f"symmetric_uniform({_num(value)})"}[rule]
    lines = ["import jax", "from jax.nn import initializers as init", ""]
    if "symmetric_uniform" in kernel + bias:
        lines += ["def symmetric_uniform(a):",
                  "    return lambda key, shape, dtype=jax.numpy.float32: "
                  "jax.random.uniform(key, shape, dtype, -a, a)", ""]
    if cfg.scheme == "dirac":
        lines += _centre_tap_function(cfg, "jax")
    if _conv(cfg):  # HWIO: JAX's initializers take the fans from this shape
        c, k, p = cfg.channels, cfg.kernel, padding_of(cfg)
        shape, width = f"({k}, {k}, {c}, {c})", c
    else:
        shape, width = f"({fan_in}, {fan_out})", fan_out
    lines += ["key_w, key_b = jax.random.split(jax.random.key(0))",
              f"W = ({kernel})(key_w, {shape})",
              f"b = ({bias})(key_b, ({width},))"]
    if _conv(cfg):
        lines += ["# z = jax.lax.conv_general_dilated(x, W, "
                  f"({cfg.stride}, {cfg.stride}), [({p}, {p}), ({p}, {p})],",
                  "#     dimension_numbers=(\"NHWC\", \"HWIO\", \"NHWC\")) + b"]
    if cfg.gain < 0:
        lines.append(f"W = -W  # gain {_num(cfg.gain)}")
    return "\n".join(lines)


def _placement(cfg: Config) -> str:
    """Where the norm goes, as a comment line."""
    if ARCHS[cfg.arch].blocks:
        return ("# x = x + F(norm(x))  (pre-norm)" if cfg.norm_at == "before"
                else "# x = norm(x + F(x))  (post-norm)")
    return ("# h = phi(norm(layer(h)))" if cfg.norm_at == "before"
            else "# h = norm(phi(layer(h)))")


def _nf_comment(cfg: Config) -> str:
    gamma = _num(activation_gamma(cfg.activation, cfg.slope))
    block = (f"; blocks x + {_num(cfg.nf_alpha)} F(x / beta), beta = sqrt(1 + k "
             f"{_num(cfg.nf_alpha)}^2) before block k" if ARCHS[cfg.arch].blocks else "")
    return (f"# scaled weight standardization: gamma 1 here (this layer reads the data), "
            f"gamma = {gamma} in every layer after {cfg.activation}{block}")


PYTORCH_NORMS = {"batch": "nn.BatchNorm1d", "layer": "nn.LayerNorm", "rms": "nn.RMSNorm"}
CHANNEL_LAST = ["class ChannelLast(nn.Module):  # normalizes each pixel's channels (N, C, H, W)",
                "    def __init__(self, norm):",
                "        super().__init__()",
                "        self.norm = norm",
                "",
                "    def forward(self, x):",
                "        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)",
                ""]
KERAS_NORMS = {"batch": "BatchNormalization", "layer": "LayerNormalization",
               "rms": "RMSNormalization"}


def _pytorch_norm(cfg: Config, width: int) -> list[str]:
    if cfg.norm == "nf":
        return ["", _nf_comment(cfg),
                "class ScaledStandardization(nn.Module):",
                "    def __init__(self, gamma):",
                "        super().__init__()",
                "        self.gamma = gamma",
                "",
                "    def forward(self, w):  # (fan_out, fan_in, ...): one output unit a row",
                "        dims = tuple(range(1, w.dim()))",
                "        mean = w.mean(dim=dims, keepdim=True)",
                "        std = w.std(dim=dims, unbiased=False, keepdim=True)",
                "        return self.gamma * (w - mean) / (std * math.sqrt(w[0].numel()))",
                "",
                "torch.nn.utils.parametrize.register_parametrization(",
                "    layer, \"weight\", ScaledStandardization(1.0))"]
    # scale 1 and shift 0: the modules' own init
    if not _conv(cfg):
        return ["", _placement(cfg), f"norm = {PYTORCH_NORMS[cfg.norm]}({width}, eps={EPS:g})"]
    if cfg.norm == "batch":  # per channel over the images and pixels
        return ["", _placement(cfg), f"norm = nn.BatchNorm2d({width}, eps={EPS:g})"]
    return ["", _placement(cfg), *CHANNEL_LAST,
            f"norm = ChannelLast({PYTORCH_NORMS[cfg.norm]}({width}, eps={EPS:g}))"]


def _keras_norm(cfg: Config) -> list[str]:
    if cfg.norm == "nf":
        return ["", _nf_comment(cfg),
                "def standardized(kernel, gamma=1.0):  # (..., fan_in, fan_out)",
                "    axes = tuple(range(len(kernel.shape) - 1))",
                "    fan_in = keras.ops.size(kernel) // kernel.shape[-1]",
                "    mean = keras.ops.mean(kernel, axis=axes, keepdims=True)",
                "    std = keras.ops.std(kernel, axis=axes, keepdims=True)",
                "    return gamma * (kernel - mean) / (std * fan_in ** 0.5)",
                "",
                "W_hat = standardized(layer.kernel)  # what the layer multiplies by"]
    return ["", _placement(cfg),
            f"norm = keras.layers.{KERAS_NORMS[cfg.norm]}(epsilon={EPS:g})"]


def _jax_norm(cfg: Config) -> list[str]:
    if cfg.norm == "nf":
        return ["", _nf_comment(cfg),
                "def standardized(W, gamma=1.0):  # (..., fan_in, fan_out)",
                "    axes = tuple(range(W.ndim - 1))",
                "    fan_in = W.size // W.shape[-1]",
                "    return gamma * (W - W.mean(axes)) / (W.std(axes) * fan_in ** 0.5)",
                "",
                "W_hat = standardized(W)"]
    axes = "(0, 1, 2)" if _conv(cfg) else "0"  # NHWC: per channel over images and pixels
    body = {"batch": f"(x - x.mean({axes})) / jax.numpy.sqrt(x.var({axes}) + eps)",
            "layer": "(x - x.mean(-1, keepdims=True)) / "
                     "jax.numpy.sqrt(x.var(-1, keepdims=True) + eps)",
            "rms": "x / jax.numpy.sqrt((x * x).mean(-1, keepdims=True) + eps)"}[cfg.norm]
    return ["", _placement(cfg) + ", at init (scale 1, shift 0)",
            f"def norm(x, eps={EPS:g}):", f"    return {body}"]


def _torch_layer(cfg: Config) -> str:
    if _conv(cfg):
        c = cfg.channels
        return (f"layer = nn.Conv2d({c}, {c}, {cfg.kernel}, stride={cfg.stride}, "
                f"padding={padding_of(cfg)})")
    fan_in, fan_out = _fans(cfg)
    return f"layer = nn.Linear({fan_in}, {fan_out})"


def _fans(cfg: Config) -> tuple[int, int]:
    """The first layer's fans; a convolution's are channels k^2 both (PyTorch's)."""
    if _conv(cfg):
        fan = cfg.channels * cfg.kernel ** 2
        return fan, fan
    return cfg.fans()[0]


def snippets(cfg: Config) -> dict[str, str]:
    """Code for the config's first layer in every framework, with its norm; for a
    transformer, the whole stack (codegen_transformer.py)."""
    if ARCHS[cfg.arch].attends:
        from initscope.codegen_transformer import snippets as transformer_snippets

        return transformer_snippets(cfg)
    fan_in, fan_out = _fans(cfg)
    out = {name: fn(cfg, fan_in, fan_out)
           for name, fn in (("pytorch", pytorch), ("keras", keras), ("jax", jax))}
    if cfg.norm == "none" or out["pytorch"].startswith("#"):
        return out
    if _conv(cfg):
        width = cfg.channels
    else:
        width = fan_out if not ARCHS[cfg.arch].blocks or cfg.norm_at == "after" else fan_in
    out["pytorch"] += "\n" + "\n".join(_pytorch_norm(cfg, width))
    out["keras"] += "\n" + "\n".join(_keras_norm(cfg))
    out["jax"] += "\n" + "\n".join(_jax_norm(cfg))
    return out
