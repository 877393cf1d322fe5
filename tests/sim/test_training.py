"""Training: the symmetry the notes derive, learning, and the gradients themselves."""

import numpy as np
import pytest

from initscope.presets import PRESETS_BY_NAME
from initscope.sim import Config, ConfigError
from initscope.sim.training import Trainer, distinct_units

SMALL = Config(depth=4, width=(64,), inputs=16, batch=128, scheme="xavier_normal")


def toy(**changes) -> Trainer:
    cfg = PRESETS_BY_NAME["toy"].apply(Config()).replace(dtype="float64", **changes)
    assert cfg.task == "output" and cfg.lr == 0.1
    return Trainer(cfg)


def test_toy_network_keeps_the_equalities_of_the_notes():
    # w1..w4 in the first layer (y1 = w1 x1 + w3 x2, y2 = w2 x1 + w4 x2), w5..w8 in the
    # second (y3 = w5 y1 + w7 y2, y4 = w6 y1 + w8 y2), w9, w10 in the output
    t = toy()
    for _ in range(10):
        t.step()
        (w1, w2), (w3, w4) = t.weights[0]
        (w5, w6), (w7, w8) = t.weights[1]
        (w9,), (w10,) = t.weights[2]
        assert w1 == pytest.approx(w2, rel=1e-12) and w3 == pytest.approx(w4, rel=1e-12)
        assert w5 == pytest.approx(w6, rel=1e-12) == pytest.approx(w7, rel=1e-12)
        assert w7 == pytest.approx(w8, rel=1e-12)
        assert w9 == pytest.approx(w10, rel=1e-12)
    # the first layer may differ across inputs: w1 != w3 once the updates begin
    assert abs(t.weights[0][0, 0] - t.weights[0][1, 0]) > 1e-6
    assert t.weights[2][0, 0] != 0.5  # and the weights did move


def test_toy_network_with_zero_weights_never_moves():
    t = toy(scheme="zeros")
    records = t.run(10)
    for w in t.weights:
        assert not w.any()
    assert all(lay.weight_change == 0 for r in records for lay in r.layers)


@pytest.mark.parametrize("task", ["teacher", "spiral"])
def test_constant_init_keeps_one_unit_per_layer(task):
    cfg = SMALL.replace(scheme="constant", value=0.01, bias="zeros")
    t = Trainer(cfg.replace(task=task, lr=0.01))
    records = t.run(100)
    assert records[-1].loss < records[0].loss  # it trains, as one unit per layer
    for record in records:
        assert [lay.distinct_units for lay in record.layers] == [1] * cfg.depth
    # the first layer's weights differ across inputs, never across units (up to float32
    # rounding, which differs between matmul output columns)
    first = t.weights[0]
    assert np.ptp(first[:, 0]) > 1e-3 * np.abs(first).max()
    assert np.abs(first - first[:, :1]).max() <= 1e-5 * np.abs(first).max()


def test_random_init_keeps_every_unit_distinct():
    t = Trainer(SMALL.replace(lr=0.05))
    for record in t.run(30):
        assert [lay.distinct_units for lay in record.layers] == [64] * SMALL.depth


@pytest.mark.parametrize("task", ["teacher", "spiral"])
@pytest.mark.parametrize("scheme,activation,lr", [("lecun_normal", "tanh", 0.1),
                                                  ("he_normal", "relu", 0.005)])
def test_well_initialized_nets_learn_and_collapsed_ones_do_not(task, scheme, activation, lr):
    shape = dict(depth=10, width=(100,), inputs=50, batch=256)
    train = dict(task=task, lr=lr)
    good = Trainer(Config(scheme=scheme, activation=activation, **shape, **train)).run(150)
    collapsed = Trainer(Config(scheme="normal", std=0.01, **shape, **train)).run(150)
    good_drop = good[0].loss - good[-1].loss
    collapsed_drop = collapsed[0].loss - collapsed[-1].loss
    assert good[-1].loss < 0.95 * good[0].loss
    assert collapsed_drop < 0.05 * good_drop


@pytest.mark.parametrize("task", ["teacher", "spiral", "output"])
def test_gradients_match_finite_differences(task):
    cfg = Config(depth=2, width=(5,), inputs=3, batch=7, scheme="xavier_normal",
                 activation="tanh", bias="normal", bias_value=0.2, dtype="float64", task=task)
    t = Trainer(cfg)
    _, gw, gb, _, _ = t.gradients(t.x, t.y)
    eps = 1e-6
    for params, grads in [(t.weights, gw), (t.biases, gb)]:
        for p, g in zip(params, grads):
            for idx in np.ndindex(p.shape):
                keep = p[idx]
                p[idx] = keep + eps
                up = t.gradients(t.x, t.y)[0]
                p[idx] = keep - eps
                down = t.gradients(t.x, t.y)[0]
                p[idx] = keep
                assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_training_is_deterministic_and_starts_from_the_report_weights():
    from initscope.sim import Simulator
    cfg = SMALL.replace(batch_size=32, momentum=0.9)
    a = [r.to_dict() for r in Trainer(cfg).run(5)]
    b = [r.to_dict() for r in Trainer(cfg).run(5)]
    assert a == b
    sim = Simulator()
    report = sim.run(SMALL)
    t = Trainer(SMALL, draws=sim.draws)
    again = sim.run_weights(SMALL, t.weights, t.biases)
    for x, y in zip(report.layers, again.layers):
        assert x.activation.std == pytest.approx(y.activation.std, rel=1e-6)


def test_distinct_units_counts_groups():
    w = np.array([[1.0, 1.0, 2.0, 1.0], [3.0, 3.0, 0.5, 3.0]])
    b = np.array([0.0, 0.0, 0.0, 1e-3])
    assert distinct_units(w, b, 1e-9) == 3
    assert distinct_units(np.zeros((3, 4)), np.zeros(4), 1e-9) == 1


def test_bad_training_settings_are_refused():
    for bad in [dict(lr=0), dict(task="mnist"), dict(momentum=1.0), dict(batch_size=-1)]:
        with pytest.raises(ConfigError):
            Trainer(SMALL.replace(**bad))
    with pytest.raises(ConfigError):
        Trainer(SMALL).run(0)
