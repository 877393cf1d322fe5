"""Self-attention: the backward pass against float64 central differences, the mask
against a direct loop, and what attention does at initialization against theory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim.attention import (
    attention,
    attention_backward,
    causal_mask,
    entropy,
    logit_variance,
    token_similarity,
)
from initscope.sim.transformer import BlockSetup, BlockWeights, block
from tests.sim.test_norm import central_difference


def _weights(rng, d: int, std: float) -> list[np.ndarray]:
    return [rng.normal(0, std, (d, d)) for _ in range(4)]


@pytest.mark.parametrize("causal,mup", [(False, False), (True, False), (True, True)])
def test_the_backward_pass_is_the_derivative_of_the_forward(causal, mup):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6))
    ws = _weights(rng, 6, 0.5)
    g = rng.normal(size=(2, 5, 6))

    def loss(x=x, ws=ws) -> float:
        return float(np.sum(g * attention(x, *ws, heads=2, causal=causal, mup=mup)[0]))

    _, cache = attention(x, *ws, heads=2, causal=causal, mup=mup)
    dx, grads = attention_backward(g, cache, *ws, heads=2)
    np.testing.assert_allclose(dx, central_difference(lambda v: loss(x=v), x.copy()),
                               rtol=1e-6, atol=1e-8)
    for name, w in zip("qkvo", ws):
        expected = central_difference(lambda v, w=w: loss(ws=[v if u is w else u for u in ws]),
                                      w.copy())
        np.testing.assert_allclose(grads[name], expected, rtol=1e-6, atol=1e-8)


def test_the_causal_mask_and_heads_against_a_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 6))
    wq, wk, wv, wo = _weights(rng, 6, 0.4)
    out, cache = attention(x, wq, wk, wv, wo, heads=3, causal=True)
    expected = np.zeros((4, 6))
    for head in range(3):
        cols = slice(2 * head, 2 * head + 2)
        q, k, v = (x[0] @ wq)[:, cols], (x[0] @ wk)[:, cols], (x[0] @ wv)[:, cols]
        for i in range(4):
            s = np.array([q[i] @ k[j] / math.sqrt(2) for j in range(i + 1)])
            p = np.exp(s - s.max())
            p /= p.sum()
            expected[i, cols] = p @ v[: i + 1]
    np.testing.assert_allclose(out[0], expected @ wo, rtol=1e-12)
    assert np.all(cache.p[0][:, causal_mask(4)] == 0)


def test_zero_query_weights_give_exactly_uniform_attention():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 16, 32))
    wq, wk, wv, wo = _weights(rng, 32, 0.3)
    for causal in (False, True):
        _, cache = attention(x, np.zeros_like(wq), wk, wv, wo, heads=4, causal=causal)
        assert entropy(cache.p, causal) == pytest.approx(1.0, abs=1e-12)
        assert cache.logits_std == 0


@pytest.mark.parametrize("mup", [False, True])
def test_the_logit_std_follows_its_prediction(mup):
    # unit tokens, N(0, 1/d) weights: Var(logit) = (d s^2)^2 = 1 with 1/sqrt(d_head),
    # and 1 / d_head with muP's 1/d_head; 64 x 64 x 8 heads x 4 sequences of logits
    rng = np.random.default_rng(3)
    d, heads = 256, 8
    x = rng.normal(size=(4, 64, d))
    ws = _weights(rng, d, math.sqrt(1 / d))
    _, cache = attention(x, *ws, heads=heads, mup=mup)
    predicted = math.sqrt(logit_variance(d, 1 / d, d // heads, mup))
    assert cache.logits_std == pytest.approx(predicted, rel=0.05)
    wide = _weights(rng, d, math.sqrt(2 / d))  # Var W doubled: the logits' variance x4
    _, cache = attention(x, *wide, heads=heads, mup=mup)
    assert cache.logits_std == pytest.approx(2 * predicted, rel=0.05)


def test_attention_without_skips_collapses_the_tokens():
    # 24 layers of attention alone, each output rescaled to unit std: every layer
    # averages the tokens, so they all become the same (rank collapse)
    rng = np.random.default_rng(4)
    d, t = 64, 16
    x0 = rng.normal(size=(4, t, d))
    plain, similarity = x0, []
    for _ in range(24):
        ws = _weights(rng, d, math.sqrt(1 / d))
        plain = attention(plain, *ws, heads=4)[0]
        plain /= plain.std()
        similarity.append(token_similarity(plain))
    assert abs(token_similarity(x0)) < 0.05
    assert similarity[0] > 0.2 and similarity[-1] > 0.99
    assert all(b >= a - 0.01 for a, b in zip(similarity, similarity[1:]))


def _block_weights(rng, d: int, ratio: int = 2, std: float = 0.4):
    from initscope.sim.transformer import BlockWeights

    return BlockWeights(*(rng.normal(0, std, (d, d)) for _ in range(4)),
                        rng.normal(0, std, (d, ratio * d)), rng.normal(0, 0.1, ratio * d),
                        rng.normal(0, std, (ratio * d, d)), rng.normal(0, 0.1, d))


@pytest.mark.parametrize("place,skips,norm,alpha", [
    ("pre", True, "layer", 1.0), ("post", True, "layer", 1.0), ("none", True, "layer", 1.0),
    ("none", False, "layer", 1.0), ("pre", True, "rms", 1.0), ("post", True, "rms", 2.1)])
def test_a_blocks_backward_pass_is_the_derivative_of_its_forward(place, skips, norm, alpha):
    from dataclasses import replace

    from initscope.sim.transformer import BlockSetup, block, block_backward

    setup = BlockSetup(2, place, norm, "tanh", causal=True, skips=skips, alpha=alpha)

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 6))
    w = _block_weights(rng, 6)
    g = rng.normal(size=x.shape)

    def loss(x=x, w=w) -> float:
        return float(np.sum(g * block(x, w, setup)[0]))

    _, cache = block(x, w, setup)
    dx, grads = block_backward(g, cache, w, setup)
    np.testing.assert_allclose(dx, central_difference(lambda v: loss(x=v), x.copy()),
                               rtol=1e-5, atol=1e-8)
    for name in ("wq", "wk", "wv", "wo", "w1", "b1", "w2", "b2"):
        value = getattr(w, name)
        expected = central_difference(lambda v, n=name: loss(w=replace(w, **{n: v})),
                                      value.copy())
        np.testing.assert_allclose(grads[name], expected, rtol=1e-5, atol=1e-8)


def test_gpt2_scales_its_residual_projections_to_keep_the_stream_from_growing():
    # pre-norm: each block adds its branches' variance to the stream, the same amount
    # whatever the depth, so the growth is linear in L; scaling the two output
    # projections by 1/sqrt(2L) divides each block's share by 2L, so the total stays
    # the same at every depth. The growth is measured from each seed's own embeddings.
    def growth(depth: int, scaled: bool) -> list[float]:
        runs = [stream_variances(depth, scaled, seed) for seed in range(3)]
        return [r[-1] - r[0] for r in runs]

    depths = np.array([4, 8, 16])
    plain = np.array([growth(L, False) for L in depths])  # (depth, seed)
    scaled = np.array([growth(L, True) for L in depths])
    per_block = plain / depths[:, None]
    # linear: the same growth per block at every depth, to the seeds' own spread
    spread = per_block.std(axis=1).max()
    assert per_block.mean(axis=1).max() - per_block.mean(axis=1).min() < 3 * spread + 1e-4
    assert plain.mean(axis=1)[-1] > 3 * plain.mean(axis=1)[0] > 0
    # scaled: the total at L = 16 about what L = 4 gives, far below the unscaled 16
    assert abs(scaled.mean(axis=1)[-1] - scaled.mean(axis=1)[0]) < 0.3 * scaled.mean()
    assert scaled.mean(axis=1)[-1] < 0.2 * plain.mean(axis=1)[-1]


def test_with_skips_and_pre_norm_the_tokens_stay_apart_without_them_they_collapse():
    # GPT-2's init, 24 blocks, 32 tokens of width 256 (Noci et al. 2022): the skips keep
    # each token's own share of the stream; attention and the MLP alone average them
    for skips, check in ((True, lambda s: s < 0.05), (False, lambda s: s > 0.99)):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 32, 256), dtype=np.float32)
        start = token_similarity(x)
        for _ in range(24):
            x, _ = block(x, gpt2_weights(rng, 256, 4, 24, False),
                         BlockSetup(4, "pre" if skips else "none", skips=skips))
            x /= x.std()
        assert abs(start) < 0.01 and check(token_similarity(x)), skips


def test_the_recipes_constants():
    from initscope.sim.recipes import recipe_stds

    gpt2 = recipe_stds("gpt2", 768, 4, 12)
    assert gpt2["q"] == 0.02 and gpt2["o"] == pytest.approx(0.02 / math.sqrt(24))
    deep = recipe_stds("deepnet", 512, 4, 18)  # N = 18: alpha = 36^(1/4), beta = 144^(-1/4)
    assert deep["alpha"] == pytest.approx(36 ** 0.25)
    assert deep["v"] == pytest.approx(math.sqrt(2 / 1024) * 144 ** -0.25)
    assert deep["q"] == pytest.approx(math.sqrt(2 / 1024))
    assert deep["w2"] == pytest.approx(math.sqrt(2 / (2048 + 512)) * 144 ** -0.25)
    small = recipe_stds("small_init", 1024, 4, 24)
    assert small["k"] ** 2 == pytest.approx(2 / 5120)
    assert small["w2"] == pytest.approx(2 / (24 * 32))
    assert recipe_stds("mup", 256, 4, 8)["q"] == 0
    zero = recipe_stds("zero_out", 256, 4, 8)
    assert zero["o"] == zero["w2"] == 0 and zero["w1"] == pytest.approx(1 / 16)


@pytest.mark.parametrize("recipe", ["gpt2", "deepnet", "small_init", "zero_out"])
def test_zero_query_or_key_weights_give_uniform_attention_under_any_other_recipe(recipe):
    from initscope.sim.recipes import recipe_stds

    rng = np.random.default_rng(6)
    d = 64
    stds = recipe_stds(recipe, d, 4, 8)
    x = rng.normal(size=(2, 12, d))
    for zero in (0, 1):  # zero query weights, or zero key weights
        ws = [rng.normal(0, stds[g], (d, d)) for g in "qkvo"]
        ws[zero] = np.zeros((d, d))
        for mup in (False, True):
            for causal in (True, False):
                _, cache = attention(x, *ws, heads=4, causal=causal, mup=mup)
                assert entropy(cache.p, causal) == pytest.approx(1.0, abs=1e-12)


def gpt2_weights(rng: np.random.Generator, d: int, ratio: int, depth: int,
                 scaled: bool, std: float = 0.02, dtype=np.float32) -> BlockWeights:
    """GPT-2's init drawn straight from `rng`, for the block-level tests here (the
    network draws it from recipes.py): N(0, 0.02^2) everywhere, zero biases, and with
    `scaled` the output projections Wo and W2 by 1/sqrt(2 depth)."""
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
        x, _ = block(x, gpt2_weights(rng, d, ratio, depth, scaled),
                     BlockSetup(heads, "pre", causal=True))
        out.append(float(x.var()))
    return out
