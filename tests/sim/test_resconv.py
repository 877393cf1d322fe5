"""Residual conv blocks: the runner against the blocks written out with loops (float64
central differences), the pixel-by-pixel recursion against wide runs, and the
signal propagation plot of Brock, De and Smith (2021) on images."""

from __future__ import annotations

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator, validate
from initscope.sim.arch.blocks import beta
from initscope.sim.arch.resconv import block_specs
from initscope.sim.draws import DrawCache
from initscope.sim.layers import bias_vector, input_batch, upstream_gradient, weight_matrix
from initscope.sim.norm import activation_gamma
from initscope.sim.schemes import bias_spec
from tests.sim.test_conv import _norm, _standardized, direct_conv
from tests.sim.test_norm import central_difference


def _blocks(cfg: Config, draws: DrawCache, raw=None) -> list[np.ndarray]:
    """The stream after every block, written out: x + alpha conv2(tanh(conv1(u) + b1))."""
    dt, c, n, k = np.dtype("float64"), cfg.channels, cfg.image, cfg.kernel
    first, last, alpha = block_specs(cfg)
    layered = cfg.norm in ("batch", "layer", "rms")
    b = bias_spec(cfg, c * k * k)
    x = np.asarray(input_batch(cfg, draws, dt, features=n * n * c)).reshape(cfg.batch, n, n, c)
    outs = []
    for i in range(cfg.depth):
        w1 = weight_matrix(cfg, draws, 2 * i, first[i], dt) if raw is None or raw[0] != i \
            else raw[1]
        w2 = weight_matrix(cfg, draws, 2 * i + 1, last[i], dt)
        if cfg.norm == "nf":
            w1 = _standardized(w1, 1.0)
            w2 = _standardized(w2, activation_gamma(cfg.activation))
        u = x
        if layered and cfg.norm_at == "before":
            u = _norm(cfg.norm, x)
        elif cfg.norm == "nf":
            u = x / beta(cfg, i, alpha)
        z = direct_conv(u, w1, k, 1, k // 2) + bias_vector(cfg, draws, 2 * i, b, c, dt)
        f = direct_conv(np.tanh(z), w2, k, 1, k // 2) + bias_vector(cfg, draws, 2 * i + 1, b,
                                                                     c, dt)
        x = x + alpha * f
        if layered and cfg.norm_at == "after":
            x = _norm(cfg.norm, x)
        outs.append(x)
    return outs


@pytest.mark.parametrize("norm,at", [("none", "before"), ("batch", "before"),
                                     ("layer", "after"), ("rms", "before"), ("nf", "before")])
def test_the_runners_gradients_are_central_differences(norm, at):
    cfg = Config(arch="resconv", depth=2, channels=3, image=4, kernel=3, batch=2,
                 activation="tanh", scheme="xavier_normal", bias="normal", bias_value=0.1,
                 dtype="float64", norm=norm, norm_at=at, nf_alpha=0.5)
    result = Simulator().run(cfg)
    draws, dt = DrawCache(), np.dtype("float64")
    up = np.asarray(upstream_gradient(cfg, draws, dt, 4 * 4 * 3)).reshape(2, 4, 4, 3)
    outs = _blocks(cfg, draws)
    for lay, out, spp in zip(result.layers, outs, result.spp):
        assert lay.activation.std == pytest.approx(out.std(), rel=1e-10)
        means = out.mean(axis=(0, 1, 2))  # per channel, over the images and pixels
        assert spp.squared_mean == pytest.approx(np.mean(means ** 2), rel=1e-9, abs=1e-14)
        assert spp.variance == pytest.approx(np.mean(out.var(axis=(0, 1, 2))), rel=1e-9)
    first = block_specs(cfg)[0]
    for i in range(cfg.depth):
        w = weight_matrix(cfg, draws, 2 * i, first[i], dt)
        dw = central_difference(
            lambda v, i=i: float(np.sum(up * _blocks(cfg, draws, (i, v))[-1])), w.copy())
        assert result.layers[i].weight_gradient.std == pytest.approx(dw.std(), rel=1e-6)


WIDE = dict(arch="resconv", depth=6, channels=128, image=12, batch=4, activation="relu",
            scheme="he_normal", bias="zeros")


@pytest.mark.parametrize("changes", [dict(), dict(norm="batch"),
                                     dict(norm="batch", norm_at="after"), dict(norm="nf"),
                                     dict(norm="layer", norm_at="after"),
                                     dict(branch="zero_last"), dict(activation="tanh",
                                                                    scheme="xavier_normal")])
def test_the_recursion_follows_wide_blocks_pixel_by_pixel(changes):
    # 128 channels: the per-channel means that ReLU leaves average out to a few percent
    result = Simulator().run(Config(**{**WIDE, **changes}))
    assert result.theory_note is None
    for lay in result.layers:
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            measured, predicted = getattr(lay, q).std, getattr(lay.theory, q + "_std")
            assert measured == pytest.approx(predicted, rel=0.1, abs=1e-12), (lay.index, q)


def test_signal_propagation_on_images_follows_brock_de_smith():
    sim = Simulator()
    plain = sim.run(Config(**WIDE))
    bn = sim.run(Config(**WIDE, norm="batch"))
    nf = sim.run(Config(**WIDE, norm="nf", nf_alpha=0.2))
    # without a norm, He blocks double the stream's variance each block (2^k, ReLU)
    growth = [r.variance + r.squared_mean for r in plain.spp]
    assert all(b / a > 1.6 for a, b in zip(growth, growth[1:]))
    # pre-norm batch norm adds a fixed amount per block: linear, not geometric
    bn_var = [r.variance for r in bn.spp]
    steps = np.diff(bn_var)
    assert np.all(steps > 0) and steps.max() / steps.min() < 1.5
    # nf: the stream's channel variance is 1 + k alpha^2, its channel means near 0
    for k, row in enumerate(nf.spp, start=1):
        assert row.variance == pytest.approx(1 + k * 0.04, rel=0.05)
        assert row.squared_mean < 0.02
        assert row.variance == pytest.approx(row.predicted[1], rel=0.05)
    for row in bn.spp:  # the split into channel means and variances is predicted too
        assert row.variance == pytest.approx(row.predicted[1], rel=0.1)


def test_blocks_that_would_change_the_images_size_are_refused():
    for changes in (dict(stride=2), dict(padding=0), dict(kernel=4)):
        with pytest.raises(ConfigError, match="residual blocks keep the image's size"):
            validate(Config(arch="resconv", **changes))
    with pytest.raises(ConfigError, match="lsuv tunes a dense stack"):
        validate(Config(arch="resconv", scheme="lsuv"))
    assert validate(Config(arch="resconv", scheme="delta_orthogonal", norm="batch"))


def test_dirac_blocks_start_each_branch_as_the_identity_on_its_input():
    # F(x) = conv2(relu(conv1 x)) with Dirac kernels is relu(x): x_{k+1} = x_k + relu(x_k)
    cfg = Config(arch="resconv", scheme="dirac", activation="relu", depth=3, channels=4,
                 image=6, batch=2, bias="zeros", dtype="float64")
    x = np.asarray(input_batch(cfg, DrawCache(), np.dtype("float64"), features=6 * 6 * 4))
    for lay in Simulator().run(cfg).layers:
        x = x + np.maximum(x, 0)
        assert lay.activation.std == pytest.approx(float(x.std()), rel=1e-12)


def test_the_memory_estimate_covers_a_resconv_run():
    from initscope.sim.budget import estimate
    from tests.peak import peak_bytes

    for changes in (dict(), dict(norm="batch"), dict(norm="nf"), dict(norm="layer",
                                                                      norm_at="after")):
        cfg = Config(arch="resconv", activation="relu", scheme="he_normal", batch=32, depth=4,
                     **changes)
        peak = peak_bytes(lambda cfg=cfg: Simulator().run(cfg))
        assert peak <= estimate(cfg).total <= 1.7 * peak + 8 * 2**20, changes



def test_dirac_blocks_have_no_gaussian_prediction_and_say_so():
    result = Simulator().run(Config(arch="resconv", scheme="dirac", depth=2, batch=8))
    assert all(lay.theory is None for lay in result.layers)
    assert all(row.predicted is None for row in result.spp)
    assert result.theory_note.startswith("no prediction: Dirac branches")
    delta = Simulator().run(Config(arch="resconv", scheme="delta_orthogonal", depth=2, batch=8))
    assert delta.theory_note.startswith("approximate")


def test_only_the_plain_stack_takes_the_data_dependent_schemes():
    from initscope.tui.widgets.selectors import _schemes_for

    for arch in ("residual", "rnn", "conv", "resconv"):
        with pytest.raises(ConfigError, match="lsuv tunes a dense stack"):
            validate(Config(arch=arch, scheme="lsuv"))
        # stepping through the schemes never lands on one the network refuses
        for name in _schemes_for(Config(arch=arch)):
            validate(Config(arch=arch, scheme=name))
