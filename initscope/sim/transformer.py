"""A transformer block, forward and backward: attention then an MLP, each a residual
branch, with layer norm before the branch (pre-norm), after the add (post-norm), or
none; or without the skips, to see attention alone collapse the tokens.

    pre:  a = x + Attn(LN x),   y = a + MLP(LN a)
    post: a = LN(x + Attn x),   y = LN(a + MLP a)
    none: a = x + Attn x,       y = a + MLP a
    MLP(u) = phi(u W1 + b1) W2 + b2, W1 (d, ratio d), W2 (ratio d, d)

The branches' variances before they join the stream are kept for the meters. The
backward pass chains attention's (attention.py), the MLP's and layer norm's
(norm.py) exact backward passes through the adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.attention import attention, attention_backward
from initscope.sim.norm import normalize, normalize_backward

PLACES = ("pre", "post", "none")


@dataclass
class BlockWeights:
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray


@dataclass
class BlockCache:
    x: np.ndarray
    attn_in: np.ndarray
    attn: object
    norm1: object
    mid: np.ndarray
    mlp_in: np.ndarray
    z: np.ndarray
    norm2: object
    attn_branch_var: float
    mlp_branch_var: float


def _ln(x: np.ndarray):
    shape = x.shape
    out, cache = normalize("layer", x.reshape(-1, shape[-1]))
    return out.reshape(shape), cache


def _ln_back(g: np.ndarray, cache) -> np.ndarray:
    return normalize_backward(g.reshape(-1, g.shape[-1]), cache).reshape(g.shape)


def block(x: np.ndarray, w: BlockWeights, heads: int, place: str = "pre",
          activation: str = "gelu", causal: bool = False, mup: bool = False,
          skips: bool = True) -> tuple[np.ndarray, BlockCache]:
    act = ACTIVATIONS[activation]
    norm1 = norm2 = None
    attn_in = x
    if place == "pre":
        attn_in, norm1 = _ln(x)
    a_out, a_cache = attention(attn_in, w.wq, w.wk, w.wv, w.wo, heads, causal, mup)
    mid = x + a_out if skips else a_out
    if place == "post":
        mid, norm1 = _ln(mid)
    mlp_in = mid
    if place == "pre":
        mlp_in, norm2 = _ln(mid)
    z = mlp_in @ w.w1 + w.b1
    branch = act.apply(z) @ w.w2 + w.b2
    y = mid + branch if skips else branch
    if place == "post":
        y, norm2 = _ln(y)
    return y, BlockCache(x, attn_in, a_cache, norm1, mid, mlp_in, z, norm2,
                         float(a_out.var()), float(branch.var()))


def block_backward(g: np.ndarray, c: BlockCache, w: BlockWeights, heads: int,
                   place: str = "pre", activation: str = "gelu", skips: bool = True
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dL/dx and every weight's gradient from dL/dy."""
    act = ACTIVATIONS[activation]
    if place == "post":
        g = _ln_back(g, c.norm2)
    h = act.apply(c.z)
    d = g.shape[-1]
    grads = {"w2": h.reshape(-1, h.shape[-1]).T @ g.reshape(-1, d),
             "b2": g.reshape(-1, d).sum(axis=0)}
    dz = (g @ w.w2.T) * act.slope_of(c.z)
    grads["w1"] = c.mlp_in.reshape(-1, d).T @ dz.reshape(-1, dz.shape[-1])
    grads["b1"] = dz.reshape(-1, dz.shape[-1]).sum(axis=0)
    du = dz @ w.w1.T
    if place == "pre":
        du = _ln_back(du, c.norm2)
    g_mid = g + du if skips else du
    if place == "post":
        g_mid = _ln_back(g_mid, c.norm1)
    dx_attn, agrads = attention_backward(g_mid, c.attn, w.wq, w.wk, w.wv, w.wo, heads)
    grads.update({f"w{k}": v for k, v in agrads.items()})
    if place == "pre":
        dx_attn = _ln_back(dx_attn, c.norm1)
    return (g_mid + dx_attn if skips else dx_attn), grads


def gpt2_weights(rng: np.random.Generator, d: int, ratio: int, depth: int,
                 scaled: bool, std: float = 0.02, dtype=np.float32) -> BlockWeights:
    """GPT-2's init (Radford et al. 2019; nanoGPT's `c_proj` rule): N(0, 0.02^2)
    everywhere, zero biases, and with `scaled` the residual output projections (the
    attention's Wo and the MLP's W2) by 1/sqrt(2 depth), two per block."""
    out = std / np.sqrt(2 * depth) if scaled else std

    def draw(shape, s):
        return (rng.standard_normal(shape, dtype=np.float32) * s).astype(dtype)

    return BlockWeights(draw((d, d), std), draw((d, d), std), draw((d, d), std),
                        draw((d, d), out), draw((d, ratio * d), std),
                        np.zeros(ratio * d, dtype), draw((ratio * d, d), out),
                        np.zeros(d, dtype))


def stream_variances(depth: int, scaled: bool, seed: int, d: int = 256, heads: int = 4,
                     tokens: int = 32, batch: int = 4, ratio: int = 4) -> list[float]:
    """The pre-norm stream's variance before the first block and after every block of
    a GPT-2-initialized stack on unit-Gaussian token embeddings."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, tokens, d), dtype=np.float32)
    out = [float(x.var())]
    for _ in range(depth):
        x, _ = block(x, gpt2_weights(rng, d, ratio, depth, scaled), heads, "pre", "gelu",
                     causal=True)
        out.append(float(x.var()))
    return out


RECIPES = ("gpt2", "deepnet", "small_init", "mup", "zero_out")


def recipe_stds(recipe: str, d: int, ratio: int, depth: int) -> dict[str, float]:
    """Each weight group's std under a transformer init recipe, and the residual
    multiplier "alpha" (1 but for DeepNet), for `depth` blocks of width d:

    - gpt2 (Radford et al. 2019, as nanoGPT's c_proj rule): 0.02 everywhere, the
      residual output projections (o, w2) 0.02 / sqrt(2 depth);
    - deepnet (Wang et al. 2022, "DeepNet", encoder: N = depth): post-norm with the
      skip scaled by alpha = (2N)^(1/4); Xavier normal everywhere, with gain
      beta = (8N)^(-1/4) for the value, output and both MLP weights, 1 for query and
      key;
    - small_init (Nguyen & Salazar 2019, "Transformers without tears"): Var 2 / (5 d),
      with the output projections at std 2 / (depth sqrt(d)) (the companion rule of
      Wang's GPT-J / GPT-NeoX code);
    - mup (Yang et al. 2022, Tensor Programs V): zero query weights (attention starts
      uniform; the logits are scaled by 1/d_head), 1/sqrt(fan_in) elsewhere;
    - zero_out: 1/sqrt(fan_in) everywhere but the output projections, which start at
      zero, so every block starts as the identity."""
    fan = {"q": d, "k": d, "v": d, "o": d, "w1": d, "w2": ratio * d}
    out_fan = {"q": d, "k": d, "v": d, "o": d, "w1": ratio * d, "w2": d}
    if recipe == "gpt2":
        stds = {g: 0.02 for g in fan}
        stds["o"] = stds["w2"] = 0.02 / math.sqrt(2 * depth)
        return {**stds, "alpha": 1.0}
    if recipe == "deepnet":
        beta = (8 * depth) ** -0.25
        stds = {g: math.sqrt(2 / (fan[g] + out_fan[g])) * (1.0 if g in ("q", "k") else beta)
                for g in fan}
        return {**stds, "alpha": (2 * depth) ** 0.25}
    if recipe == "small_init":
        stds = {g: math.sqrt(2 / (5 * d)) for g in fan}
        stds["o"] = stds["w2"] = 2 / (depth * math.sqrt(d))
        return {**stds, "alpha": 1.0}
    base = {g: 1 / math.sqrt(fan[g]) for g in fan}
    if recipe == "mup":
        return {**base, "q": 0.0, "alpha": 1.0}
    if recipe == "zero_out":
        return {**base, "o": 0.0, "w2": 0.0, "alpha": 1.0}
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
