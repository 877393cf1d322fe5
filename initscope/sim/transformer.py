"""A transformer block, forward and backward: attention then an MLP, each a residual
branch, with a norm N (layer or RMS) before the branch (pre-norm), after the add
(post-norm), or none; or without the skips, to see attention alone collapse the tokens.

    pre:  a = alpha x + Attn(N x),   y = alpha a + MLP(N a)
    post: a = N(alpha x + Attn x),   y = N(alpha a + MLP a)
    none: a = alpha x + Attn x,      y = alpha a + MLP a
    MLP(u) = phi(u W1 + b1) W2 + b2, W1 (d, ratio d), W2 (ratio d, d)
(alpha is 1 but for DeepNet's skips).

Each branch's output before it joins the stream is kept for the meters. The
backward pass chains attention's (attention.py), the MLP's and the norm's
(norm.py) exact backward passes through the adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.attention import AttentionCache, attention, attention_backward
from initscope.sim.norm import NormCache, normalize, normalize_backward

PLACES = ("pre", "post", "none")


@dataclass(frozen=True)
class BlockSetup:
    """How every block of a stack computes."""

    heads: int
    place: str = "pre"  # pre, post or none
    norm: str = "layer"  # layer or rms (norm.py), where place is not none
    activation: str = "gelu"
    slope: float = 0.01
    causal: bool = False
    mup: bool = False  # logits q.k / d_head rather than / sqrt(d_head)
    skips: bool = True
    alpha: float = 1.0  # the skip's multiplier, alpha x + F(x) (DeepNet)


@dataclass
class BlockWeights:
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    w1: np.ndarray
    b1: np.ndarray | float
    w2: np.ndarray
    b2: np.ndarray | float


@dataclass
class BlockCache:
    attn: AttentionCache
    norm1: NormCache | None
    mid: np.ndarray  # the stream between the two branches
    mlp_in: np.ndarray
    z: np.ndarray  # the MLP's pre-activation
    h: np.ndarray  # phi(z)
    norm2: NormCache | None
    attn_branch: np.ndarray  # each branch before it joins the stream
    mlp_branch: np.ndarray


def norm_tokens(kind: str, x: np.ndarray) -> tuple[np.ndarray, NormCache]:
    out, cache = normalize(kind, x.reshape(-1, x.shape[-1]))
    return out.reshape(x.shape), cache


def norm_tokens_backward(g: np.ndarray, cache: NormCache) -> np.ndarray:
    return normalize_backward(g.reshape(-1, g.shape[-1]), cache).reshape(g.shape)


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


def _join(skip: np.ndarray, branch: np.ndarray, s: BlockSetup) -> np.ndarray:
    """alpha skip + branch, or the branch alone without skips."""
    if not s.skips:
        return branch
    if s.alpha == 1.0:
        return skip + branch
    return skip * skip.dtype.type(s.alpha) + branch


def block(x: np.ndarray, w: BlockWeights, s: BlockSetup) -> tuple[np.ndarray, BlockCache]:
    """A block's output and cache for tokens x of shape (batch, T, d)."""
    act = ACTIVATIONS[s.activation]
    norm1 = norm2 = None
    attn_in = x
    if s.place == "pre":
        attn_in, norm1 = norm_tokens(s.norm, x)
    a_out, a_cache = attention(attn_in, w.wq, w.wk, w.wv, w.wo, s.heads, s.causal, s.mup)
    mid = _join(x, a_out, s)
    if s.place == "post":
        mid, norm1 = norm_tokens(s.norm, mid)
    mlp_in = mid
    if s.place == "pre":
        mlp_in, norm2 = norm_tokens(s.norm, mid)
    z = mlp_in @ w.w1
    z += w.b1
    h = np.empty_like(z)
    act.forward(z, h, s.slope)
    branch = h @ w.w2
    branch += w.b2
    y = _join(mid, branch, s)
    if s.place == "post":
        y, norm2 = norm_tokens(s.norm, y)
    return y, BlockCache(a_cache, norm1, mid, mlp_in, z, h, norm2, a_out, branch)


def block_backward(g: np.ndarray, c: BlockCache, w: BlockWeights, s: BlockSetup
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dL/dx and the gradients of wq, wk, wv, wo, w1, b1, w2 and b2 from dL/dy."""
    act = ACTIVATIONS[s.activation]
    if s.place == "post":
        g = norm_tokens_backward(g, c.norm2)
    grads = {"w2": _flat(c.h).T @ _flat(g), "b2": _flat(g).sum(axis=0)}
    dz = g @ w.w2.T
    slope = np.empty_like(c.z)
    act.derivative(c.z, c.h, slope, s.slope)
    dz *= slope
    del slope
    grads["w1"] = _flat(c.mlp_in).T @ _flat(dz)
    grads["b1"] = _flat(dz).sum(axis=0)
    du = dz @ w.w1.T
    del dz
    if s.place == "pre":
        du = norm_tokens_backward(du, c.norm2)
    g_mid = _join(g, du, s)
    if s.place == "post":
        g_mid = norm_tokens_backward(g_mid, c.norm1)
    dx_attn, agrads = attention_backward(g_mid, c.attn, w.wq, w.wk, w.wv, w.wo, s.heads)
    grads.update({f"w{k}": v for k, v in agrads.items()})
    if s.place == "pre":
        dx_attn = norm_tokens_backward(dx_attn, c.norm1)
    return _join(g_mid, dx_attn, s), grads
