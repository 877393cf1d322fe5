"""Mean-field theory against REFERENCE.md's numbers, closed forms and sampling."""

import math

import numpy as np
import pytest

from initscope.sim import Cancelled, Config, Simulator
from initscope.sim import meanfield as mf
from initscope.sim.activations import ACTIVATIONS

TANH, RELU = ACTIVATIONS["tanh"], ACTIVATIONS["relu"]


@pytest.mark.parametrize("sb2,expected", [(0.0, 1.00), (0.01, 1.424), (0.05, 1.761),
                                          (0.1, 1.986), (0.3, 2.505)])
def test_tanh_critical_line(sb2, expected):
    assert mf.critical_sigma_w2(TANH, sb2) == pytest.approx(expected, rel=0.01)
    # and chi_1 is 1 there, below it ordered, above it chaotic
    w = mf.critical_sigma_w2(TANH, sb2)
    assert mf.chi_1(TANH, w, sb2) == pytest.approx(1.0, abs=1e-6)
    assert mf.phase_point(TANH, 0.9 * w, sb2).phase == "ordered"
    assert mf.phase_point(TANH, 1.1 * w, sb2).phase == "chaotic"


@pytest.mark.parametrize("sw2,sb2", [(1.5, 0.1), (1.0, 0.3), (1.9, 0.0)])
def test_relu_closed_forms(sw2, sb2):
    assert mf.fixed_point(RELU, sw2, sb2) == pytest.approx(sb2 / (1 - sw2 / 2))
    assert mf.chi_1(RELU, sw2, sb2) == pytest.approx(sw2 / 2)
    assert mf.critical_sigma_w2(RELU, sb2) == 2.0
    # the fixed point really is fixed under the length map
    q = mf.fixed_point(RELU, sw2, sb2)
    assert mf.length_map(RELU, sw2, sb2, q) == pytest.approx(q)


def test_relu_correlation_map_closed_form():
    # q/(2 pi) (sin t + (pi - t) cos t), t = arccos c, at the critical point (2, 0)
    for c in (0.0, 0.3, 0.9):
        t = math.acos(c)
        expected = 2 * (1 / (2 * math.pi)) * (math.sin(t) + (math.pi - t) * math.cos(t))
        assert mf.correlation_map(RELU, 2.0, 0.0, c) == pytest.approx(expected)
    assert mf.correlation_map(RELU, 2.0, 0.0, 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("name,sw2,sb2,c", [("tanh", 2.0, 0.05, 0.5), ("tanh", 1.2, 0.1, -0.3),
                                            ("relu", 1.5, 0.2, 0.6), ("leaky_relu", 1.8, 0.1, 0.2),
                                            ("elu", 1.5, 0.1, 0.4)])
def test_correlation_map_matches_sampling(name, sw2, sb2, c):
    act = ACTIVATIONS[name]
    q = mf.fixed_point(act, sw2, sb2, 0.1)
    rng = np.random.default_rng(5)
    z1, z2 = rng.standard_normal((2, 2_000_000))
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    prod = act.apply(u1, 0.1) * act.apply(u2, 0.1)
    expected = (sw2 * prod.mean() + sb2) / q
    se = sw2 * prod.std() / math.sqrt(z1.size) / q
    assert abs(mf.correlation_map(act, sw2, sb2, c, 0.1) - expected) < 5 * se


def test_depth_scales():
    p = mf.phase_point(TANH, 1.0, 0.05)
    assert p.phase == "ordered" and p.xi_c == pytest.approx(-1 / math.log(p.chi_1))
    assert 0 < p.xi_q < math.inf
    near = mf.phase_point(TANH, mf.critical_sigma_w2(TANH, 0.05), 0.05)
    assert near.xi_c > 100  # correlations persist ever deeper at the edge of chaos


@pytest.mark.parametrize("activation,sb2", [("tanh", 0.05), ("relu", 0.0)])
def test_measurement_at_criticality_follows_the_prediction(activation, sb2):
    act = ACTIVATIONS[activation]
    sw2 = mf.critical_sigma_w2(act, sb2)
    cfg = Config(scheme="lecun_normal", gain=math.sqrt(sw2), activation=activation,
                 bias="normal" if sb2 else "zeros", bias_value=math.sqrt(sb2),
                 depth=8, width=(1000,), inputs=1000, batch=1000)
    assert mf.config_sigmas(cfg) == pytest.approx((sw2, sb2, 0.0))
    # a finite network's variance takes a random walk around the prediction as it
    # deepens: average the ratio over four independent networks (seeds)
    sim = Simulator()
    ratios = np.array([[(lay.preactivation.std / lay.theory.preactivation_std,
                         lay.gradient.std / lay.theory.gradient_std)
                        for lay in sim.run(cfg.replace(seed=s)).layers] for s in range(4)])
    np.testing.assert_allclose(ratios.mean(axis=0), 1.0, rtol=0.05)
    # at criticality the gradient neither vanishes nor explodes across the layers
    grads = [lay.theory.gradient_std for lay in sim.run(cfg).layers]
    assert 0.7 < grads[0] / grads[-1] < 1.4


def test_phase_grid_shape():
    grid = mf.phase_grid(TANH, columns=8, rows=4)
    assert len(grid.chi_1) == 4 and len(grid.chi_1[0]) == 8
    assert [p["sigma_b2"] for p in grid.critical] == grid.sigma_b2


def test_phase_grid_stops_when_cancelled_and_keeps_nothing():
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 2  # let two rows through, then stop

    with pytest.raises(Cancelled):
        mf.phase_grid(TANH, columns=5, rows=7, slope=0.02, cancelled=cancelled)
    assert len(asked) == 3
    grid = mf.phase_grid(TANH, columns=5, rows=7, slope=0.02)  # computed in full now
    assert len(grid.chi_1) == 7 and all(len(row) == 5 for row in grid.chi_1)
    assert mf.phase_grid(TANH, columns=5, rows=7, slope=0.02) is grid  # and kept
