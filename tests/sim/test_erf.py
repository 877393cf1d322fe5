"""The array erf against Python's math.erf, and exact GELU against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.erf import erf


def test_float64_erf_is_within_two_ulps_of_math_erf():
    xs = np.concatenate([np.linspace(-9, 9, 100001), [0.0, 5.999999, 6.0, 1e-300]])
    ours = erf(xs)
    reference = np.array([math.erf(v) for v in xs])
    assert np.max(np.abs(ours - reference)) <= 2e-15
    assert ours.dtype == np.float64


def test_float32_erf_is_within_one_float32_rounding():
    xs = np.linspace(-9, 9, 100001).astype(np.float32)
    ours = erf(xs)
    assert ours.dtype == np.float32
    reference = np.array([math.erf(float(v)) for v in xs])
    assert np.max(np.abs(ours.astype(np.float64) - reference)) <= 2 ** -24 * 1.01


def test_erf_edges():
    out = erf(np.array([np.nan, np.inf, -np.inf, -0.5]))
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0
    assert out[3] == pytest.approx(math.erf(-0.5), abs=1e-15)


def test_exact_gelu_is_z_times_the_normal_cdf_and_differs_from_the_tanh_form():
    z = np.linspace(-10, 10, 20001)
    exact = ACTIVATIONS["gelu"].apply(z)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    assert np.max(np.abs(exact - z * cdf)) <= 1e-14
    density = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert np.max(np.abs(ACTIVATIONS["gelu"].slope_of(z) - (cdf + z * density))) <= 1e-14
    tanh_form = ACTIVATIONS["gelu_tanh"].apply(z)
    assert 4e-4 < np.max(np.abs(exact - tanh_form)) < 5e-4  # PyTorch's two forms


def test_float32_gelu_reads_the_normal_cdf_to_float32_precision():
    # z Phi(z) from the float32 table against the exact value: within 2e-6 relative
    # (a few dozen float32 roundings), down the far negative tail where 1 + erf would
    # cancel to nothing; past +-8 Phi is 1 or 0 to float32 precision
    z = np.linspace(-8, 8, 400001).astype(np.float32)
    out = np.empty_like(z)
    ACTIVATIONS["gelu"].forward(z, out, 0.01)
    exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in z.astype(np.float64)])
    kept = exact != 0
    assert np.max(np.abs(out[kept] - exact[kept]) / np.abs(exact[kept])) < 2e-6
    assert out[0] < 0  # Phi(-8) = 6e-16, not 0
    edge = np.array([np.nan, np.inf, 9.0, -9.0], np.float32)
    out = np.empty_like(edge)
    ACTIVATIONS["gelu"].forward(edge, out, 0.01)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 9.0
    assert -1e-13 < out[3] <= 0


def test_gelu_matches_pytorch():
    torch = pytest.importorskip("torch")
    z = torch.linspace(-8, 8, 4001, dtype=torch.float64, requires_grad=True)
    for name, approximate in (("gelu", "none"), ("gelu_tanh", "tanh")):
        out = torch.nn.functional.gelu(z, approximate=approximate)
        (grad,) = torch.autograd.grad(out.sum(), z)
        zn = z.detach().numpy()
        assert np.max(np.abs(ACTIVATIONS[name].apply(zn) - out.detach().numpy())) <= 1e-13
        assert np.max(np.abs(ACTIVATIONS[name].slope_of(zn) - grad.numpy())) <= 1e-13
