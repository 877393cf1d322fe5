"""Activations: derivative against finite differences, gains, and the quadrature."""

import math

import numpy as np
import pytest

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.gaussian import gaussian_moments

NAMES = list(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_finite_differences(name):
    act = ACTIVATIONS[name]
    z = np.linspace(-4, 4, 801)
    z = z[np.abs(z) > 1e-3]  # away from the kink at 0
    h = 1e-6
    numeric = (act.apply(z + h, 0.1) - act.apply(z - h, 0.1)) / (2 * h)
    np.testing.assert_allclose(act.slope_of(z, 0.1), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(name):
    act = ACTIVATIONS[name]
    z = np.linspace(-30, 30, 1001)
    a64 = act.apply(z)
    a32 = act.apply(z.astype(np.float32))
    assert np.isfinite(a32).all()
    np.testing.assert_allclose(a32, a64, rtol=2e-6, atol=2e-6)


def test_known_values():
    z = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].apply(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(ACTIVATIONS["softplus"].apply(z), np.log1p(np.exp(z)))
    np.testing.assert_allclose(ACTIVATIONS["silu"].apply(z), z / (1 + np.exp(-z)))
    np.testing.assert_allclose(ACTIVATIONS["elu"].apply(z), [math.expm1(-2), 0, 1.5])
    np.testing.assert_allclose(ACTIVATIONS["leaky_relu"].apply(z, 0.2), [-0.4, 0, 1.5])
    np.testing.assert_allclose(ACTIVATIONS["selu"].apply(z),
                               1.0507009873554805 * np.array([1.6732632423543772 * math.expm1(-2),
                                                              0, 1.5]))


def test_torch_gains():
    assert ACTIVATIONS["linear"].gain() == 1
    assert ACTIVATIONS["sigmoid"].gain() == 1
    assert ACTIVATIONS["tanh"].gain() == pytest.approx(5 / 3)
    assert ACTIVATIONS["relu"].gain() == pytest.approx(math.sqrt(2))
    assert ACTIVATIONS["leaky_relu"].gain(0.01) == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert ACTIVATIONS["leaky_relu"].gain(0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert ACTIVATIONS["selu"].gain() == 0.75


@pytest.mark.parametrize("name", ["elu", "gelu", "silu", "softplus"])
def test_other_gains_fix_the_second_moment(name):
    act = ACTIVATIONS[name]
    g = act.gain()
    assert gaussian_moments(act, 0.0, 1.0).phi2 * g * g == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("mu,sd", [(0.0, 1.0), (0.3, 0.5), (-1.0, 2.0), (0.0, 1e-3), (2.0, 0.1)])
def test_quadrature_matches_relu_closed_form(mu, sd):
    # run the generic quadrature on ReLU by disguising it as a non-special activation
    from dataclasses import replace

    relu = ACTIVATIONS["relu"]
    disguised = replace(relu, name="relu_by_quadrature")
    exact = gaussian_moments(relu, mu, sd)
    quad = gaussian_moments(disguised, mu, sd)
    assert quad.phi1 == pytest.approx(exact.phi1, rel=1e-9, abs=1e-14)
    assert quad.phi2 == pytest.approx(exact.phi2, rel=1e-9, abs=1e-14)
    assert quad.dphi2 == pytest.approx(exact.dphi2, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "elu", "softplus", "silu", "selu"])
@pytest.mark.parametrize("mu,sd", [(0.2, 1.3), (0.0, 22.0), (0.5, 0.01), (-3.0, 60.0)])
def test_quadrature_matches_monte_carlo(name, mu, sd):
    # sd = 22 is tanh with N(0, 1) weights at width 500: phi' is a spike in z-units
    act = ACTIVATIONS[name]
    z = np.random.default_rng(3).standard_normal(2_000_000) * sd + mu
    m = gaussian_moments(act, mu, sd)
    a, d = act.apply(z), act.slope_of(z)
    for exact, sample in [(m.phi1, a), (m.phi2, a * a), (m.dphi2, d * d)]:
        se = sample.std() / math.sqrt(z.size)
        assert abs(sample.mean() - exact) < 5 * se + 1e-12 * abs(exact)


def test_relu_moments():
    m = gaussian_moments(ACTIVATIONS["relu"], 0.0, 2.0)
    assert m.phi1 == pytest.approx(2 / math.sqrt(2 * math.pi))
    assert m.phi2 == pytest.approx(2.0)  # s^2 / 2
    assert m.phi2 - m.phi1 ** 2 == pytest.approx(4 * (math.pi - 1) / (2 * math.pi))
    assert m.dphi2 == pytest.approx(0.5)
