"""Multi-head self-attention, forward and backward, and what it does at initialization.

Tokens x are (batch, T, d). With h heads of d_head = d / h:
    Q = x Wq, K = x Wk, V = x Wv, each split into heads (batch, h, T, d_head),
    S = scale Q K^T (scale 1/sqrt(d_head), or 1/d_head under muP), masked to the past
        when causal (-inf above the diagonal),
    P = softmax(S) over the keys, C = P V, out = concat_heads(C) Wo.
Backward, with G = dL/dout: dWo = C^T G, dC = G Wo^T, dP = dC V^T, dV = P^T dC,
dS = P (dP - sum_keys(dP P)) (the softmax's Jacobian, row by row), dQ = scale dS K,
dK = scale dS^T Q, and dx = dQ Wq^T + dK Wk^T + dV Wv^T.

The logit variance at initialization. For tokens with independent unit-variance
entries and independent N(0, s^2) query and key weights, q_i = sum_a x_a Wq_ai has
variance d s^2, and so has k_i; the logit q . k = sum_i q_i k_i over d_head
coordinates, each a product of two independent zero-mean terms of variance d s^2
(q and k read the same tokens through independent weights), has variance
d_head (d s^2)^2. Scaled by 1/sqrt(d_head) the logit's variance is (d s^2)^2: 1 for
s^2 = 1/d, whatever the head size. muP's 1/d_head scaling divides it by d_head more:
(d s^2)^2 / d_head, so its logits shrink as heads widen. With zero query weights every
logit is 0 and every query attends uniformly: entropy log(keys), exactly.

Meters per block: attention entropy (normalized by log of the keys a query sees, 1 =
uniform), the logits' std, and rank collapse, the mean cosine similarity of the
tokens of a sequence (Noci et al. 2022, "Signal propagation in transformers").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class AttentionCache:
    """What the backward pass needs."""

    x: np.ndarray
    q: np.ndarray  # (batch, heads, T, d_head)
    k: np.ndarray
    v: np.ndarray
    p: np.ndarray  # (batch, heads, T, T)
    context: np.ndarray  # (batch, T, d), the heads concatenated
    scale: float
    logits_std: float


def _heads(x: np.ndarray, heads: int) -> np.ndarray:
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)


def _merge(x: np.ndarray) -> np.ndarray:
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


def causal_mask(t: int) -> np.ndarray:
    """True where a query may not look: the keys after it."""
    return np.triu(np.ones((t, t), dtype=bool), k=1)


def softmax(s: np.ndarray) -> np.ndarray:
    shifted = s - s.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def attention(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray, wo: np.ndarray,
              heads: int, causal: bool = False, mup: bool = False
              ) -> tuple[np.ndarray, AttentionCache]:
    """out, (batch, T, d), and the cache; weights are (d, d), applied as x W."""
    d_head = x.shape[-1] // heads
    scale = 1.0 / d_head if mup else 1.0 / math.sqrt(d_head)
    q, k, v = (_heads(x @ w, heads) for w in (wq, wk, wv))
    s = (q @ k.transpose(0, 1, 3, 2)) * scale
    if causal:
        mask = causal_mask(x.shape[1])
        logits_std = float(s[..., ~mask].std())
        s = np.where(mask, -np.inf, s)
    else:
        logits_std = float(s.std())
    p = softmax(s)
    context = _merge(p @ v)
    return context @ wo, AttentionCache(x, q, k, v, p, context, scale, logits_std)


def attention_backward(g: np.ndarray, cache: AttentionCache, wq: np.ndarray, wk: np.ndarray,
                       wv: np.ndarray, wo: np.ndarray, heads: int
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dL/dx and the weights' gradients {"q", "k", "v", "o"} from dL/dout."""
    c = cache
    flat = c.context.reshape(-1, c.context.shape[-1])
    grads = {"o": flat.T @ g.reshape(-1, g.shape[-1])}
    dcontext = _heads(g @ wo.T, heads)
    dp = dcontext @ c.v.transpose(0, 1, 3, 2)
    dv = c.p.transpose(0, 1, 3, 2) @ dcontext
    ds = c.p * (dp - np.sum(dp * c.p, axis=-1, keepdims=True))  # 0 where masked (p = 0)
    dq = (ds @ c.k) * c.scale
    dk = (ds.transpose(0, 1, 3, 2) @ c.q) * c.scale
    x = c.x.reshape(-1, c.x.shape[-1])
    dx = np.zeros_like(c.x)
    for name, dh, w in (("q", dq, wq), ("k", dk, wk), ("v", dv, wv)):
        merged = _merge(dh)
        grads[name] = x.T @ merged.reshape(-1, merged.shape[-1])
        dx += merged @ w.T
    return dx, grads


def entropy(p: np.ndarray, causal: bool) -> float:
    """Mean attention entropy over heads and queries, each normalized by the log of
    the number of keys its query sees (1: uniform; queries that see one key left out)."""
    t = p.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)  # (batch, heads, T)
    seen = np.arange(1, t + 1) if causal else np.full(t, t)
    keep = seen > 1
    return float(np.mean(h[..., keep] / np.log(seen[keep])))


def token_similarity(x: np.ndarray) -> float:
    """Mean cosine similarity between different tokens of the same sequence (1: every
    token the same, the rank collapse of Noci et al. 2022)."""
    unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-30)
    t = x.shape[1]
    gram = unit @ unit.transpose(0, 2, 1)
    off = (gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)) / (t * (t - 1))
    return float(np.mean(off))


def logit_variance(d: int, weight_var: float, d_head: int, mup: bool = False) -> float:
    """The logits' variance at init for unit tokens (module docstring)."""
    base = (d * weight_var) ** 2
    return base / d_head if mup else base
