"""LSUV and the data-dependent init of Krahenbuhl et al., on the core's own batch."""

import math

import numpy as np
import pytest

from initscope.sim import Config, Simulator
from initscope.sim.datainit import LSUV_TOL, data_dependent, gradient_ratios, lsuv
from initscope.sim.draws import DrawCache

SHAPE = dict(depth=6, width=(128,), inputs=64, batch=512)


@pytest.mark.parametrize("activation", ["tanh", "relu", "selu"])
def test_lsuv_brings_every_layer_to_unit_variance(activation):
    cfg = Config(scheme="lsuv", activation=activation, **SHAPE)
    draws = DrawCache()
    tuned = lsuv(cfg, draws)
    result = Simulator().run(cfg)
    for lay in result.layers:
        assert abs(lay.preactivation.std ** 2 - 1) < LSUV_TOL
    # the trace starts at the orthonormal weights and ends with every layer done
    first, last = tuned.trace[0]["std"], tuned.trace[-1]["std"]
    assert any(abs(s * s - 1) >= LSUV_TOL for s in first)
    assert all(abs(s * s - 1) < LSUV_TOL for s in last)
    assert [t["iteration"] for t in tuned.trace] == list(range(cfg.depth + 1))
    # orthonormal start: the layers' weights have orthonormal columns up to a scale
    w = tuned.weights[1]
    gram = w.T.astype(np.float64) @ w
    np.testing.assert_allclose(gram / gram[0, 0], np.eye(128), atol=1e-4)


def test_lsuv_stops_where_asked():
    cfg = Config(scheme="lsuv", activation="relu", init_steps=2, **SHAPE)
    result = Simulator().run(cfg)
    stds = [lay.preactivation.std for lay in result.layers]
    assert all(abs(s * s - 1) < LSUV_TOL for s in stds[:2])
    assert abs(stds[3] ** 2 - 1) > LSUV_TOL  # not reached yet
    assert result.init_trace[-1]["iteration"] == 2 and result.init_iterations == 6


def test_data_dependent_normalizes_units_then_balances_ratios():
    cfg = Config(scheme="data_dependent", activation="relu", **SHAPE)
    draws = DrawCache()
    within = data_dependent(cfg, draws, stop_after=1)
    x = np.asarray(draws.normal(cfg.seed, "input", 0, (cfg.batch, cfg.inputs), np.float32))
    z = x @ within.weights[0] + within.biases[0]
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-3)
    tuned = data_dependent(cfg, draws)
    g = np.asarray(draws.normal(cfg.seed, "upstream", 0, (cfg.batch, 128), np.float32))
    ratios = gradient_ratios(cfg, x, g, tuned.weights, tuned.biases)
    before = tuned.trace[1]["ratio"]
    assert max(before) / min(before) > 2  # unbalanced after the within-layer step
    assert max(ratios) / min(ratios) < 1.05  # balanced after the rounds
    assert ratios == pytest.approx(tuned.trace[-1]["ratio"], rel=1e-4)


def test_data_dependent_on_tanh_balances_too():
    cfg = Config(scheme="data_dependent", activation="tanh", **SHAPE)
    trace = Simulator().run(cfg).init_trace
    ratios = trace[-1]["ratio"]
    assert max(ratios) / min(ratios) < 1.05
    assert len(trace) == 12 and all(math.isfinite(s) for s in trace[-1]["std"])


def test_report_json_has_the_trace(capsys):
    import json

    from initscope.cli import main

    main(["report", "--scheme", "lsuv", "--depth", "3", "--width", "16", "--inputs", "8",
          "--batch", "64", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    trace = data["init_trace"]
    assert [t["iteration"] for t in trace] == [0, 1, 2, 3]
    assert all(len(t["std"]) == 3 for t in trace)
    assert data["theory_note"].startswith("no prediction")


@pytest.mark.parametrize("tune", [lsuv, data_dependent], ids=["lsuv", "data_dependent"])
def test_stepping_through_the_iterations_replays_without_rerunning(tune, monkeypatch):
    from initscope.sim import datainit

    cfg = Config(scheme=tune.__name__, activation="tanh", depth=5, width=(48,), inputs=24,
                 batch=64)
    datainit._REPLAYS.clear()
    calls = []
    real = datainit._output_stds
    monkeypatch.setattr(datainit, "_output_stds", lambda *a: calls.append(1) or real(*a))
    full = tune(cfg, DrawCache())
    traced = len(calls)
    assert traced >= full.iterations  # the procedure, traced, ran once
    for k in [0, 1, 2, full.iterations, -1]:
        stepped = tune(cfg.replace(init_steps=k), DrawCache())
        assert len(calls) == traced  # no forward pass of the procedure again
        datainit._REPLAYS.clear()  # the same stop computed from scratch
        fresh = tune(cfg.replace(init_steps=k), DrawCache())
        for a, b in zip(stepped.weights + stepped.biases, fresh.weights + fresh.biases):
            assert np.array_equal(a, b)
        assert stepped.trace == fresh.trace and stepped.iterations == fresh.iterations
        traced = len(calls)
