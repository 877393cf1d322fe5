"""The transformer's code runs in its framework, draws each weight group at initscope's
std, and, given initscope's own weights, computes initscope's forward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.codegen import snippets
from initscope.codegen_transformer import fits_encoder_layer
from initscope.sim import Config, validate
from initscope.sim.arch import with_arch
from initscope.sim.arch.transformer import TransformerRun, group_specs, placement, setup
from initscope.sim.draws import DrawCache
from initscope.sim.recipes import GROUPS
from initscope.sim.transformer import block, norm_tokens

BASE = with_arch(Config(), "transformer").replace(width=(64,), depth=2, tokens=12, batch=3)
CONFIGS = [
    BASE,  # GPT-2, pre-norm, causal: nn.TransformerEncoderLayer
    BASE.replace(norm_at="after", mask="full", activation="relu", bias="normal",
                 bias_value=0.1),  # post-norm encoder layer
    BASE.replace(scheme="mup"),  # logits / d_head: the small module
    BASE.replace(scheme="deepnet", norm_at="after"),  # alpha on the skips
    BASE.replace(scheme="small_init", norm="rms", activation="silu"),
    BASE.replace(scheme="zero_out", norm="none", activation="tanh"),
    BASE.replace(scheme="xavier_uniform", skips="off", activation="gelu_tanh", gain=-1.5),
    BASE.replace(scheme="orthogonal", activation="leaky_relu", slope=0.2),
    BASE.replace(scheme="flax_dense", mask="full", bias="constant", bias_value=0.05),
]
IDS = [f"{c.scheme}-{placement(c)}-{c.norm}-{c.mask}-{c.skips}" for c in CONFIGS]


def initscope_weights(cfg: Config) -> list:
    runner = TransformerRun(DrawCache(), cfg, None, None)
    specs, _ = group_specs(cfg)
    return [runner.weights(b, specs) for b in range(cfg.depth)]


def initscope_forward(cfg: Config, weights: list, x: np.ndarray) -> np.ndarray:
    s = setup(cfg)
    for w in weights:
        x, _ = block(x, w, s)
    return norm_tokens(s.norm, x)[0] if s.place == "pre" else x


def check_group_stds(cfg: Config, drawn: dict[str, np.ndarray]) -> None:
    specs, _ = group_specs(cfg)
    for g in GROUPS:
        w = drawn[g]
        # a normal sample std's relative standard error is sqrt(1/(2n)), a uniform's
        # smaller, an orthogonal matrix's smaller still: allow five of the largest
        assert float(np.std(w)) == pytest.approx(specs[g].std, rel=5 * math.sqrt(2 / w.size),
                                                 abs=1e-7), g


def test_the_encoder_layer_is_used_where_it_computes_the_same_block():
    assert [fits_encoder_layer(c) for c in CONFIGS[:4]] == [True, True, False, False]
    assert "nn.TransformerEncoderLayer" in snippets(CONFIGS[0])["pytorch"]
    assert "class Block(nn.Module)" in snippets(CONFIGS[2])["pytorch"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_pytorch_code_draws_initscopes_stds_and_computes_its_forward_pass(cfg):
    torch = pytest.importorskip("torch")
    cfg = validate(cfg)
    scope: dict = {}
    torch.manual_seed(0)
    exec(snippets(cfg)["pytorch"], scope)  # noqa: S102 - our own generated code
    encoder = fits_encoder_layer(cfg)
    blocks = scope["model"].layers if encoder else scope["blocks"]

    def as_numpy(t):
        return t.detach().double().numpy().T  # (fan_in, fan_out), as initscope's

    first = blocks[0]
    if encoder:
        q, k, v = first.self_attn.in_proj_weight.chunk(3)
        drawn = {"q": as_numpy(q), "k": as_numpy(k), "v": as_numpy(v),
                 "o": as_numpy(first.self_attn.out_proj.weight),
                 "w1": as_numpy(first.linear1.weight), "w2": as_numpy(first.linear2.weight)}
    else:
        drawn = {**{g: as_numpy(getattr(first, g).weight) for g in "qkvo"},
                 "w1": as_numpy(first.up.weight), "w2": as_numpy(first.down.weight)}
    check_group_stds(cfg, drawn)
    # initscope's weights in the framework's modules: the same outputs
    weights = initscope_weights(cfg)
    with torch.no_grad():
        for mod, w in zip(blocks, weights):
            def put(param, value):
                param.copy_(torch.as_tensor(np.ascontiguousarray(value.T)))
            if encoder:
                put(mod.self_attn.in_proj_weight, np.concatenate([w.wq, w.wk, w.wv], axis=1))
                put(mod.self_attn.out_proj.weight, w.wo)
                put(mod.linear1.weight, w.w1)
                put(mod.linear2.weight, w.w2)
                up, down = mod.linear1, mod.linear2
            else:
                for g in "qkvo":
                    put(getattr(mod, g).weight, getattr(w, f"w{g}"))
                put(mod.up.weight, w.w1)
                put(mod.down.weight, w.w2)
                up, down = mod.up, mod.down
            up.bias.copy_(torch.as_tensor(w.b1))
            down.bias.copy_(torch.as_tensor(w.b2))
    x = np.random.default_rng(3).standard_normal((cfg.batch, cfg.tokens, cfg.width[0]),
                                                 dtype=np.float32)
    model = scope["model"].eval()
    with torch.no_grad():
        if encoder and cfg.mask == "causal":
            mask = torch.nn.Transformer.generate_square_subsequent_mask(cfg.tokens)
            y = model(torch.as_tensor(x), mask=mask, is_causal=True)
        else:
            y = model(torch.as_tensor(x))
    expected = initscope_forward(cfg, weights, x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_jax_code_draws_initscopes_stds_and_computes_its_forward_pass(cfg):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    cfg = validate(cfg)
    scope: dict = {}
    exec(snippets(cfg)["jax"], scope)  # noqa: S102 - our own generated code
    params = scope["params"]
    assert len(params) == cfg.depth
    check_group_stds(cfg, {g: np.asarray(params[0][g], np.float64) for g in GROUPS})
    weights = initscope_weights(cfg)
    mine = [{"q": w.wq, "k": w.wk, "v": w.wv, "o": w.wo, "w1": w.w1, "b1": w.b1, "w2": w.w2,
             "b2": w.b2} for w in weights]
    x = np.random.default_rng(3).standard_normal((cfg.batch, cfg.tokens, cfg.width[0]),
                                                 dtype=np.float32)
    y = scope["forward"]([{k: jnp.asarray(v) for k, v in p.items()} for p in mine],
                         jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(y), initscope_forward(cfg, weights, x),
                               rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("cfg", CONFIGS[:4], ids=IDS[:4])
def test_keras_code_draws_initscopes_stds_and_computes_its_forward_pass(cfg, monkeypatch):
    pytest.importorskip("jax")  # Keras' backend here: TensorFlow is not installed
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    cfg = validate(cfg)
    scope: dict = {}
    exec(snippets(cfg)["keras"], scope)  # noqa: S102 - our own generated code
    model = scope["model"]
    blocks = [layer for layer in model.layers if hasattr(layer, "p")]
    assert len(blocks) == cfg.depth
    check_group_stds(cfg, {g: np.asarray(blocks[0].p[g], np.float64) for g in GROUPS})
    for layer, w in zip(blocks, initscope_weights(cfg)):
        for g in ("q", "k", "v", "o", "w1", "b1", "w2", "b2"):
            layer.p[g].assign(getattr(w, g if g.startswith(("w", "b")) else f"w{g}"))
    x = np.random.default_rng(3).standard_normal((cfg.batch, cfg.tokens, cfg.width[0]),
                                                 dtype=np.float32)
    expected = initscope_forward(cfg, initscope_weights(cfg), x)
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_every_snippet_is_python_and_names_the_init(cfg):
    import ast

    for text in snippets(validate(cfg)).values():
        ast.parse(text)
        assert f"# init: {cfg.scheme}" in text
