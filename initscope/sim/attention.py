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


def softmax_(s: np.ndarray) -> np.ndarray:
    """softmax over the last axis, in place (s becomes P)."""
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


def _std_of_kept(s: np.ndarray, mask: np.ndarray | None) -> float:
    """The std of the logits a query may look at, in one pass of sums (float64)."""
    if mask is not None:
        np.copyto(s, 0, where=mask)  # masked logits add nothing to the sums
    flat = s.reshape(-1)
    count = flat.size if mask is None else flat.size // mask.size * int((~mask).sum())
    total = float(np.sum(flat, dtype=np.float64))
    squares = float(np.dot(flat, flat))
    mean = total / count
    return math.sqrt(max(squares / count - mean * mean, 0.0))


def attention(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray, wo: np.ndarray,
              heads: int, causal: bool = False, mup: bool = False
              ) -> tuple[np.ndarray, AttentionCache]:
    """out, (batch, T, d), and the cache; weights are (d, d), applied as x W. The three
    projections are one product with [Wq | Wk | Wv]."""
    d = x.shape[-1]
    d_head = d // heads
    scale = 1.0 / d_head if mup else 1.0 / math.sqrt(d_head)
    qkv = x @ np.concatenate([wq, wk, wv], axis=1)
    q, k, v = (_heads(qkv[..., i * d:(i + 1) * d], heads) for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2)
    s *= s.dtype.type(scale)
    mask = causal_mask(x.shape[1]) if causal else None
    logits_std = _std_of_kept(s, mask)
    if mask is not None:
        np.copyto(s, -np.inf, where=mask)
    p = softmax_(s)
    context = _merge(p @ v)
    return context @ wo, AttentionCache(x, q, k, v, p, context, scale, logits_std)


def attention_backward(g: np.ndarray, cache: AttentionCache, wq: np.ndarray, wk: np.ndarray,
                       wv: np.ndarray, wo: np.ndarray, heads: int
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dL/dx and the weights' gradients {"q", "k", "v", "o"} from dL/dout."""
    c = cache
    d = g.shape[-1]
    flat = c.context.reshape(-1, d)
    grads = {"o": flat.T @ g.reshape(-1, d)}
    dcontext = _heads(g @ wo.T, heads)
    ds = dcontext @ c.v.transpose(0, 1, 3, 2)  # dP, then dS in place
    dv = c.p.transpose(0, 1, 3, 2) @ dcontext
    # the softmax's Jacobian row by row: dS = P (dP - sum_keys dP P); 0 where masked
    ds -= np.einsum("bhqk,bhqk->bhq", ds, c.p)[..., None]
    ds *= c.p
    ds *= ds.dtype.type(c.scale)
    dq = ds @ c.k
    dk = ds.transpose(0, 1, 3, 2) @ c.q
    b, h, t, dh = dq.shape
    merged = np.empty((b, t, 3, h, dh), dq.dtype)  # the heads back in place, side by side
    for i, part in enumerate((dq, dk, dv)):
        merged[:, :, i] = part.transpose(0, 2, 1, 3)
    merged = merged.reshape(-1, 3 * d)
    x = c.x.reshape(-1, d)
    dw = x.T @ merged
    grads.update(q=dw[:, :d], k=dw[:, d:2 * d], v=dw[:, 2 * d:])
    dx = merged @ np.concatenate([wq, wk, wv], axis=1).T
    return dx.reshape(c.x.shape), grads


def entropy(p: np.ndarray, causal: bool) -> float:
    """Mean attention entropy over heads and queries, each normalized by the log of
    the number of keys its query sees (1: uniform; queries that see one key left out)."""
    t = p.shape[-1]
    logs = np.log(np.maximum(p, np.finfo(p.dtype).tiny))  # p = 0 adds 0 log tiny = 0
    h = -np.einsum("...k,...k->...", p, logs)  # (batch, heads, T)
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
