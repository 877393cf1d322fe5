"""The transformer network: its recipes per weight group, its meters against their
predictions, the gradients it reports against finite differences, what the issue's
claims say it shows, and its refusals and memory estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator, validate
from initscope.sim.arch import ARCHS, with_arch
from initscope.sim.arch.transformer import TransformerRun, group_specs
from initscope.sim.budget import estimate
from initscope.sim.draws import DrawCache
from initscope.sim.recipes import GROUPS, RECIPES, recipe_stds
from initscope.sim.transformer import block, norm_tokens
from tests.peak import peak_bytes

BASE = with_arch(Config(), "transformer")  # width 256, 8 blocks, 64 tokens, batch 8
SMALL = BASE.replace(tokens=32, batch=4)


def run(**changes):
    return Simulator().run(validate(BASE.replace(**changes)))


def test_the_architecture_defaults_are_its_own_and_go_back():
    assert (BASE.scheme, BASE.activation, BASE.norm, BASE.width, BASE.depth, BASE.batch) == \
        ("gpt2", "gelu", "layer", (256,), 8, 8)
    assert with_arch(BASE, "plain") == Config()


def test_naming_the_network_in_any_config_text_brings_its_defaults():
    from initscope.sim.parse import config_from, parse_overrides
    from initscope.sim.share import decode, encode

    # a scene's or compare's "arch = transformer" is the CLI's --arch transformer
    assert config_from({"arch": "transformer"}) == BASE
    assert parse_overrides("arch=transformer,batch=4", Config()) == BASE.replace(batch=4)
    # a share string names every field that differs from the defaults: kept as it is
    odd = BASE.replace(batch=1000, width=(500,), heads=5)
    assert decode(encode(odd)) == odd


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_draws_each_group_at_its_own_std(recipe):
    cfg = SMALL.replace(scheme=recipe, depth=6, gain=1.5)
    stds = recipe_stds(recipe, 256, 4, 6)
    specs, alpha = group_specs(cfg)
    assert alpha == stds["alpha"]
    weights = TransformerRun(DrawCache(), cfg, None, None).weights(2, specs)
    for g, name in zip(GROUPS, ("wq", "wk", "wv", "wo", "w1", "w2")):
        w = getattr(weights, name)
        expected = 1.5 * stds[g]
        # a normal sample std's relative standard error is 1/sqrt(2n): allow five
        assert float(w.std()) == pytest.approx(expected, rel=5 / math.sqrt(2 * w.size),
                                               abs=1e-12), g
    assert not np.any(weights.b1) and not np.any(weights.b2)  # recipes' biases are zero


def test_any_other_scheme_applies_to_every_weight_matrix():
    cfg = SMALL.replace(scheme="xavier_uniform", depth=2)
    specs, alpha = group_specs(cfg)
    assert alpha == 1.0
    assert specs["q"].std == pytest.approx(math.sqrt(2 / 512) , rel=1e-12)
    assert specs["w1"].std == pytest.approx(math.sqrt(2 / (256 + 1024)), rel=1e-12)


@pytest.mark.parametrize("mask", ["causal", "full"])
@pytest.mark.parametrize("place", ["before", "after"])
def test_mup_zero_query_gives_exactly_uniform_attention_at_every_block(mask, place):
    result = Simulator().run(SMALL.replace(scheme="mup", mask=mask, norm_at=place))
    for m in result.meters:
        assert m.entropy == pytest.approx(1.0, abs=1e-6) and m.predicted["entropy"] == 1.0
        assert m.logit_std == 0 and m.predicted["logit_std"] == 0


@pytest.mark.parametrize("scheme,activation", [("gpt2", "gelu"), ("lecun_normal", "tanh"),
                                               ("he_normal", "relu")])
def test_logit_std_and_mlp_variance_follow_their_predictions(scheme, activation):
    # pre-norm, 4 blocks, where the tokens stay far apart. The logits: 8 x 4 x 2080
    # of them, a variance's relative error sqrt(2/N) < 0.6%, and the norms' |u|^2 to
    # 1/d; allow 5%. The MLP branch: its variance averages phi(z)^2 over r d = 1024
    # hidden units whose pre-activation variance spreads by sqrt(2/d) = 9%: an
    # average's error near 9% / sqrt(1024) times a few correlated tokens; allow 5%.
    # Tokens that have drawn together (He's ReLU blocks do) leave fewer independent
    # logits to sample the same variance: the blocks whose input tokens are near
    # orthogonal are checked.
    checked = 0
    for seed in range(2):
        result = run(scheme=scheme, activation=activation, depth=4, seed=seed)
        similarity = result.input_similarity
        for m in result.meters:
            if similarity < 0.25:
                assert m.logit_std == pytest.approx(m.predicted["logit_std"], rel=0.05)
                assert m.mlp_variance == pytest.approx(m.predicted["mlp_variance"], rel=0.05)
                checked += 1
            similarity = m.similarity
    assert checked >= 2


def test_the_logit_prediction_is_d_times_the_query_and_key_stds():
    specs, _ = group_specs(BASE.replace(scheme="lecun_normal"))
    assert run(scheme="lecun_normal", depth=1).meters[0].predicted["logit_std"] == \
        pytest.approx(256 * specs["q"].std * specs["k"].std)
    assert run(depth=1).meters[0].predicted["logit_std"] == pytest.approx(256 * 0.02 ** 2)
    # without a norm only block 1, which reads the unit embeddings, is predicted
    plain = run(norm="none", depth=3)
    assert [("logit_std" in m.predicted) for m in plain.meters] == [True, False, False]
    assert all("mlp_variance" not in m.predicted for m in plain.meters)


def test_the_reported_gradients_are_the_derivatives_of_the_network():
    # float64, tiny: the loss is the upstream gradient's dot product with the output
    # (a pre-norm stack's final norm of its stream); central differences of it w.r.t.
    # block 1's query weights and block 2's MLP weights against the meters' norms
    cfg = validate(BASE.replace(width=(8,), heads=2, tokens=4, batch=2, depth=2,
                                scheme="lecun_normal", dtype="float64", bias="normal",
                                bias_value=0.1))
    result = Simulator().run(cfg)
    draws = DrawCache()
    runner = TransformerRun(draws, cfg, None, None)
    specs, _ = group_specs(cfg)
    weights = [runner.weights(b, specs) for b in range(2)]
    x0 = runner.embeddings()
    from initscope.sim.arch.transformer import _upstream_key, setup

    g = draws.normal(*_upstream_key(cfg, np.dtype("float64"))[1:])
    s = setup(cfg)

    def loss() -> float:
        x = x0
        for w in weights:
            x, _ = block(x, w, s)
        return float(np.sum(g * norm_tokens("layer", x)[0]))

    def numeric(b: int, name: str) -> np.ndarray:
        w = getattr(weights[b], name)
        out = np.zeros_like(w)
        for i in np.ndindex(*w.shape):
            keep = w[i]
            w[i] = keep + 1e-6
            up = loss()
            w[i] = keep - 1e-6
            down = loss()
            w[i] = keep
            out[i] = (up - down) / 2e-6
        return out

    assert result.meters[0].grad_norms["q"] == pytest.approx(
        float(np.linalg.norm(numeric(0, "wq"))), rel=1e-6)
    mlp = math.hypot(np.linalg.norm(numeric(1, "w1")), np.linalg.norm(numeric(1, "w2")))
    assert result.meters[1].grad_norms["mlp"] == pytest.approx(mlp, rel=1e-6)


def test_without_skips_the_tokens_collapse_with_skips_and_pre_norm_they_stay():
    # depth 24, GPT-2's init (Noci et al. 2022): attention averages the tokens of a
    # sequence, and without the skips nothing keeps each token's own part
    kept = run(depth=24, correlation=0.3)
    assert abs(kept.input_similarity - 0.3) < 0.05
    assert all(abs(m.similarity - kept.input_similarity) < 0.05 for m in kept.meters)
    collapsed = run(depth=24, skips="off")
    assert collapsed.meters[-1].similarity > 0.99
    assert abs(collapsed.input_similarity) < 0.01


def test_gpt2_keeps_the_pre_norm_stream_from_growing_linearly():
    # each pre-norm block adds its branches' variance to the stream: the same amount
    # whatever the depth under N(0, 0.02^2), so the growth is linear in L; gpt2
    # divides each block's share by 2L. Seeds give the spread.
    def growth(scheme: str, depth: int) -> list[float]:
        return [Simulator().run(SMALL.replace(scheme=scheme, std=0.02, depth=depth,
                                              seed=seed)).meters[-1].stream_variance - 1
                for seed in range(3)]

    depths = np.array([4, 8, 16])
    plain = np.array([growth("normal", L) for L in depths])
    scaled = np.array([growth("gpt2", L) for L in depths])
    per_block = plain / depths[:, None]
    spread = per_block.std(axis=1).max()
    assert np.ptp(per_block.mean(axis=1)) < 3 * spread + 1e-4  # a line through 0
    assert plain.mean(axis=1)[-1] > 3 * plain.mean(axis=1)[0] > 0
    assert abs(scaled.mean(axis=1)[-1] - scaled.mean(axis=1)[0]) < 0.3 * scaled.mean()
    assert scaled.mean(axis=1)[-1] < 0.2 * plain.mean(axis=1)[-1]


def test_post_norms_last_gradients_outgrow_pre_norms_as_sqrt_depth():
    # Xiong et al. 2020, Theorem 1: at init the last block's weight gradients are O(1)
    # under post-norm and O(1/sqrt(L)) under pre-norm (with its final norm), so their
    # ratio grows as sqrt(L): 2 from L = 4 to 16
    def ratio(depth: int) -> float:
        last = {place: run(scheme="lecun_normal", norm_at=place, depth=depth,
                           tokens=32).meters[-1].grad_norms["mlp"]
                for place in ("before", "after")}
        return last["after"] / last["before"]

    assert 1.5 < ratio(16) / ratio(4) < 2.7


def test_correlated_embeddings_start_at_that_similarity():
    for c in (0.0, 0.5, 0.9):
        result = run(correlation=c, depth=1)
        # the shared part's squared norm spreads by sqrt(2/d) per sequence: allow five
        # of that over the batch
        assert result.input_similarity == pytest.approx(c, abs=5 * math.sqrt(2 / (256 * 8)))


def test_zero_out_starts_every_block_as_the_identity():
    result = run(scheme="zero_out", norm="none", depth=3)
    for m in result.meters:
        assert m.attention_variance == 0 and m.mlp_variance == 0
        assert m.stream_variance == pytest.approx(result.meters[0].stream_variance)


@pytest.mark.parametrize("changes,message", [
    (dict(heads=3), "heads must divide the width"),
    (dict(tokens=1), "tokens must be between 2"),
    (dict(correlation=1.0), "correlation must be at least 0 and below 1"),
    (dict(norm="batch"), "norm is none, layer or rms, not batch"),
    (dict(mlp_ratio=0), "mlp-ratio must be between 1"),
    (dict(width=(256,) * 8), "has one width"),
])
def test_impossible_transformers_are_refused_in_one_line(changes, message):
    with pytest.raises(ConfigError, match=message) as caught:
        validate(BASE.replace(**changes))
    assert "\n" not in str(caught.value)


def test_recipes_are_refused_on_other_networks():
    with pytest.raises(ConfigError, match="gpt2 is a transformer recipe"):
        validate(Config(scheme="gpt2"))


def test_an_overflowing_transformer_names_its_block():
    result = run(scheme="lecun_normal", norm="none", gain=1e6, depth=8)
    assert result.overflow_layer is not None and result.overflow_pass == "forward"
    assert any("overflow" in w for w in result.warnings)


@pytest.mark.parametrize("changes", [
    dict(), dict(norm_at="after", tokens=128, heads=8), dict(norm="none", mlp_ratio=8),
    dict(scheme="orthogonal", dtype="float64", depth=3), dict(scheme="xavier_uniform",
                                                             input_dist="uniform")])
def test_the_memory_estimate_bounds_the_peak(changes):
    cfg = validate(BASE.replace(**changes))
    est = estimate(cfg).total
    peak = peak_bytes(lambda: Simulator().run(cfg))
    assert peak <= est <= 1.7 * peak + 8 * 2 ** 20, (est, peak)


def test_a_transformer_over_the_budget_names_its_tokens():
    from initscope.sim.budget import check_budget
    from initscope.sim.memory import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match="lower the tokens, width, depth or batch"):
        check_budget(validate(BASE.replace(tokens=2048, memory_limit=1.0)))


def test_the_registry_knows_it():
    arch = ARCHS["transformer"]
    assert arch.attends and arch.normalizes and arch.norms == ("none", "layer", "rms")
