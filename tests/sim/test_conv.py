"""The convolution stack: im2col against a direct loop, its backward against central
differences, the fans against PyTorch's formula, the recursion position by position."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator, validate
from initscope.sim.arch.conv import col2im, im2col, padding_of, sizes, weight_spec
from initscope.sim.draws import DrawCache
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
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


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (5, 1, 0), (1, 1, 0), (4, 3, 2)])
def test_im2col_matmul_is_the_convolution(k, s, p):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 9, 9, 3)), rng.normal(size=(3 * k * k, 4))
    m = (9 + 2 * p - k) // s + 1
    got = (im2col(x, k, s, p) @ w).reshape(2, m, m, 4)
    np.testing.assert_allclose(got, direct_conv(x, w, k, s, p), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (4, 3, 2)])
def test_col2im_is_the_adjoint_of_im2col(k, s, p):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 8, 3))
    cols = im2col(x, k, s, p)
    y = rng.normal(size=cols.shape)
    assert np.sum(cols * y) == pytest.approx(np.sum(x * col2im(y, x.shape, k, s, p)), rel=1e-12)


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


def _network(cfg: Config, draws: DrawCache, raw=None):
    """The stack written with direct loops: every layer's output."""
    dt, k, s, p = np.dtype("float64"), cfg.kernel, cfg.stride, padding_of(cfg)
    n, c = cfg.image, cfg.channels
    h = np.asarray(input_batch(cfg, draws, dt, features=n * n * c)).reshape(cfg.batch, n, n, c)
    outs = []
    for i in range(cfg.depth):
        w = weight_matrix(cfg, draws, i, weight_spec(cfg), dt) if raw is None or raw[0] != i \
            else raw[1]
        b = bias_vector(cfg, draws, i, bias_spec(cfg, c * k * k), c, dt)
        h = np.tanh(direct_conv(h, w, k, s, p) + b)
        outs.append(h)
    return outs


@pytest.mark.parametrize("s,p", [(1, -1), (2, 1)])
def test_the_runners_gradients_are_central_differences(s, p):
    cfg = Config(arch="conv", depth=2, channels=2, image=5, kernel=3, stride=s, padding=p,
                 batch=2, activation="tanh", scheme="xavier_normal", bias="normal",
                 bias_value=0.1, dtype="float64")
    result = Simulator().run(cfg)
    draws, dt = DrawCache(), np.dtype("float64")
    side = sizes(cfg)
    up = np.asarray(upstream_gradient(cfg, draws, dt, side[-1] ** 2 * 2)).reshape(
        2, side[-1], side[-1], 2)
    outs = _network(cfg, draws)
    for lay, out in zip(result.layers, outs):
        assert lay.activation.std == pytest.approx(out.std(), rel=1e-12)
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
    with pytest.raises(ConfigError, match="norm is for the plain and residual"):
        validate(Config(arch="conv", norm="batch"))


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
