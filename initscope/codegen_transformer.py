""""Copy as code" for the transformer network: the whole stack, initialized as
initscope draws it, in PyTorch, Keras and JAX.

Each weight group's init is written from its spec (sim/arch/transformer.py's
`group_specs`), so a recipe's per-group stds and any scheme come out alike: a
normal, a symmetric uniform, a normal cut at +-2 of its own std, an orthogonal
matrix, a constant or zeros, the numbers spelled out. PyTorch gets
`nn.TransformerEncoderLayer` where it computes what initscope does (layer norm, the
skips, alpha 1, logits / sqrt(d_head), a ReLU or GELU MLP); everything else, and
Keras and JAX, get a small block written out. The attention has no biases, as
initscope's; the MLP's biases follow the bias setting.
"""

from __future__ import annotations

from initscope.sim.arch.transformer import biases, group_specs, placement
from initscope.sim.config import Config
from initscope.sim.norm import EPS
from initscope.sim.recipes import GROUPS
from initscope.sim.schemes import NORMAL, ONES, ORTHOGONAL, TRUNCATED, UNIFORM, BiasSpec

# initscope's activations in each framework (elu alpha 1, softplus beta 1: the defaults)
TORCH_ACTS = {"linear": "lambda z: z", "tanh": "torch.tanh", "sigmoid": "torch.sigmoid",
              "relu": "F.relu", "leaky_relu": "lambda z: F.leaky_relu(z, {slope})",
              "elu": "F.elu", "selu": "F.selu", "gelu": "F.gelu",
              "gelu_tanh": "lambda z: F.gelu(z, approximate=\"tanh\")", "silu": "F.silu",
              "softplus": "F.softplus"}
# JAX's jax.nn and Keras' keras.ops name these alike: {nn} is the one, {np} the array
# module (tanh lives in jax.numpy)
ARRAY_ACTS = {"linear": "lambda z: z", "tanh": "{np}.tanh", "sigmoid": "{nn}.sigmoid",
              "relu": "{nn}.relu", "leaky_relu": "lambda z: {nn}.leaky_relu(z, {slope})",
              "elu": "{nn}.elu", "selu": "{nn}.selu",
              "gelu": "lambda z: {nn}.gelu(z, approximate=False)",
              "gelu_tanh": "lambda z: {nn}.gelu(z, approximate=True)", "silu": "{nn}.silu",
              "softplus": "{nn}.softplus"}
GROUP_NAMES = {"q": "query", "k": "key", "v": "value", "o": "attention output",
               "w1": "MLP up", "w2": "MLP down"}


def _num(x: float) -> str:
    return f"{x:.6g}"


def _act(table: dict, cfg: Config, nn: str = "", np: str = "") -> str:
    return table[cfg.activation].format(slope=_num(cfg.slope), nn=nn, np=np)


def fits_encoder_layer(cfg: Config) -> bool:
    """Whether PyTorch's nn.TransformerEncoderLayer computes this block."""
    return (cfg.norm == "layer" and cfg.skips == "on" and group_specs(cfg)[1] == 1.0
            and cfg.scheme != "mup" and cfg.activation in ("relu", "gelu"))


# each framework's call for a weight's unit draw times a (w: the tensor, for PyTorch's
# in-place inits; v: a constant's signed value; a: |scale|, the symmetric draws' sign
# being moot; t: 2a, where a normal is cut)
TORCH_INITS = {"zeros": "nn.init.zeros_({w})", ONES: "nn.init.constant_({w}, {v})",
               NORMAL: "nn.init.normal_({w}, 0.0, {a})",
               UNIFORM: "nn.init.uniform_({w}, -{a}, {a})",
               TRUNCATED: "nn.init.trunc_normal_({w}, 0.0, {a}, -{t}, {t})",
               ORTHOGONAL: "nn.init.orthogonal_({w}, gain={a})"}
# Keras' TruncatedNormal redraws beyond 2 std of the untruncated normal, as initscope
KERAS_INITS = {"zeros": "keras.initializers.Zeros()", ONES: "keras.initializers.Constant({v})",
               NORMAL: "keras.initializers.RandomNormal(stddev={a})",
               UNIFORM: "keras.initializers.RandomUniform(-{a}, {a})",
               TRUNCATED: "keras.initializers.TruncatedNormal(stddev={a})",
               ORTHOGONAL: "keras.initializers.Orthogonal(gain={a})"}
# JAX's truncated_normal takes the std of the normal before its cut at +-2 of it
JAX_INITS = {"zeros": "init.zeros", ONES: "init.constant({v})", NORMAL: "init.normal({a})",
             UNIFORM: "uniform(-{a}, {a})", TRUNCATED: "init.truncated_normal({a})",
             ORTHOGONAL: "init.orthogonal({a})"}
# a bias: mean m plus a unit draw times a (lo, hi: a uniform's ends)
TORCH_BIASES = {"constant": "nn.init.constant_({b}, {m})",
                NORMAL: "nn.init.normal_({b}, {m}, {a})",
                UNIFORM: "nn.init.uniform_({b}, {lo}, {hi})"}
KERAS_BIASES = {"constant": "keras.initializers.Constant({m})",
                NORMAL: "keras.initializers.RandomNormal({m}, {a})",
                UNIFORM: "keras.initializers.RandomUniform({lo}, {hi})"}
JAX_BIASES = {"constant": "init.constant({m})",
              NORMAL: "lambda k, s, dtype=jnp.float32: {m} + init.normal({a})(k, s, dtype)",
              UNIFORM: "uniform({lo}, {hi})"}


def weight_init(spec, table: dict[str, str], w: str = "") -> str:
    """The framework's init (`table`) that draws what a weight `spec` says."""
    a = abs(spec.scale)
    key = "zeros" if spec.scale == 0 else spec.basis
    if key not in table:
        raise ValueError(f"no transformer code for the {spec.basis} basis")
    return table[key].format(w=w, v=_num(spec.scale), a=_num(a), t=_num(2 * a))


def bias_init(spec: BiasSpec, table: dict[str, str], b: str = "") -> str:
    a = abs(spec.scale)
    key = "constant" if spec.scale == 0 else spec.basis
    return table[key].format(b=b, m=_num(spec.mean), a=_num(a), lo=_num(spec.mean - a),
                             hi=_num(spec.mean + a))


def _header(cfg: Config) -> list[str]:
    specs, alpha = group_specs(cfg)
    place = {"pre": "pre-norm: x + F(norm x), and a final norm",
             "post": "post-norm: norm(x + F(x))", "none": "no norm: x + F(x)"}[placement(cfg)]
    lines = [f"# {cfg.depth} transformer blocks, width {cfg.width[0]}, {cfg.heads} heads, "
             f"MLP {cfg.mlp_ratio} x width, {cfg.activation}, {cfg.mask} attention",
             f"# {place}" + ("" if cfg.skips == "on" else "; without the skips")
             + (f"; skips times alpha = {_num(alpha)}" if alpha != 1 else ""),
             f"# init: {cfg.scheme}" + (f", gain {_num(cfg.gain)}" if cfg.gain != 1 else "")]
    lines += [f"#   {GROUP_NAMES[g]}: std {_num(specs[g].std)}" for g in GROUPS]
    return lines


def _norm_torch(cfg: Config) -> str:
    d = cfg.width[0]
    if cfg.norm == "none":
        return "nn.Identity()"
    kind = "LayerNorm" if cfg.norm == "layer" else "RMSNorm"
    return f"nn.{kind}({d}, eps={EPS:g})"


def pytorch(cfg: Config) -> str:
    specs, alpha = group_specs(cfg)
    b1, b2 = biases(cfg)
    d, h, r = cfg.width[0], cfg.heads, cfg.mlp_ratio
    pre = placement(cfg) == "pre"
    lines = ["import math", "import torch", "import torch.nn.functional as F",
             "from torch import nn", "", *_header(cfg), ""]
    if fits_encoder_layer(cfg):
        lines += [
            f"layer = nn.TransformerEncoderLayer({d}, {h}, dim_feedforward={r * d}, "
            f"dropout=0.0, activation=\"{cfg.activation}\",",
            f"                                   layer_norm_eps={EPS:g}, batch_first=True, "
            f"norm_first={pre})",
            f"model = nn.TransformerEncoder(layer, {cfg.depth}, "
            f"norm={_norm_torch(cfg) if pre else 'None'}, enable_nested_tensor=False)",
            "",
            "with torch.no_grad():",
            "    for block in model.layers:  # each layer is a copy: draw each afresh",
            "        q, k, v = block.self_attn.in_proj_weight.chunk(3)",
            f"        {weight_init(specs['q'], TORCH_INITS, 'q')}",
            f"        {weight_init(specs['k'], TORCH_INITS, 'k')}",
            f"        {weight_init(specs['v'], TORCH_INITS, 'v')}",
            "        nn.init.zeros_(block.self_attn.in_proj_bias)",
            f"        {weight_init(specs['o'], TORCH_INITS, 'block.self_attn.out_proj.weight')}",
            "        nn.init.zeros_(block.self_attn.out_proj.bias)",
            f"        {weight_init(specs['w1'], TORCH_INITS, 'block.linear1.weight')}",
            f"        {bias_init(b1, TORCH_BIASES, 'block.linear1.bias')}",
            f"        {weight_init(specs['w2'], TORCH_INITS, 'block.linear2.weight')}",
            f"        {bias_init(b2, TORCH_BIASES, 'block.linear2.bias')}",
            "",
        ]
        if cfg.mask == "causal":
            lines += [f"mask = nn.Transformer.generate_square_subsequent_mask({cfg.tokens})",
                      f"x = torch.randn(8, {cfg.tokens}, {d})",
                      "y = model(x, mask=mask, is_causal=True)"]
        else:
            lines += [f"x = torch.randn(8, {cfg.tokens}, {d})", "y = model(x)"]
        return "\n".join(lines)
    scale = f"1 / {d // h}" if cfg.scheme == "mup" else f"1 / math.sqrt({d // h})"
    skip = "" if cfg.skips == "off" else ("x + " if alpha == 1 else f"{_num(alpha)} * x + ")
    if placement(cfg) == "pre":
        body = [f"x = {skip}self.attention(self.norm1(x))",
                f"x = {skip}self.mlp(self.norm2(x))"]
    elif placement(cfg) == "post":
        body = [f"x = self.norm1({skip}self.attention(x))",
                f"x = self.norm2({skip}self.mlp(x))"]
    else:
        body = [f"x = {skip}self.attention(x)", f"x = {skip}self.mlp(x)"]
    mask = ["        if self.causal:",
            "            future = torch.ones(t, t, dtype=torch.bool).triu(1)",
            "            s = s.masked_fill(future, float(\"-inf\"))"]
    lines += [
        "class Block(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.heads, self.causal = {h}, {cfg.mask == 'causal'}",
        *(f"        self.{g} = nn.Linear({d}, {d}, bias=False)" for g in "qkvo"),
        f"        self.up = nn.Linear({d}, {r * d})",
        f"        self.down = nn.Linear({r * d}, {d})",
        f"        self.phi = {_act(TORCH_ACTS, cfg)}",
        f"        self.norm1, self.norm2 = {_norm_torch(cfg)}, {_norm_torch(cfg)}",
        "",
        "    def attention(self, x):",
        "        b, t, d = x.shape",
        "        q, k, v = (w(x).view(b, t, self.heads, -1).transpose(1, 2)",
        "                   for w in (self.q, self.k, self.v))",
        f"        s = q @ k.transpose(-2, -1) * ({scale})",
        *mask,
        "        return self.o((s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d))",
        "",
        "    def mlp(self, x):",
        "        return self.down(self.phi(self.up(x)))",
        "",
        "    def forward(self, x):",
        *(f"        {line}" for line in body),
        "        return x",
        "",
        "",
        f"blocks = [Block() for _ in range({cfg.depth})]",
        f"model = nn.Sequential(*blocks{', ' + _norm_torch(cfg) if pre else ''})",
        "with torch.no_grad():",
        "    for block in blocks:",
        *(f"        {weight_init(specs[g], TORCH_INITS, f'block.{g}.weight')}" for g in "qkvo"),
        f"        {weight_init(specs['w1'], TORCH_INITS, 'block.up.weight')}",
        f"        {bias_init(b1, TORCH_BIASES, 'block.up.bias')}",
        f"        {weight_init(specs['w2'], TORCH_INITS, 'block.down.weight')}",
        f"        {bias_init(b2, TORCH_BIASES, 'block.down.bias')}",
        "",
        f"y = model(torch.randn(8, {cfg.tokens}, {d}))",
    ]
    return "\n".join(lines)


def _block_math(cfg: Config, ops: str, softmax: str) -> list[str]:
    """The block's forward pass in an array library `ops` (jax.numpy, keras.ops), on
    a dict `p` of weights in (fan_in, fan_out) layout."""
    _, alpha = group_specs(cfg)
    d, h = cfg.width[0], cfg.heads
    scale = f"1 / {d // h}" if cfg.scheme == "mup" else f"1 / math.sqrt({d // h})"
    if cfg.norm == "rms":
        norm = [f"    return x / {ops}.sqrt({ops}.mean(x * x, axis=-1, keepdims=True) + {EPS:g})"]
    else:
        norm = [f"    m = {ops}.mean(x, axis=-1, keepdims=True)",
                f"    v = {ops}.var(x, axis=-1, keepdims=True)",
                f"    return (x - m) / {ops}.sqrt(v + {EPS:g})"]
    skip = "" if cfg.skips == "off" else ("x + " if alpha == 1 else f"{_num(alpha)} * x + ")
    place = placement(cfg)
    if place == "pre":
        body = [f"x = {skip}attention(p, norm(x))", f"x = {skip}mlp(p, norm(x))"]
    elif place == "post":
        body = [f"x = norm({skip}attention(p, x))", f"x = norm({skip}mlp(p, x))"]
    else:
        body = [f"x = {skip}attention(p, x)", f"x = {skip}mlp(p, x)"]
    mask = ([f"    future = {ops}.triu({ops}.ones((t, t)), 1) > 0",
             f"    s = {ops}.where(future, -float(\"inf\"), s)"] if cfg.mask == "causal" else [])
    return [
        "def norm(x):",
        *norm,
        "",
        "",
        "def split(x):  # (batch, T, width) -> (batch, heads, T, width / heads)",
        "    t = x.shape[1]",
        f"    return {ops}.transpose({ops}.reshape(x, (-1, t, {h}, {d // h})), (0, 2, 1, 3))",
        "",
        "",
        "def attention(p, x):",
        "    t = x.shape[1]",
        f"    q, k, v = (split({ops}.matmul(x, p[g])) for g in (\"q\", \"k\", \"v\"))",
        f"    s = {ops}.matmul(q, {ops}.transpose(k, (0, 1, 3, 2))) * ({scale})",
        *mask,
        f"    c = {ops}.matmul({softmax}(s, axis=-1), v)",
        f"    return {ops}.matmul({ops}.reshape({ops}.transpose(c, (0, 2, 1, 3)), "
        f"(-1, t, {d})), p[\"o\"])",
        "",
        "",
        "def mlp(p, x):",
        f"    return {ops}.matmul(phi({ops}.matmul(x, p[\"w1\"]) + p[\"b1\"]), p[\"w2\"]) "
        "+ p[\"b2\"]",
        "",
        "",
        "def block(p, x):",
        *(f"    {line}" for line in body),
        "    return x",
    ]


def _shapes(cfg: Config) -> dict[str, str]:
    d, r = cfg.width[0], cfg.mlp_ratio
    return {"q": f"({d}, {d})", "k": f"({d}, {d})", "v": f"({d}, {d})", "o": f"({d}, {d})",
            "w1": f"({d}, {r * d})", "w2": f"({r * d}, {d})", "b1": f"({r * d},)",
            "b2": f"({d},)"}


def _inits(cfg: Config, weights: dict[str, str], biases_: dict[str, str]) -> list[str]:
    """`INITS = {group: (initializer, shape), ...}` in a framework's initializers."""
    specs, _ = group_specs(cfg)
    b1, b2 = biases(cfg)
    inits = {**{g: weight_init(specs[g], weights) for g in GROUPS},
             "b1": bias_init(b1, biases_), "b2": bias_init(b2, biases_)}
    shapes = _shapes(cfg)
    return ["INITS = {", *(f"    \"{g}\": ({inits[g]}, {shapes[g]})," for g in inits), "}"]


def jax(cfg: Config) -> str:
    lines = ["import math", "import jax", "import jax.numpy as jnp",
             "from jax.nn import initializers as init", "", *_header(cfg), "", "",
             "def uniform(low, high):",
             "    return lambda key, shape, dtype=jnp.float32: "
             "jax.random.uniform(key, shape, dtype, low, high)", "", "",
             *_inits(cfg, JAX_INITS, JAX_BIASES),
             f"phi = {_act(ARRAY_ACTS, cfg, 'jax.nn', 'jnp')}", "", "",
             "def init_params(key):  # one dict of weights per block, (fan_in, fan_out)",
             "    params = []",
             f"    for block_key in jax.random.split(key, {cfg.depth}):",
             "        keys = jax.random.split(block_key, len(INITS))",
             "        params.append({g: f(k, shape) for k, (g, (f, shape)) in "
             "zip(keys, INITS.items())})",
             "    return params", "", "",
             *_block_math(cfg, "jnp", "jax.nn.softmax"), "", "",
             "def forward(params, x):",
             "    for p in params:",
             "        x = block(p, x)",
             "    return " + ("norm(x)" if placement(cfg) == "pre" else "x"), "", "",
             "params = init_params(jax.random.key(0))",
             f"y = forward(params, jax.random.normal(jax.random.key(1), "
             f"(8, {cfg.tokens}, {cfg.width[0]})))"]
    return "\n".join(lines)


def keras(cfg: Config) -> str:
    lines = ["import math", "import keras", "from keras import ops", "", *_header(cfg), "",
             *_inits(cfg, KERAS_INITS, KERAS_BIASES),
             f"phi = {_act(ARRAY_ACTS, cfg, 'ops', 'ops')}", "", "",
             *_block_math(cfg, "ops", "ops.softmax"), "", "",
             "class Block(keras.layers.Layer):",
             "    def build(self, input_shape):",
             "        self.p = {g: self.add_weight(shape=shape, initializer=f, name=g)",
             "                  for g, (f, shape) in INITS.items()}",
             "",
             "    def call(self, x):",
             "        return block(self.p, x)", "", "",
             f"inputs = keras.Input(({cfg.tokens}, {cfg.width[0]}))",
             "x = inputs",
             f"for _ in range({cfg.depth}):",
             "    x = Block()(x)",
             "model = keras.Model(inputs, "
             + ("keras.layers.Lambda(norm)(x))" if placement(cfg) == "pre" else "x)")]
    return "\n".join(lines)


def snippets(cfg: Config) -> dict[str, str]:
    return {"pytorch": pytorch(cfg), "keras": keras(cfg), "jax": jax(cfg)}

