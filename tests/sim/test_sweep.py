"""Width and depth sweeps: the coordinate check's slopes against Tensor Programs IV/V,
the backward pass against central differences, the parametrizations' rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim import Config, ConfigError, MemoryBudgetError
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.draws import DrawCache
from initscope.sim.layers import weight_matrix
from initscope.sim.sweep import (
    SweepSpec,
    _backward,
    _forward,
    _residual_backward,
    _residual_forward,
    layer_rules,
    residual_rules,
    sweep,
    task,
)

BASE = Config(scheme="he_normal", activation="relu", depth=4, batch=128, inputs=32,
              optimizer="adam", lr=0.01)
WIDTHS = (128, 256, 512, 1024)


def _slopes(param: str, steps: int, cfg: Config = BASE) -> np.ndarray:
    (result,) = sweep(cfg, SweepSpec(widths=WIDTHS, steps=steps, seeds=3, param=param))
    return result.slopes()


@pytest.mark.parametrize("param", ["sp", "ntk", "mup"])
def test_at_initialization_hidden_activations_do_not_scale_with_width(param):
    slopes = _slopes(param, 0)
    assert np.all(np.abs(slopes[0, :-1]) < 0.1), slopes


def test_the_outputs_at_initialization_sp_readout_flat_mup_readout_shrinking():
    # sp's He readout, Var 2 / width, is Xavier's 2 / (width + 16) but for 16 / width:
    # the output is O(1) (an all-Xavier stack would shrink at its input layer instead,
    # whose fan_avg grows with width)
    sp = _slopes("sp", 0)
    assert abs(sp[0, -1]) < 0.1
    # MuReadout: (1/r) h W with Var(W) that of the base width: std ~ r^(-1/2)
    mup = _slopes("mup", 0)
    assert mup[0, -1] == pytest.approx(-0.5, abs=0.1)


def test_one_adam_step_blows_sp_up_with_width_and_leaves_mup_flat():
    # Adam moves every entry by ~lr: a unit's input changes by ~lr sum_i |h_i|, linear
    # in width, so after one step sp's slopes are well above 0 (towards 1 a layer, and
    # compounding down the stack); muP's hidden rate lr base / width cancels it
    sp = _slopes("sp", 1)
    assert sp[1, 1] > 0.3 and sp[1, -1] > 1.0
    assert np.all(np.diff(sp[1, :-1]) > 0)  # each layer adds its own growth
    mup = _slopes("mup", 1)
    assert np.all(np.abs(mup[1]) < 0.15), mup[1]


def test_mup_is_sp_at_the_base_width():
    for opt in ("adam", "sgd"):
        cfg = BASE.replace(optimizer=opt)
        sp, mup = layer_rules(cfg, "sp", 64, 64), layer_rules(cfg, "mup", 64, 64)
        assert [r.spec for r in sp] == [r.spec for r in mup]
        assert all(r.multiplier == 1 and r.lr_factor == 1 for r in mup)


def test_mup_rules_at_four_times_the_base_width():
    # Tensor Programs V, Table 3, as microsoft/mup implements it (r = width / base)
    adam = layer_rules(BASE, "mup", 256, 64)
    sp_base = layer_rules(BASE, "sp", 64, 64)
    assert adam[0].spec.std == pytest.approx(sp_base[0].spec.std)  # input: unchanged
    assert adam[1].spec.std == pytest.approx(math.sqrt(2 / 64) / 2)  # hidden: Var / r
    assert adam[1].lr_factor == pytest.approx(1 / 4) and adam[0].lr_factor == 1
    assert all(r.bias_lr_factor == 1 for r in adam)  # biases are vector-like
    assert adam[-1].multiplier == pytest.approx(1 / 4) and adam[-1].lr_factor == 1
    assert adam[-1].spec.std == pytest.approx(sp_base[-1].spec.std)  # readout: base's init
    sgd = layer_rules(BASE.replace(optimizer="sgd"), "mup", 256, 64)
    assert [r.lr_factor for r in sgd] == [4, 1, 1, 1, 4]
    assert all(r.bias_lr_factor == 4 for r in sgd)
    ntk = layer_rules(BASE, "ntk", 256, 64)
    assert ntk[1].spec.std == 1 and ntk[1].multiplier == pytest.approx(1 / 16)


def _central(f, w: np.ndarray, entries, h: float = 1e-6) -> list[float]:
    out = []
    for idx in entries:
        old = w[idx]
        w[idx] = old + h
        up = f()
        w[idx] = old - h
        down = f()
        w[idx] = old
        out.append((up - down) / (2 * h))
    return out


def _check_sampled_gradients(loss, grads: dict, weights: list, rng, per: int) -> None:
    """`per` random entries of every weight and bias against central differences."""
    for w, b in weights:
        for param_array in (w, b):
            entries = [np.unravel_index(i, param_array.shape)
                       for i in rng.choice(param_array.size, per, replace=False)]
            expected = _central(loss, param_array, entries)
            got = [grads[id(param_array)][e] for e in entries]
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("param", ["sp", "ntk", "mup"])
def test_the_backward_pass_is_the_derivative_of_the_loss(param):
    cfg = BASE.replace(dtype="float64", batch=6, inputs=5, depth=3, activation="tanh")
    draws, dt = DrawCache(), np.dtype("float64")
    rules = layer_rules(cfg, param, 7, 4)
    x, y = task(cfg, draws)
    rng = np.random.default_rng(0)
    weights = [[weight_matrix(cfg, draws, i, r.spec, dt), rng.normal(size=r.spec.fan_out)]
               for i, r in enumerate(rules)]
    act = ACTIVATIONS["tanh"]

    def loss() -> float:
        out = _forward(x, weights, rules, act, 0.01)[1][-1]
        return 0.5 * float(np.sum((out - y) ** 2)) / x.shape[0]

    zs, outs = _forward(x, weights, rules, act, 0.01)
    grads = _backward(x, weights, rules, act, 0.01, zs, outs, (outs[-1] - y) / x.shape[0])
    _check_sampled_gradients(loss, grads, weights, rng, 4)


def test_the_residual_backward_pass_is_the_derivative_of_the_loss():
    cfg = BASE.replace(dtype="float64", batch=5, inputs=4, activation="tanh")
    draws, dt = DrawCache(), np.dtype("float64")
    rules = residual_rules(cfg, 3, 6, depth_mup=True)
    x, y = task(cfg, draws)
    rng = np.random.default_rng(1)
    weights = [[weight_matrix(cfg, draws, i, r.spec, dt), rng.normal(size=r.spec.fan_out)]
               for i, r in enumerate(rules)]
    act, scale = ACTIVATIONS["tanh"], 1 / math.sqrt(3)

    def loss() -> float:
        out = _residual_forward(x, weights, rules, act, 0.01, scale)[1][-1]
        return 0.5 * float(np.sum((out - y) ** 2)) / x.shape[0]

    zs, outs = _residual_forward(x, weights, rules, act, 0.01, scale)
    grads = _residual_backward(x, weights, rules, act, 0.01, zs, outs,
                               (outs[-1] - y) / x.shape[0], scale)
    _check_sampled_gradients(loss, grads, weights, rng, 3)


def test_a_depth_sweep_standard_blocks_grow_depth_mup_blocks_hold():
    cfg = BASE.replace(width=(64,), batch=64)
    standard, scaled = sweep(cfg, SweepSpec(depths=(2, 4, 8, 16, 32, 64), steps=1, seeds=2))
    assert (standard.branch, scaled.branch) == ("1", "1/sqrt(L)")
    grown = standard.mean_l1()[:, 0, 0]  # the stream at init: He blocks double its variance
    assert np.all(np.diff(np.log(grown)) > 0) and grown[-1] / grown[0] > 1e6
    for step in (0, 1):
        held = scaled.mean_l1()[:, step, 0]
        assert held.max() / held.min() < 2, (step, held)


def test_sweeps_that_cannot_run_are_refused_in_one_line():
    for cfg, spec, words in [
        (BASE.replace(arch="residual"), SweepSpec(), "a sweep trains a plain stack"),
        (BASE, SweepSpec(widths=(128,)), "at least two different widths"),
        (BASE, SweepSpec(steps=99), "steps must be between 0 and 20"),
        (BASE.replace(scheme="lsuv"), SweepSpec(), "has no rule for every width"),
        (BASE, SweepSpec(depths=(2, 4), param="mup"), "leave param at sp"),
    ]:
        with pytest.raises(ConfigError, match=words):
            sweep(cfg, spec)
    with pytest.raises(MemoryBudgetError, match="over the memory budget"):
        sweep(BASE.replace(batch=65536), SweepSpec(widths=(4096, 8192)))


def test_a_sweep_that_diverges_fits_its_finite_points_and_names_the_rest():
    # plain SGD at lr 0.01 on He residual blocks: the deep stacks blow up after a step
    cfg = BASE.replace(width=(64,), batch=64, optimizer="sgd")
    standard, _ = sweep(cfg, SweepSpec(depths=(2, 4, 16, 64), steps=2, seeds=1))
    l1 = standard.mean_l1()
    assert standard.diverged() and not np.all(np.isfinite(l1))
    slopes = standard.slopes()
    assert np.isfinite(slopes[0]).all()  # the init is finite everywhere
    for t, layer in np.ndindex(slopes.shape):
        finite = np.isfinite(l1[:, t, layer]).sum()
        assert np.isfinite(slopes[t, layer]) == (finite >= 2)
    assert standard.to_dict()["diverged"] == standard.diverged()
