"""The one builder: every architecture and the trainer take the same inputs, weights
and biases from it, so a setting such as the input distribution reaches them all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, Simulator
from initscope.sim.arch import ARCHS
from initscope.sim.draws import DrawCache
from initscope.sim.layers import dense_parameters, input_batch
from initscope.sim.training import Trainer

UNIFORM_KURTOSIS, NORMAL_KURTOSIS = 1.8, 3.0


def kurtosis(sample: np.ndarray) -> float:
    x = np.asarray(sample, dtype=np.float64)
    x = x - x.mean()
    return float(np.mean(x ** 4) / np.mean(x ** 2) ** 2)


def kurtosis_tolerance(n: int) -> float:
    """Five standard errors of the sample kurtosis of a normal sample of n (sqrt(24/n);
    a uniform sample's is smaller), so the check cannot pass by chance either way."""
    return 5 * math.sqrt(24 / n)


# one input feature and equal weights: row 1's pre-activations are the inputs, scaled,
# so they keep the input distribution's shape (a sum of many inputs would not)
SHAPE = dict(scheme="constant", value=0.5, bias="zeros", inputs=1, width=(1,), batch=20000,
             dtype="float64", depth=2, time_steps=2, branch="zero_last")


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("dist,expected", [("uniform", UNIFORM_KURTOSIS),
                                           ("normal", NORMAL_KURTOSIS)])
def test_input_distribution_reaches_every_architecture(arch, dist, expected):
    cfg = Config(arch=arch, input_dist=dist, **SHAPE)
    if ARCHS[arch].convolutional:  # one 1x1 pixel of one channel: z = 0.5 x, as dense
        cfg = cfg.replace(channels=1, image=1, kernel=1)
    # no input layer: block 1's output is x plus the branch, whose zero last layer (or
    # zero output projections, in a transformer without a norm) adds nothing
    stream = ARCHS[arch].blocks or ARCHS[arch].attends
    if ARCHS[arch].attends:
        cfg = cfg.replace(scheme="zero_out", norm="none", heads=1, tokens=2, batch=10000)
    elif stream:
        cfg = cfg.replace(inputs=1, scheme="he_normal", activation="relu", branch="zero_last")
    if stream:
        sample = Simulator().run(cfg).layers[0].activation.sample
    else:
        sample = Simulator().run(cfg).layers[0].preactivation.sample
    assert kurtosis(sample) == pytest.approx(expected, abs=kurtosis_tolerance(sample.size))
    bound = math.sqrt(3.0) * (0.5 if not stream else 1.0)
    if dist == "uniform":  # U(-sqrt 3, sqrt 3): unit variance, bounded
        assert np.max(np.abs(sample)) <= bound + 1e-12


@pytest.mark.parametrize("dist,expected", [("uniform", UNIFORM_KURTOSIS),
                                           ("normal", NORMAL_KURTOSIS)])
def test_training_runs_on_the_inputs_report_runs_on(dist, expected):
    cfg = Config(depth=3, width=(32,), inputs=16, batch=4000, input_dist=dist, dtype="float64")
    trainer = Trainer(cfg)
    reference = input_batch(cfg, DrawCache(), np.dtype("float64"))
    assert np.array_equal(trainer.x, reference)
    assert kurtosis(trainer.x) == pytest.approx(expected, abs=kurtosis_tolerance(trainer.x.size))


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_training_step_zero_is_the_network_report_shows(arch, dist):
    cfg = Config(arch=arch, depth=4, width=(24,), inputs=12, batch=64, time_steps=4,
                 scheme="he_normal", activation="tanh", bias="normal", bias_value=0.1,
                 input_dist=dist, dtype="float64")
    if not ARCHS[arch].trainable:
        with pytest.raises(ConfigError, match="training covers the plain network"):
            Trainer(cfg)
        return
    sim = Simulator()
    trainer = Trainer(cfg, draws=sim.draws)
    at_step_zero = sim.run_weights(cfg, trainer.weights, trainer.biases)
    reported = Simulator().run(cfg)
    for mine, theirs in zip(at_step_zero.layers, reported.layers):
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            a, b = getattr(mine, q), getattr(theirs, q)
            assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-12)
            assert a.std == pytest.approx(b.std, rel=1e-9)
        assert mine.weight_std == pytest.approx(theirs.weight_std, rel=1e-9)


def test_dense_parameters_follow_the_scheme():
    cfg = Config(depth=3, width=(200,), inputs=300, scheme="xavier_uniform", bias="constant",
                 bias_value=0.25, dtype="float64")
    weights, biases = dense_parameters(cfg, DrawCache(), np.dtype("float64"))
    for (fi, fo), w, b in zip(cfg.fans(), weights, biases):
        bound = math.sqrt(6.0 / (fi + fo))
        assert w.shape == (fi, fo) and np.max(np.abs(w)) <= bound
        # U(-a, a) has std a / sqrt(3); a sample std's relative standard error is
        # sqrt((kurtosis - 1) / (4 n)) = sqrt(0.2 / n) for a uniform: allow five
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3),
                                               rel=5 * math.sqrt(0.2 / w.size))
        assert np.all(b == 0.25)
        w[0, 0] = 1.0  # writable: the trainer updates them in place
