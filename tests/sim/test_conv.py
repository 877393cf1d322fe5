"""The convolution stack: im2col against a direct loop, its backward against central
differences, the fans against PyTorch's formula, the recursion position by position."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator, validate
from initscope.sim.arch.conv import weight_spec
from initscope.sim.arch.grids import padding_of, sizes
from initscope.sim.draws import DrawCache
from initscope.sim.im2col import Conv, Geometry, flipped
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.norm import activation_gamma
from initscope.sim.schemes import bias_spec
from tests.sim.test_norm import central_difference


def direct_conv(x: np.ndarray, w: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """x (b, n, n, c) with w (k k c, c_out), rows ordered (row, column, channel), by
    loops over every output position."""
    b, n, _, c = x.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    m = (n + 2 * p - k) // s + 1
    kernel = w.reshape(k, k, c, -1)
    out = np.zeros((b, m, m, w.shape[1]))
    for i in range(m):
        for j in range(m):
            window = xp[:, i * s:i * s + k, j * s:j * s + k, :]  # (b, k, k, c)
            out[:, i, j] = np.einsum("bklc,klco->bo", window, kernel)
    return out


GEOMETRIES = [(3, 1, 1), (3, 2, 1), (5, 1, 0), (1, 1, 0), (4, 3, 2), (5, 2, 2)]


@pytest.mark.parametrize("k,s,p", GEOMETRIES)
def test_the_windows_times_w_are_the_convolution(k, s, p):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 9, 9, 3)), rng.normal(size=(3 * k * k, 4))
    conv = Conv(Geometry(2, 9, 3, 4, k, s, p), np.dtype("float64"))
    m = conv.g.out_side
    for _ in range(2):  # the buffers are reused: a second run must not see the first
        got = conv.forward(x, w).reshape(2, m, m, 4)
        np.testing.assert_allclose(got, direct_conv(x, w, k, s, p), rtol=1e-12, atol=1e-12)
        x = rng.normal(size=x.shape)


@pytest.mark.parametrize("k,s,p", GEOMETRIES)
def test_the_input_gradient_is_the_adjoint_of_the_convolution(k, s, p):
    # <conv(x), y> = <x, conv^T(y)> for every x and y: the transposed convolution
    rng = np.random.default_rng(2)
    conv = Conv(Geometry(2, 8, 3, 5, k, s, p), np.dtype("float64"))
    w = rng.normal(size=(3 * k * k, 5))
    for _ in range(2):
        x = rng.normal(size=(2, 8, 8, 3))
        z = conv.forward(x, w).copy()
        y = rng.normal(size=z.shape)
        dx = conv.input_grad(y, flipped(w, k, 3))
        assert np.sum(z * y) == pytest.approx(np.sum(x.reshape(-1, 3) * dx), rel=1e-12)
        # and dW = windows^T y is the adjoint in W
        assert np.sum(z * y) == pytest.approx(np.sum(w * conv.weight_grad(y)), rel=1e-12)


def test_the_fans_are_pytorchs():
    # torch.nn.init._calculate_fan_in_and_fan_out: fan_in = in_channels * k_h * k_w
    cfg = Config(arch="conv", channels=8, kernel=5, scheme="he_normal")
    assert weight_spec(cfg).std == pytest.approx(math.sqrt(2 / (8 * 25)), rel=1e-12)
    xavier = weight_spec(cfg.replace(scheme="xavier_normal"))
    assert xavier.std == pytest.approx(math.sqrt(2 / (8 * 25 + 8 * 25)), rel=1e-12)
    torch = pytest.importorskip("torch")
    weight = torch.nn.Conv2d(8, 8, 5).weight
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    assert (fan_in, fan_out) == (8 * 25, 8 * 25)
    torch.nn.init.kaiming_normal_(weight, nonlinearity="relu")
    assert float(weight.detach().std()) == pytest.approx(weight_spec(cfg).std,
                                                         rel=5 * math.sqrt(2 / 1600))


def _norm(kind: str, x: np.ndarray) -> np.ndarray:
    """BatchNorm2d (per channel over images and pixels) or a channels-last layer or
    RMS norm (per pixel over channels), eps 1e-5, written out on (b, n, n, c)."""
    axes = (0, 1, 2) if kind == "batch" else (3,)
    if kind == "rms":
        return x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + 1e-5)
    centered = x - x.mean(axis=axes, keepdims=True)
    return centered / np.sqrt(np.mean(centered ** 2, axis=axes, keepdims=True) + 1e-5)


def _standardized(w: np.ndarray, gamma: float) -> np.ndarray:
    centered = w - w.mean(axis=0)
    return gamma * centered / (np.sqrt(np.mean(centered ** 2, axis=0) + 1e-12)
                               * np.sqrt(w.shape[0]))


def _network(cfg: Config, draws: DrawCache, raw=None):
    """The stack written with direct loops: every layer's output."""
    dt, k, s, p = np.dtype("float64"), cfg.kernel, cfg.stride, padding_of(cfg)
    n, c = cfg.image, cfg.channels
    h = np.asarray(input_batch(cfg, draws, dt, features=n * n * c)).reshape(cfg.batch, n, n, c)
    outs = []
    for i in range(cfg.depth):
        # with nf the raw weights (any scale) are standardized
        w = weight_matrix(cfg, draws, i, weight_spec(cfg), dt) if raw is None or raw[0] != i \
            else raw[1]
        if cfg.norm == "nf":
            w = _standardized(w, 1.0 if i == 0 else activation_gamma(cfg.activation))
        b = bias_vector(cfg, draws, i, bias_spec(cfg, c * k * k), c, dt)
        z = direct_conv(h, w, k, s, p) + b
        if cfg.norm in ("batch", "layer", "rms") and cfg.norm_at == "before":
            z = _norm(cfg.norm, z)
        h = np.tanh(z)
        if cfg.norm in ("batch", "layer", "rms") and cfg.norm_at == "after":
            h = _norm(cfg.norm, h)
        outs.append(h)
    return outs


@pytest.mark.parametrize("s,p,norm,at", [(1, -1, "none", "before"), (2, 1, "none", "before"),
                                         (1, -1, "batch", "before"), (2, 1, "batch", "after"),
                                         (1, -1, "layer", "before"), (1, 0, "rms", "after"),
                                         (2, 1, "nf", "before")])
def test_the_runners_gradients_are_central_differences(s, p, norm, at):
    cfg = Config(arch="conv", depth=2, channels=2, image=5, kernel=3, stride=s, padding=p,
                 batch=2, activation="tanh", scheme="xavier_normal", bias="normal",
                 bias_value=0.1, dtype="float64", norm=norm, norm_at=at, gain=1.3)
    result = Simulator().run(cfg)
    draws, dt = DrawCache(), np.dtype("float64")
    side = sizes(cfg)
    up = np.asarray(upstream_gradient(cfg, draws, dt, side[-1] ** 2 * 2)).reshape(
        2, side[-1], side[-1], 2)
    outs = _network(cfg, draws)
    for lay, out in zip(result.layers, outs):
        assert lay.activation.std == pytest.approx(out.std(), rel=1e-10)
        # the channel means: over the batch and every pixel, one per channel
        means = out.mean(axis=(0, 1, 2))
        assert lay.channel_mean.std == pytest.approx(means.std(), rel=1e-9, abs=1e-12)
        assert lay.channel_mean.max == pytest.approx(means.max(), rel=1e-9, abs=1e-12)
    for i in range(cfg.depth):
        w = weight_matrix(cfg, draws, i, weight_spec(cfg), dt)
        dw = central_difference(
            lambda v, i=i: float(np.sum(up * _network(cfg, draws, (i, v))[-1])), w.copy())
        assert result.layers[i].weight_gradient.std == pytest.approx(dw.std(), rel=1e-6)
        assert result.layers[i].weight_gradient.mean == pytest.approx(dw.mean(), abs=1e-9)


@pytest.mark.parametrize("padding", [0, -1])
def test_the_recursion_follows_a_wide_tanh_stack_position_by_position(padding):
    # zero-mean tanh: no per-channel offsets, so 128 channels are enough to be close;
    # with "same" padding the borders' smaller variance is part of the prediction
    cfg = Config(arch="conv", depth=5, channels=128, image=12, batch=8, kernel=3,
                 padding=padding, activation="tanh", scheme="xavier_normal", bias="zeros")
    for lay in Simulator().run(cfg).layers:
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            assert getattr(lay, q).std == pytest.approx(getattr(lay.theory, q + "_std"),
                                                        rel=0.03), (lay.index, q)


def test_borders_lower_the_variance_as_predicted():
    same = Config(arch="conv", depth=3, channels=64, image=6, batch=32, activation="linear",
                  scheme="lecun_normal", bias="zeros")
    valid = Simulator().run(same.replace(padding=0, image=10)).layers[0]
    border = Simulator().run(same).layers[0]
    # 6 x 6, k = 3: the 20 border positions of 36 see 6 or 4 of 9 taps
    expected = (16 * 9 + 16 * 6 + 4 * 4) / 36 / 9
    assert border.preactivation.std ** 2 == pytest.approx(expected, rel=0.05)
    assert border.theory.preactivation_std ** 2 == pytest.approx(expected, rel=1e-9)
    assert valid.theory.preactivation_std == pytest.approx(1.0, rel=1e-9)


def test_impossible_shapes_are_refused():
    with pytest.raises(ConfigError, match="shrinks to nothing at layer 3"):
        validate(Config(arch="conv", image=8, stride=2, padding=0, depth=4))
    with pytest.raises(ConfigError, match="padding must be below the kernel"):
        validate(Config(arch="conv", kernel=3, padding=3))
    with pytest.raises(ConfigError, match="channels must be between 1 and 512"):
        validate(Config(arch="conv", channels=0))
    with pytest.raises(ConfigError, match="norm is for the plain, residual, conv, resconv and"):
        validate(Config(arch="rnn", norm="batch"))
    with pytest.raises(ConfigError,
                       match="dirac is a convolution kernel's init, for the conv and resconv"):
        validate(Config(scheme="dirac"))


@pytest.mark.parametrize("changes", [dict(), dict(stride=2, depth=3), dict(kernel=5, padding=0,
                                                                          depth=3)])
def test_the_memory_estimate_covers_a_conv_run(changes):
    from initscope.sim.budget import estimate
    from tests.peak import peak_bytes

    cfg = Config(arch="conv", activation="relu", scheme="he_normal", batch=64, **changes)
    peak = peak_bytes(lambda: Simulator().run(cfg))
    assert peak <= estimate(cfg).total <= 1.7 * peak + 8 * 2**20


def test_a_vanishing_stack_is_predicted_not_rounded_to_zero():
    # N(0, 0.01^2) on 16 x 9 inputs: each tanh layer scales the std by about 0.12
    layers = Simulator().run(Config(arch="conv", batch=32, depth=10)).layers
    assert 0 < layers[-1].activation.std < 1e-8
    assert layers[-1].activation.std == pytest.approx(layers[-1].theory.activation_std,
                                                      rel=0.1)


def test_batch_norm_is_per_channel_over_images_and_pixels():
    cfg = Config(arch="conv", depth=3, channels=8, image=6, batch=4, norm="batch",
                 activation="relu", scheme="he_normal", dtype="float64")
    result = Simulator().run(cfg)
    outs = _network(cfg.replace(activation="tanh"), DrawCache())  # shapes only
    assert len(outs) == 3
    for lay in result.layers:  # every channel's z: mean 0, variance v / (v + eps) ~ 1
        assert lay.preactivation.mean == pytest.approx(0.0, abs=1e-12)
        assert lay.preactivation.std == pytest.approx(1.0, rel=1e-4)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 5, 5, 3))
    expected = torch.nn.BatchNorm2d(3, dtype=torch.float64)(
        torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(_norm("batch", x), expected, rtol=1e-10, atol=1e-12)


def test_a_dirac_kernel_is_pytorchs_and_passes_its_input_on():
    cfg = Config(arch="conv", scheme="dirac", channels=3, kernel=5, depth=4, image=7, batch=2,
                 activation="linear", bias="zeros", dtype="float64", gain=1.0)
    w = weight_matrix(cfg, DrawCache(), 0, weight_spec(cfg), np.dtype("float64"))
    kernel = w.reshape(5, 5, 3, 3)  # HWIO
    assert np.count_nonzero(kernel) == 3
    np.testing.assert_array_equal(kernel[2, 2], np.eye(3))
    outs = _network(cfg.replace(activation="tanh"), DrawCache())
    x = np.asarray(input_batch(cfg, DrawCache(), np.dtype("float64"), features=7 * 7 * 3))
    np.testing.assert_allclose(outs[0].reshape(2, -1), np.tanh(x), rtol=1e-12)
    result = Simulator().run(cfg)
    for lay in result.layers:  # the identity, layer after layer, both ways
        assert lay.activation.std == pytest.approx(float(x.std()), rel=1e-12)
        assert lay.gradient.std == pytest.approx(result.layers[-1].gradient.std, rel=1e-12)
    torch = pytest.importorskip("torch")
    ours = torch.tensor(kernel).permute(3, 2, 0, 1)  # HWIO -> OIHW
    theirs = torch.nn.init.dirac_(torch.empty(3, 3, 5, 5, dtype=torch.float64))
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_the_dirac_chain_is_predicted_exactly(activation):
    # E[dW^2] is an expectation over the draws; one run's dW std wobbles with only 16
    # output channels sharing the inputs (their common mean), so average 8 seeds
    cfg = Config(arch="conv", scheme="dirac", activation=activation, depth=4, batch=16,
                 bias="constant", bias_value=0.1, dtype="float64")
    sim, dw2 = Simulator(), []
    for seed in range(8):
        result = sim.run(cfg.replace(seed=seed))
        dw2.append([lay.weight_gradient.std ** 2 + lay.weight_gradient.mean ** 2
                    for lay in result.layers])
        # forward and gradient: 16 x 16 x 16 x 16 = 65536 pixels per statistic
        for lay in result.layers:
            for q in ("preactivation", "activation", "gradient"):
                assert getattr(lay, q).std == pytest.approx(getattr(lay.theory, q + "_std"),
                                                            rel=0.02), (seed, lay.index, q)
    for lay, measured in zip(result.layers, np.mean(dw2, axis=0)):
        assert math.sqrt(measured) == pytest.approx(lay.theory.weight_gradient_std, rel=0.06)


def test_delta_orthogonal_preserves_every_pixels_norm():
    cfg = Config(arch="conv", scheme="delta_orthogonal", channels=6, kernel=3, depth=5, image=5,
                 batch=3, activation="linear", bias="zeros", dtype="float64", gain=1.0)
    draws, dt = DrawCache(), np.dtype("float64")
    w = weight_matrix(cfg, draws, 0, weight_spec(cfg), dt)
    kernel = w.reshape(3, 3, 6, 6)
    np.testing.assert_allclose(kernel[1, 1].T @ kernel[1, 1], np.eye(6), atol=1e-12)
    kernel[1, 1] = 0
    assert not kernel.any()  # zero but at the centre tap
    x = np.asarray(input_batch(cfg, draws, dt, features=5 * 5 * 6)).reshape(3, 5, 5, 6)
    h = x
    for i in range(cfg.depth):
        h = direct_conv(h, weight_matrix(cfg, draws, i, weight_spec(cfg), dt), 3, 1, 1)
    np.testing.assert_allclose(np.linalg.norm(h, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-12)
    result = Simulator().run(cfg)
    assert result.layers[-1].activation.std == pytest.approx(float(x.std()), rel=0.02)
    jax = pytest.importorskip("jax")
    theirs = np.array(jax.nn.initializers.delta_orthogonal()(jax.random.PRNGKey(0),
                                                                (3, 3, 6, 6)))
    np.testing.assert_allclose(theirs[1, 1].T @ theirs[1, 1], np.eye(6), atol=1e-5)
    theirs[1, 1] = 0
    assert not theirs.any()  # JAX's has the same structure, HWIO as ours


def test_delta_orthogonal_is_the_orthogonal_dense_stack_at_every_pixel():
    # the same (128, 128) orthogonal draws; 8 x 12 x 12 pixels against 1152 samples
    conv = Simulator().run(Config(arch="conv", scheme="delta_orthogonal", channels=128,
                                  image=12, batch=8, activation="relu", depth=4, bias="zeros"))
    dense = Simulator().run(Config(scheme="orthogonal", width=(128,), inputs=128, batch=1152,
                                   activation="relu", depth=4, bias="zeros"))
    for a, b in zip(conv.layers, dense.layers):
        for q in ("preactivation", "activation", "gradient"):
            assert getattr(a, q).std == pytest.approx(getattr(b, q).std, rel=0.03), (a.index, q)
            assert getattr(a.theory, q + "_std") == pytest.approx(getattr(b.theory, q + "_std"),
                                                                  rel=1e-12)


def test_the_recursion_follows_norms_without_borders():
    # valid padding: every pixel sums a whole window, so only the 1/width terms remain
    for changes in (dict(norm="batch"),
                    dict(norm="layer", norm_at="after"), dict(norm="nf")):
        base = dict(arch="conv", depth=4, channels=128, image=12, batch=8, padding=0,
                    activation="relu", scheme="he_normal", bias="zeros")
        cfg = Config(**{**base, **changes})
        for lay in Simulator().run(cfg).layers:
            for q in ("preactivation", "activation", "gradient"):
                assert getattr(lay, q).std == pytest.approx(getattr(lay.theory, q + "_std"),
                                                            rel=0.05), (changes, lay.index, q)
