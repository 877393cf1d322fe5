"""The forward and backward passes: against the notes, a reference, and calculus."""

import json
import math
import subprocess
import sys
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

from initscope.sim import Cancelled, Config, ConfigError, MemoryBudgetError, Simulator
from initscope.sim.result import COMPLETE, FORWARD
from tests.sim import reference as ref

SMALL = dict(depth=3, width=(7,), inputs=5, batch=6, dtype="float64", bias="normal",
             bias_value=0.3)


def run(**opts):
    return Simulator().run(Config(**opts))


def test_course_demo_layer_stds():
    # cs231n: 1000 x 500 unit Gaussians, 10 tanh layers of 500, W = 0.01 randn
    result = run()
    stds = [lay.activation.std for lay in result.layers[:5]]
    for got, notes in zip(stds, [0.213, 0.0476, 0.0106, 0.00238, 0.00053]):
        assert got == pytest.approx(notes, rel=0.03)


def test_he_relu_keeps_std():
    result = run(scheme="he_normal", activation="relu")
    for lay in result.layers:
        assert 0.70 < lay.activation.std < 0.95


def test_statistics_are_exact_against_the_reference():
    cfg = Config(**{**SMALL, "batch": 300, "width": (40,), "activation": "tanh",
                    "scheme": "xavier_normal"})
    sim = Simulator()
    result = sim.run(cfg)
    ws, bs = ref.weights_of(sim, cfg)
    x, g = ref.inputs_of(sim, cfg)
    zs, hs = ref.forward(cfg, x, ws, bs)
    grads, wgrads = ref.backward(cfg, x, ws, bs, g)
    hists = {q: result.histograms(q) for q in
             ("preactivation", "activation", "gradient", "weight_gradient")}
    for i, (lay, z, h, dh, dw) in enumerate(zip(result.layers, zs, hs, grads, wgrads)):
        for q, summary, tensor in [("preactivation", lay.preactivation, z),
                                   ("activation", lay.activation, h),
                                   ("gradient", lay.gradient, dh),
                                   ("weight_gradient", lay.weight_gradient, dw)]:
            assert summary.mean == pytest.approx(tensor.mean(), rel=1e-9, abs=1e-12)
            assert summary.std == pytest.approx(tensor.std(), rel=1e-9)
            assert summary.min == pytest.approx(tensor.min(), rel=1e-12)
            assert summary.max == pytest.approx(tensor.max(), rel=1e-12)
            assert sum(hists[q][i].counts) == tensor.size  # small tensors are binned whole


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "sigmoid", "elu", "selu",
                                        "gelu", "silu", "softplus", "linear"])
def test_backward_matches_finite_differences(activation):
    cfg = Config(**SMALL, activation=activation, scheme="lecun_normal", gain=1.5)
    sim = Simulator()
    result = sim.run(cfg)
    ws, bs = ref.weights_of(sim, cfg)
    x, g = ref.inputs_of(sim, cfg)
    eps = 1e-6
    for i, lay in enumerate(result.layers):
        numeric = np.zeros_like(ws[i])
        for idx in np.ndindex(ws[i].shape):
            up = [w.copy() for w in ws]
            dn = [w.copy() for w in ws]
            up[i][idx] += eps
            dn[i][idx] -= eps
            numeric[idx] = (ref.loss(cfg, x, up, bs, g) - ref.loss(cfg, x, dn, bs, g)) / (2 * eps)
        s = lay.weight_gradient
        scale = np.abs(numeric).max()
        assert abs(s.mean - numeric.mean()) < 1e-6 * scale
        assert abs(s.std - numeric.std()) < 1e-6 * scale
        assert abs(s.min - numeric.min()) < 1e-6 * scale
        assert abs(s.max - numeric.max()) < 1e-6 * scale
        # gradient w.r.t. this layer's activations: perturb them and run the rest
        _, hs = ref.forward(cfg, x, ws, bs)
        num_h = np.zeros_like(hs[i])
        for idx in np.ndindex(hs[i].shape):
            up, dn = hs[i].copy(), hs[i].copy()
            up[idx] += eps
            dn[idx] -= eps
            f = [(ref.forward(cfg, x, ws, bs, start=i + 1, h=v)[1] or [v])[-1] for v in (up, dn)]
            num_h[idx] = (np.sum(f[0] * g) - np.sum(f[1] * g)) / (2 * eps)
        assert lay.gradient.std == pytest.approx(num_h.std(), rel=1e-6)
        assert lay.gradient.mean == pytest.approx(num_h.mean(), rel=1e-5, abs=1e-9)


def test_constant_init_makes_identical_units():
    result = run(scheme="constant", value=0.01, bias="zeros", depth=4, width=(50,), batch=64)
    assert all(lay.identical_units for lay in result.layers)
    # below the top, every unit also receives the same gradient
    assert all(lay.identical_gradients for lay in result.layers[:-1])
    assert any("identical" in w for w in result.warnings)
    random = run(scheme="xavier_normal", depth=4, width=(50,), batch=64)
    assert not any(lay.identical_units or lay.identical_gradients for lay in random.layers)


def test_zero_init_gives_zero_gradients_below_the_top():
    result = run(scheme="zeros", bias="zeros", depth=4, width=(20,), batch=16)
    for lay in result.layers:
        assert lay.activation.std == 0 and lay.activation.max == 0
    # every weight gradient is zero (the activations below are 0), and so is every
    # activation gradient below the top (the weights above are 0)
    for lay in result.layers:
        assert lay.weight_gradient.max == 0 and lay.weight_gradient.min == 0
    for lay in result.layers[:-1]:
        assert lay.gradient.std == 0


def test_overflow_is_reported_without_warnings_or_exceptions():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(scheme="normal", std=1.0, activation="relu", depth=50)
    k = result.overflow_layer
    assert k is not None and result.overflow_pass == "forward"
    assert f"overflow from layer {k}" in result.warnings
    for lay in result.layers[: k - 1]:
        assert math.isfinite(lay.activation.std)
    assert result.layers[k - 1].activation.finite_fraction < 1
    assert all(lay.activation is None for lay in result.layers[k:])
    json.dumps(result.to_dict(), allow_nan=False)  # the JSON stays valid


def test_float64_overflows_later_than_float32():
    r32 = run(scheme="normal", std=1.0, activation="relu", depth=600, width=(100,), batch=50)
    r64 = run(scheme="normal", std=1.0, activation="relu", depth=600, width=(100,), batch=50,
              dtype="float64")
    assert r32.overflow_layer < r64.overflow_layer


def test_memory_refusal_allocates_nothing():
    cfg = Config(width=(8192,), depth=1000, batch=65536)
    tracemalloc.start()
    with pytest.raises(MemoryBudgetError, match=r"needs .* GiB, over the memory budget"):
        Simulator().run(cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1024 ** 2


def test_memory_limit_is_configurable():
    cfg = Config(width=(1000,), depth=20, batch=1000, memory_limit=0.01)
    with pytest.raises(MemoryBudgetError, match="memory budget of 10.2 MiB"):
        Simulator().run(cfg)


def test_bad_configs_are_refused():
    for bad in [dict(depth=0), dict(depth=1001), dict(width=(0,)), dict(batch=70000),
                dict(scheme="nope"), dict(std=-1.0), dict(width=(3, 4), depth=3),
                dict(activation="swish"), dict(slope=2.0), dict(gain=float("nan"))]:
        with pytest.raises(ConfigError):
            Simulator().run(Config(**bad))


def test_cancel_stops_a_run():
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        Simulator().run(Config(), cancel=event)


def test_forward_results_arrive_before_the_backward_pass():
    event = threading.Event()
    seen = []

    def on_forward(result):
        seen.append((result.phase, result.layers[0].gradient, result.layers[-1].activation))
        event.set()  # cancel: the backward pass must not run

    with pytest.raises(Cancelled):
        Simulator().run(Config(), cancel=event, on_forward=on_forward)
    assert seen[0][0] == FORWARD and seen[0][1] is None and seen[0][2] is not None


def test_same_config_same_numbers():
    sim = Simulator()
    a = sim.run(Config(scheme="orthogonal", activation="relu")).to_dict()
    sim.run(Config(seed=5))
    b = sim.run(Config(scheme="orthogonal", activation="relu")).to_dict()
    c = Simulator().run(Config(scheme="orthogonal", activation="relu")).to_dict()
    assert a == b == c


def test_report_json_identical_across_processes():
    cmd = [sys.executable, "-m", "initscope", "report", "--format", "json", "--depth", "3",
           "--scheme", "xavier_uniform", "--width", "64", "--batch", "100"]
    outs = {subprocess.run(cmd, capture_output=True, check=True).stdout for _ in range(2)}
    assert len(outs) == 1


def test_width_list_and_uniform_inputs():
    result = run(depth=3, width=(64, 32, 16), inputs=10, input_dist="uniform",
                 scheme="lecun_normal")
    assert [(lay.fan_in, lay.fan_out) for lay in result.layers] == [(10, 64), (64, 32), (32, 16)]
    assert result.phase == COMPLETE


def test_dead_relu_units_are_counted():
    # a large negative bias kills most ReLU units
    result = run(activation="relu", scheme="he_normal", bias="constant", bias_value=-6.0,
                 depth=2, width=(200,), batch=100)
    dead = result.layers[0].dead_fraction
    assert dead > 0.5
    assert any("units dead in layer" in w for w in result.warnings)


def test_saturation_is_counted():
    result = run(scheme="normal", std=1.0, depth=3)
    # with N(0, 1) weights, tanh(z) has |z| ~ 22: nearly all outputs sit at +-1
    assert result.layers[1].saturated_fraction > 0.9
    assert any("saturated" in w for w in result.warnings)


def test_histograms_share_a_range_by_default():
    result = run(depth=4)
    shared = result.histograms("activation")
    assert len({(h.edges[0], h.edges[-1]) for h in shared}) == 1
    per_layer = result.histograms("activation", bins=12, shared=False)
    assert len({h.edges[-1] for h in per_layer}) == 4
    for lay, h in zip(result.layers, per_layer):
        assert h.edges[0] == lay.activation.min
        assert len(h.counts) == 12 and sum(h.counts) > 0


def test_binning_is_a_display_setting_not_part_of_the_config():
    # re-binning reads the kept samples: no new run, and the config has no bins
    from initscope.sim.config import Config as Cfg

    assert not {"bins", "hist_range"} & set(Cfg.__dataclass_fields__)
    result = run(depth=3)
    for bins in (2, 30, 200):
        hists = result.histograms("gradient", bins=bins)
        assert all(len(h.counts) == bins for h in hists)
        assert all(sum(h.counts) == len(lay.gradient.sample)
                   for h, lay in zip(hists, result.layers))


def test_std_of_is_exact():
    from initscope.sim.stats import std_of
    rng = np.random.default_rng(1)
    for x in [rng.standard_normal((300, 700)).astype(np.float32) * 0.01 + 0.5,
              rng.standard_normal(10).astype(np.float64), np.full((4, 4), 3.0)]:
        assert std_of(x) == pytest.approx(float(np.std(x.astype(np.float64))), rel=1e-5,
                                          abs=1e-12)
