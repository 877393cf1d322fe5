"""Normalization layers and scaled weight standardization: every backward pass
against float64 central differences, the forward statistics against their
definitions, and the depth laws against theory (norm.py, theory.py, arch/residual.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator, validate
from initscope.sim.draws import DrawCache
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.norm import EPS, activation_gamma, normalize, normalize_backward, standardize
from initscope.sim.schemes import SCHEMES, bias_spec

KINDS = ["batch", "layer", "rms"]


def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("kind", KINDS)
def test_each_norms_backward_is_the_derivative_of_its_forward(kind):
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 2.0, (7, 5))
    dy = rng.normal(size=(7, 5))  # the loss is sum(dy * norm(x))
    _, cache = normalize(kind, x)
    exact = normalize_backward(dy, cache)
    numeric = central_difference(lambda v: float(np.sum(dy * normalize(kind, v)[0])), x.copy())
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-8)


def test_the_standardizations_backward_is_the_raw_weights_derivative():
    rng = np.random.default_rng(4)
    basis, scale, gamma = rng.normal(size=(6, 4)), -0.3, 1.7
    d_hat = rng.normal(size=(6, 4))  # the loss is sum(d_hat * W_hat(scale * basis))
    _, cache = standardize(basis, scale, gamma)

    def loss(w: np.ndarray) -> float:  # W = scale * basis, standardized
        return float(np.sum(d_hat * standardize(w / scale, scale, gamma)[0]))

    numeric = central_difference(loss, scale * basis)
    np.testing.assert_allclose(normalize_backward(d_hat, cache), numeric, rtol=1e-6, atol=1e-9)


def test_standardized_columns_have_zero_mean_and_norm_gamma():
    w_hat, _ = standardize(np.random.default_rng(5).normal(size=(300, 40)), 0.02, 1.7139)
    np.testing.assert_allclose(w_hat.sum(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(np.sum(w_hat ** 2, axis=0), 1.7139 ** 2, rtol=1e-9)
    assert np.all(standardize(np.ones((5, 3)), 0.0, 1.0)[0] == 0)  # zero weights stay zero


def test_batch_norm_gives_each_feature_mean_0_and_variance_below_1_by_eps():
    rng = np.random.default_rng(6)
    x = rng.normal(3.0, 0.01, (1000, 20))  # a tiny variance makes eps visible
    y, _ = normalize("batch", x)
    var = x.var(axis=0)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=0), var / (var + EPS), rtol=1e-9)
    assert y.var(axis=0).max() < 0.92  # 1e-4 / (1e-4 + 1e-5)


def test_layer_and_rms_norms_act_per_sample():
    x = np.random.default_rng(7).normal(2.0, 3.0, (10, 500))
    layer, _ = normalize("layer", x)
    rms, _ = normalize("rms", x)
    np.testing.assert_allclose(layer.mean(axis=1), 0, atol=1e-10)
    np.testing.assert_allclose(np.mean(rms ** 2, axis=1), 1, rtol=1e-5)


# The NF-ResNet authors' table of gammas (deepmind-research/nfnets, as timm copies it in
# timm/models/nfnet.py, `_nonlin_gamma`): estimated on a sample of N(0, 1), whose own
# std pulls every entry about 0.06% above the exact value (selu's exact gamma is 1)
PUBLISHED_GAMMA = dict(elu=1.2716004848480225, gelu=1.7015043497085571,
                       leaky_relu=1.70590341091156, relu=1.7139588594436646,
                       selu=1.0008515119552612, sigmoid=4.803835391998291,
                       silu=1.7881293296813965, softplus=1.9203323125839233,
                       tanh=1.5939117670059204)


def test_the_relu_gamma_is_the_papers_formula():
    # Brock, De, Smith 2021: gamma = sqrt(2 / (1 - 1/pi)) = 1.71286 for ReLU
    assert activation_gamma("relu") == pytest.approx(math.sqrt(2 / (1 - 1 / math.pi)), rel=1e-9)
    assert activation_gamma("selu") == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("name", sorted(PUBLISHED_GAMMA))
def test_every_gamma_matches_the_published_table(name):
    assert activation_gamma(name) == pytest.approx(PUBLISHED_GAMMA[name], rel=1e-3)


# ---- the runners' backward passes against central differences of the whole network


def _act(name):
    return {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[name]


def _plain_forward(cfg: Config, weights, biases, x, upto=None, start=None):
    """The plain stack with its norm, written out: outputs of every layer. From
    layer `start` on when `start` (index, its output) is given."""
    phi, outs = _act(cfg.activation), []
    h = x
    first = 0
    if start is not None:
        first, h = start[0] + 1, start[1]
    for i in range(first, len(weights)):
        z = h @ weights[i] + biases[i]
        if cfg.norm in KINDS and cfg.norm_at == "before":
            z = normalize(cfg.norm, z)[0]
        h = phi(z)
        if cfg.norm in KINDS and cfg.norm_at == "after":
            h = normalize(cfg.norm, h)[0]
        outs.append(h)
    return outs


def _plain_weights(cfg: Config, draws: DrawCache, raw=None):
    dt = np.dtype("float64")
    ws, bs = [], []
    for i, (fi, fo) in enumerate(cfg.fans()):
        spec = SCHEMES[cfg.scheme].weight_spec(cfg, fi, fo)
        w = weight_matrix(cfg, draws, i, spec, dt) if raw is None or i != raw[0] else raw[1]
        if cfg.norm == "nf":
            gamma = 1.0 if i == 0 else activation_gamma(cfg.activation)
            w = standardize(w / spec.scale, spec.scale, gamma)[0]
        ws.append(w)
        bs.append(bias_vector(cfg, draws, i, bias_spec(cfg, fi), fo, dt))
    return ws, bs


@pytest.mark.parametrize("norm,at,act", [("batch", "before", "relu"), ("batch", "after", "tanh"),
                                         ("layer", "before", "tanh"), ("layer", "after", "relu"),
                                         ("rms", "before", "relu"), ("rms", "after", "tanh"),
                                         ("nf", "before", "relu")])
def test_the_plain_runners_gradients_are_central_differences(norm, at, act):
    cfg = Config(depth=3, width=(5,), inputs=4, batch=6, activation=act, scheme="he_normal",
                 bias="normal", bias_value=0.1, norm=norm, norm_at=at, dtype="float64")
    result = Simulator().run(cfg)
    draws = DrawCache()
    dt = np.dtype("float64")
    x = np.asarray(input_batch(cfg, draws, dt))
    up = np.asarray(upstream_gradient(cfg, draws, dt, 5))
    ws, bs = _plain_weights(cfg, draws)
    outs = _plain_forward(cfg, ws, bs, x)
    for i in range(cfg.depth):
        def loss_from(out_i, i=i):
            rest = _plain_forward(cfg, ws, bs, x, start=(i, out_i))
            return float(np.sum(up * (rest[-1] if rest else out_i)))

        g = central_difference(loss_from, outs[i].copy())
        lay = result.layers[i]
        assert lay.gradient.mean == pytest.approx(g.mean(), abs=1e-7)
        assert lay.gradient.std == pytest.approx(g.std(), rel=1e-6)
        spec = SCHEMES[cfg.scheme].weight_spec(cfg, *cfg.fans()[i])
        raw = weight_matrix(cfg, draws, i, spec, dt)

        def loss_of_weight(w, i=i):
            return float(np.sum(up * _plain_forward(cfg, *_plain_weights(cfg, draws, (i, w)),
                                                    x)[-1]))

        dw = central_difference(loss_of_weight, raw.copy())
        assert lay.weight_gradient.std == pytest.approx(dw.std(), rel=1e-6)


def _residual_forward(cfg: Config, draws: DrawCache, x, raw=None):
    """x + alpha F(...) block by block, as arch/residual.py documents it."""
    from initscope.sim.arch.blocks import _bias_spec, beta, specs

    dt, phi = np.dtype("float64"), _act(cfg.activation)
    first, last, alpha = specs(cfg)
    b = _bias_spec(cfg, cfg.width[0])
    width, outs = cfg.width[0], []
    for k in range(cfg.depth):
        w1 = weight_matrix(cfg, draws, 2 * k, first[k], dt) if raw is None or raw[0] != k \
            else raw[1]
        w2 = weight_matrix(cfg, draws, 2 * k + 1, last[k], dt)
        if cfg.norm == "nf":
            w1 = standardize(w1 / first[k].scale, first[k].scale, 1.0)[0]
            w2 = standardize(w2 / last[k].scale, last[k].scale, activation_gamma(cfg.activation))[0]
        b1 = bias_vector(cfg, draws, 2 * k, b, width, dt)
        b2 = bias_vector(cfg, draws, 2 * k + 1, b, width, dt)
        u = x
        if cfg.norm in KINDS and cfg.norm_at == "before":
            u = normalize(cfg.norm, x)[0]
        if cfg.norm == "nf":
            u = x / beta(cfg, k, alpha)
        x = x + alpha * (phi(u @ w1 + b1) @ w2 + b2)
        if cfg.norm in KINDS and cfg.norm_at == "after":
            x = normalize(cfg.norm, x)[0]
        outs.append(x)
    return outs


@pytest.mark.parametrize("norm,at", [("batch", "before"), ("batch", "after"), ("layer", "before"),
                                     ("layer", "after"), ("rms", "before"), ("nf", "before")])
def test_the_residual_runners_weight_gradients_are_central_differences(norm, at):
    cfg = Config(arch="residual", depth=3, width=(5,), inputs=5, batch=6, activation="tanh",
                 scheme="xavier_normal", bias="normal", bias_value=0.1, norm=norm, norm_at=at,
                 nf_alpha=0.5, dtype="float64")
    result = Simulator().run(cfg)
    draws, dt = DrawCache(), np.dtype("float64")
    x = np.asarray(input_batch(cfg, draws, dt, features=5))
    up = np.asarray(upstream_gradient(cfg, draws, dt, 5))
    from initscope.sim.arch.blocks import specs

    first = specs(cfg)[0]
    outs = _residual_forward(cfg, draws, x)
    for k in range(cfg.depth):
        assert result.layers[k].activation.std == pytest.approx(outs[k].std(), rel=1e-9)
        w1 = weight_matrix(cfg, draws, 2 * k, first[k], dt)
        dw = central_difference(
            lambda w, k=k: float(np.sum(up * _residual_forward(cfg, draws, x, (k, w))[-1])),
            w1.copy())
        assert result.layers[k].weight_gradient.std == pytest.approx(dw.std(), rel=1e-6)
        assert result.layers[k].weight_gradient.mean == pytest.approx(dw.mean(), abs=1e-8)


# ---- depth laws at large width


def test_batch_norm_makes_relu_gradients_explode_at_pi_over_pi_minus_1():
    # Yang et al. 2019: the gradient's second moment grows by pi / (pi - 1) per layer
    cfg = Config(depth=20, width=(1000,), inputs=1000, batch=1000, activation="relu",
                 scheme="normal", std=0.01, norm="batch", norm_at="before")
    result = Simulator().run(cfg)
    g = [lay.gradient.std for lay in result.layers]
    rate = (g[0] / g[-1]) ** (2 / (len(g) - 1))
    assert rate == pytest.approx(math.pi / (math.pi - 1), rel=0.10)
    assert rate == pytest.approx(math.pi / (math.pi - 1), rel=0.01)  # in fact much closer
    theory = [lay.theory.gradient_std for lay in result.layers]
    assert (theory[0] / theory[-1]) ** (2 / 19) == pytest.approx(math.pi / (math.pi - 1),
                                                                 rel=2e-3)
    # and the forward pass looks healthy: a tiny init hidden by the norm
    assert all(lay.preactivation.std == pytest.approx(1, abs=0.01) for lay in result.layers)


def test_layer_norm_does_not_make_relu_gradients_explode():
    cfg = Config(depth=20, width=(1000,), inputs=1000, batch=200, activation="relu",
                 scheme="he_normal", norm="layer", norm_at="before")
    g = [lay.gradient.std for lay in Simulator().run(cfg).layers]
    assert (g[0] / g[-1]) ** (2 / 19) == pytest.approx(1.0, abs=0.02)


def test_scaled_weight_standardization_keeps_unit_variance_through_relu():
    cfg = Config(depth=10, width=(1000,), inputs=1000, batch=1000, activation="relu",
                 scheme="normal", std=0.3, norm="nf")
    for lay in Simulator().run(cfg).layers:
        assert lay.preactivation.std ** 2 == pytest.approx(1.0, rel=0.02)
        assert lay.weight_std == pytest.approx(lay.weight_target_std, rel=1e-6)


@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_the_nf_streams_variance_grows_by_alpha_squared_per_block(alpha):
    cfg = Config(arch="residual", depth=20, width=(1000,), inputs=1000, batch=500,
                 activation="relu", scheme="he_normal", bias="zeros", norm="nf", nf_alpha=alpha)
    for k, lay in enumerate(Simulator().run(cfg).layers, start=1):
        assert lay.activation.std ** 2 == pytest.approx(1 + k * alpha ** 2, rel=0.05)


@pytest.mark.parametrize("norm,at", [("batch", "before"), ("batch", "after"), ("layer", "before"),
                                     ("layer", "after"), ("rms", "before"), ("nf", "before")])
@pytest.mark.parametrize("arch", ["plain", "residual"])
def test_the_theory_lines_follow_the_normalized_networks(norm, at, arch):
    cfg = Config(arch=arch, depth=10, width=(500,), inputs=500, batch=500, activation="tanh",
                 scheme="xavier_normal", bias="zeros", norm=norm, norm_at=at)
    for lay in Simulator().run(cfg).layers:
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            measured, predicted = getattr(lay, q).std, getattr(lay.theory, q + "_std")
            assert measured == pytest.approx(predicted, rel=0.08), (lay.index, q)


def test_pre_norm_grows_the_stream_linearly_and_post_norm_holds_it_at_1():
    base = Config(arch="residual", depth=16, width=(500,), inputs=500, batch=500,
                  activation="relu", scheme="he_normal", bias="zeros", norm="layer")
    pre = [lay.activation.std ** 2 for lay in Simulator().run(base).layers]
    post = [lay.activation.std ** 2 for lay in
            Simulator().run(base.replace(norm_at="after")).layers]
    # He ReLU on a unit-variance input: each branch adds 2 to the variance
    for k, v in enumerate(pre, start=1):
        assert v == pytest.approx(1 + 2 * k, rel=0.1)
    assert all(v == pytest.approx(1.0, rel=1e-3) for v in post)


def test_norm_is_refused_where_it_has_no_meaning():
    with pytest.raises(ConfigError,
                       match="norm is for the plain, residual, conv, resconv and trans"):
        validate(Config(arch="rnn", width=(32,), norm="batch"))
    with pytest.raises(ConfigError, match="lsuv tunes a stack without normalization"):
        validate(Config(scheme="lsuv", norm="layer"))
    with pytest.raises(ConfigError, match="nf-alpha must not be negative"):
        validate(Config(norm="nf", nf_alpha=-1.0))


@pytest.mark.parametrize("arch,norm,at", [("plain", "batch", "before"), ("plain", "nf", "before"),
                                          ("residual", "layer", "before"),
                                          ("residual", "rms", "after"),
                                          ("residual", "nf", "before")])
def test_the_memory_estimate_covers_a_normalized_run(arch, norm, at):
    from initscope.sim.budget import estimate
    from tests.peak import peak_bytes

    cfg = Config(arch=arch, depth=4, width=(384,), inputs=384, batch=384, norm=norm,
                 norm_at=at, activation="relu", scheme="he_normal")
    peak = peak_bytes(lambda: Simulator().run(cfg))
    assert peak <= estimate(cfg).total <= 1.7 * peak + 8 * 2**20


# ---- the signal propagation plot


def test_spp_rows_are_the_streams_channel_averages():
    cfg = Config(arch="residual", depth=3, width=(6,), inputs=6, batch=8, activation="tanh",
                 scheme="xavier_normal", bias="normal", bias_value=0.1, norm="layer",
                 dtype="float64")
    result = Simulator().run(cfg)
    draws, dt = DrawCache(), np.dtype("float64")
    outs = _residual_forward(cfg, draws, np.asarray(input_batch(cfg, draws, dt, features=6)))
    before = [np.asarray(input_batch(cfg, draws, dt, features=6))] + outs[:-1]
    for row, x, x_in in zip(result.spp, outs, before):
        assert row.squared_mean == pytest.approx(np.mean(x.mean(axis=0) ** 2), rel=1e-12)
        assert row.variance == pytest.approx(np.mean(x.var(axis=0)), rel=1e-12)
        branch = x - x_in  # alpha 1, pre-norm: the stream only adds F
        assert row.branch_variance == pytest.approx(np.mean(branch.var(axis=0)), rel=1e-9)


@pytest.mark.parametrize("norm,at", [("batch", "before"), ("batch", "after"), ("nf", "before")])
def test_spp_follows_its_prediction_where_the_split_is_exact(norm, at):
    cfg = Config(arch="residual", depth=12, width=(1000,), inputs=1000, batch=500,
                 activation="relu", scheme="he_normal", bias="zeros", norm=norm, norm_at=at)
    for row in Simulator().run(cfg).spp:
        m, v, b = row.predicted
        assert row.variance == pytest.approx(v, rel=0.05)
        assert row.branch_variance == pytest.approx(b, rel=0.05)
        # the squared mean averages the squares of 1000 random per-unit offsets, whose
        # relative spread is sqrt(2 / 1000) = 4.5%: 4 of those
        assert row.squared_mean == pytest.approx(m, rel=4 * math.sqrt(2 / 1000), abs=1e-6)


def test_nf_resnet_spp_matches_the_batch_norm_resnets_variance():
    # Brock et al.: the NF-ResNet's stream grows as a batch-normalized ResNet's does,
    # linearly, with no norm; plain He blocks grow geometrically
    base = Config(arch="residual", depth=10, width=(500,), inputs=500, batch=500,
                  activation="relu", scheme="he_normal", bias="zeros")
    nf = [r.variance for r in Simulator().run(base.replace(norm="nf", nf_alpha=0.2)).spp]
    plain = [r.variance for r in Simulator().run(base).spp]
    assert list(np.diff(nf)) == pytest.approx([0.04] * 9, abs=0.01)
    assert plain[-1] / plain[-2] > 2


def test_spp_prediction_stops_where_only_the_sum_is_known():
    cfg = Config(arch="residual", depth=4, width=(64,), inputs=64, batch=64,
                 activation="relu", scheme="he_normal", bias="zeros")
    predicted = [row.predicted for row in Simulator().run(cfg).spp]
    assert predicted[0] is not None and predicted[1:] == [None, None, None]


def test_what_does_not_model_a_norm_says_so():
    from initscope.sim.spectrum import jacobian_spectrum
    from initscope.sim.training import Trainer

    cfg = Config(depth=2, width=(16,), inputs=8, batch=32, norm="batch")
    with pytest.raises(ConfigError, match="training covers networks without normalization"):
        Trainer(cfg)
    with pytest.raises(ConfigError, match="spectrum is for networks without normalization"):
        jacobian_spectrum(cfg)


def test_a_huge_alpha_or_bias_is_an_overflow_not_a_crash():
    # alpha ** 2 raised OverflowError in the theory; the run must name the layer instead
    for cfg in (Config(arch="residual", norm="nf", nf_alpha=1e300, depth=3, width=(16,),
                       batch=16),
                Config(arch="residual", norm="layer", bias="constant", bias_value=1e300,
                       depth=3, width=(16,), batch=16)):
        result = Simulator().run(cfg)
        assert result.overflow_layer == 1
