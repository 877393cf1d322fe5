"""Residual blocks, recurrent nets and the Jacobian spectrum."""

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator
from initscope.sim.spectrum import jacobian_spectrum, spread

RES = Config(arch="residual", scheme="he_normal", activation="relu", depth=6, width=(256,),
             batch=1000)
RNN = Config(arch="rnn", width=(128,), inputs=128, batch=64, rnn_input="first")


def test_plain_residual_blocks_grow_as_the_recursion_predicts():
    result = Simulator().run(RES)
    variances = [lay.activation.std ** 2 for lay in result.layers]
    for lay in result.layers:
        assert lay.activation.std == pytest.approx(lay.theory.activation_std, rel=0.1)
    # with He weights and ReLU the branch adds twice the stream's variance: x3 a block
    assert [lay.theory.activation_std ** 2 for lay in result.layers] == \
        pytest.approx([3.0 ** k for k in range(1, 7)])
    ratios = np.array(variances[1:]) / np.array(variances[:-1])
    assert np.all((ratios > 2.5) & (ratios < 3.5))


@pytest.mark.parametrize("branch", ["zero_last", "fixup", "rezero"])
def test_zero_last_fixup_and_rezero_keep_the_input_variance(branch):
    result = Simulator().run(RES.replace(branch=branch))
    first = result.layers[0].activation.std
    for lay in result.layers:
        assert lay.activation.std == pytest.approx(first, rel=1e-6)
        assert lay.theory.activation_std == pytest.approx(1.0)
    assert first == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("branch", ["plain", "zero_last", "fixup", "rezero"])
def test_gradients_reach_the_first_block(branch):
    result = Simulator().run(RES.replace(branch=branch))
    first, top = result.layers[0].gradient.std, result.layers[-1].gradient.std
    assert math.isfinite(first) and first >= top * (1 - 1e-6) > 0
    for lay in result.layers:
        assert lay.gradient.std == pytest.approx(lay.theory.gradient_std, rel=0.1)


def test_residual_overflow_is_reported():
    result = Simulator().run(RES.replace(depth=200, width=(32,), batch=32))  # 3^100 > 3e38
    assert result.overflow_layer is not None
    assert f"overflow from layer {result.overflow_layer}" in result.warnings[0]


def test_linear_rnn_with_orthogonal_weights_keeps_every_norm():
    result = Simulator().run(RNN.replace(scheme="orthogonal", activation="linear"))
    np.testing.assert_allclose(result.hidden_norm, result.hidden_norm[0], rtol=1e-5)
    np.testing.assert_allclose(result.gradient_norm, result.gradient_norm[0], rtol=1e-5)
    xavier = Simulator().run(RNN.replace(scheme="xavier_normal", activation="linear"))
    drift = max(xavier.hidden_norm) / min(xavier.hidden_norm)
    assert drift > 1.05  # a Gaussian W's singular values spread from 0 to 2


def test_tanh_rnn_orthogonal_decays_the_same_way_in_every_draw():
    # Seed 004's Example 3 says the Xavier net's norm "has likely decayed significantly"
    # by T = 50 and the orthogonal one decays much more slowly. What the simulation
    # shows: with orthogonal W only tanh contracts, so the decay is the same draw after
    # draw; with Xavier the norm wanders with the draw, up as often as down.
    sim = Simulator()
    end = {s: [sim.run(RNN.replace(scheme=s, activation="tanh", seed=k)).hidden_norm[-1]
               for k in range(6)] for s in ("orthogonal", "xavier_normal")}
    ortho, xavier = np.array(end["orthogonal"]), np.array(end["xavier_normal"])
    assert ortho.std() / ortho.mean() < 0.01
    assert xavier.std() / xavier.mean() > 0.1
    start = sim.run(RNN.replace(scheme="orthogonal", activation="tanh")).hidden_norm[0]
    assert ortho.mean() < start  # tanh does contract


def test_rnn_inputs_at_every_step_and_theory():
    result = Simulator().run(RNN.replace(scheme="xavier_normal", rnn_input="all",
                                         activation="tanh", width=(500,), inputs=500))
    for lay in result.layers[:10]:
        assert lay.preactivation.std == pytest.approx(lay.theory.preactivation_std, rel=0.05)
    assert result.to_dict()["steps"][0].keys() == {"step", "hidden_norm", "gradient_norm"}


def test_linear_orthogonal_jacobian_is_an_isometry():
    spectrum = jacobian_spectrum(Config(scheme="orthogonal", activation="linear", depth=6,
                                        width=(100,), inputs=100))
    np.testing.assert_allclose(spectrum.flat, 1.0, rtol=1e-6)


def test_tanh_orthogonal_concentrates_the_spectrum_and_relu_cannot():
    shape = dict(depth=10, width=(200,), inputs=200)
    tanh_orth = spread(jacobian_spectrum(Config(scheme="orthogonal", activation="tanh", **shape)))
    tanh_gauss = spread(jacobian_spectrum(Config(scheme="lecun_normal", activation="tanh",
                                                 **shape)))
    relu_orth = spread(jacobian_spectrum(Config(scheme="orthogonal", gain=math.sqrt(2),
                                                activation="relu", **shape)))
    assert tanh_orth < 0.7 * tanh_gauss
    assert relu_orth > 0.8  # orthogonal weights do not help ReLU


def test_spectrum_refuses_wide_networks():
    with pytest.raises(ConfigError, match="up to 1000"):
        jacobian_spectrum(Config(width=(1200,)))
    with pytest.raises(ConfigError):
        jacobian_spectrum(Config(arch="residual"))
    with pytest.raises(ConfigError):
        Simulator().run(Config(arch="rnn", scheme="lsuv"))
