"""Each scheme's weights against its formula (REFERENCE.md), on the core's own draws."""

import math

import numpy as np
import pytest

from initscope.sim import Config, Simulator
from initscope.sim.schemes import SCHEMES, TRUNCATED_STD, bias_spec
from tests.sim.reference import weights_of

FAN_IN, FAN_OUT = 256, 512
N = FAN_IN * FAN_OUT
# the sample variance of n draws has relative standard error sqrt((kurtosis - 1) / n);
# kurtosis is at most 3 for every distribution here, and we allow 5 standard errors
VAR_TOL = 5 * math.sqrt(2 / N)

# scheme (with its options) -> the weight variance REFERENCE.md gives for 256 -> 512
EXPECTED_VAR = {
    ("normal", ()): 0.01 ** 2,
    ("normal", (("std", 0.3),)): 0.09,
    ("uniform", (("bound", 0.2),)): 0.2 ** 2 / 3,
    ("lecun_normal", ()): 1 / FAN_IN,
    ("lecun_uniform", ()): 1 / FAN_IN,
    ("xavier_normal", ()): 2 / (FAN_IN + FAN_OUT),
    ("xavier_uniform", ()): 2 / (FAN_IN + FAN_OUT),
    ("he_normal", ()): 2 / FAN_IN,
    ("he_normal", (("mode", "fan_out"),)): 2 / FAN_OUT,
    ("he_uniform", ()): 2 / FAN_IN,
    ("he_uniform", (("mode", "fan_out"),)): 2 / FAN_OUT,
    ("variance_scaling", (("distribution", "normal"), ("mode", "fan_avg"))): 2 / (FAN_IN + FAN_OUT),
    ("variance_scaling", (("distribution", "uniform"), ("scale", 2.0))): 2 / FAN_IN,
    ("variance_scaling", (("distribution", "truncated_normal"), ("mode", "fan_out"))): 1 / FAN_OUT,
    ("orthogonal", ()): 1 / FAN_OUT,
    ("random_walk", (("activation", "tanh"),)): 1.13 ** 2 / FAN_IN,
    ("random_walk", (("activation", "relu"),)): 2 * math.exp(2 * 1.2 / (FAN_IN - 2.4)) / FAN_IN,
    ("random_walk", (("activation", "linear"),)): math.exp(1 / FAN_IN) / FAN_IN,
    ("torch_linear", ()): 1 / (3 * FAN_IN),
    ("keras_dense", ()): 2 / (FAN_IN + FAN_OUT),
    ("flax_dense", ()): 1 / FAN_IN,
}


def layer_weights(**opts):
    cfg = Config(depth=1, width=(FAN_OUT,), inputs=FAN_IN, batch=4, **opts)
    sim = Simulator()
    result = sim.run(cfg)
    ws, bs = weights_of(sim, cfg)
    return cfg, result, ws[0], bs[0]


def test_every_scheme_has_an_expected_variance():
    # the data-dependent ones are checked against their own definitions (test_datainit),
    # the kernel-only ones against their structure (test_conv)
    tuned = {name for name, s in SCHEMES.items() if s.data_init}
    assert tuned == {"lsuv", "data_dependent"}
    kernels = {name for name, s in SCHEMES.items() if s.conv_only}
    assert kernels == {"dirac", "delta_orthogonal"}
    # and the transformer recipes per weight group (test_transformer)
    recipes = {name for name, s in SCHEMES.items() if s.recipe}
    assert recipes == {"gpt2", "deepnet", "small_init", "mup", "zero_out"}
    assert {name for name, _ in EXPECTED_VAR} | {"zeros", "constant"} | tuned | kernels \
        | recipes == set(SCHEMES)


@pytest.mark.parametrize("scheme,opts", list(EXPECTED_VAR), ids=lambda v: str(v))
def test_sample_variance_matches_formula(scheme, opts):
    cfg, result, w, _ = layer_weights(scheme=scheme, **dict(opts))
    expected = EXPECTED_VAR[(scheme, opts)]
    assert abs(w.mean()) < 5 * math.sqrt(expected / N)
    assert w.var() == pytest.approx(expected, rel=VAR_TOL)
    # the core reports the same target and measures the same std
    assert result.layers[0].weight_target_std == pytest.approx(math.sqrt(expected), rel=1e-9)
    assert result.layers[0].weight_std == pytest.approx(w.std(), rel=1e-5)


def test_gain_multiplies_any_scheme():
    _, _, w1, _ = layer_weights(scheme="xavier_uniform")
    _, _, w3, _ = layer_weights(scheme="xavier_uniform", gain=3.0)
    np.testing.assert_allclose(w3, 3.0 * w1, rtol=1e-6)


def test_uniform_schemes_respect_their_bounds():
    for scheme, bound in [("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
                          ("he_uniform", math.sqrt(6 / FAN_IN)),
                          ("lecun_uniform", math.sqrt(3 / FAN_IN)),
                          ("torch_linear", 1 / math.sqrt(FAN_IN))]:
        _, _, w, _ = layer_weights(scheme=scheme)
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * bound


def test_worked_numbers_from_the_notes():
    # seed 004, Example 1 (256 -> 512) and Problem 2 (1024 -> 256)
    def target(scheme, fi, fo):
        return SCHEMES[scheme].weight_spec(Config(scheme=scheme), fi, fo)

    assert target("xavier_normal", 256, 512).std ** 2 == pytest.approx(0.002604, abs=1e-6)
    assert target("xavier_normal", 256, 512).std == pytest.approx(0.0510, abs=1e-4)
    assert target("xavier_uniform", 256, 512).scale == pytest.approx(0.0884, abs=1e-4)
    assert target("he_normal", 256, 512).std ** 2 == pytest.approx(0.0078125)
    assert target("he_normal", 256, 512).std == pytest.approx(0.0884, abs=1e-4)
    assert target("he_uniform", 256, 512).scale == pytest.approx(0.1531, abs=1e-4)
    assert target("xavier_uniform", 1024, 256).scale == pytest.approx(0.0685, abs=1e-4)
    assert target("he_normal", 1024, 256).std == pytest.approx(0.0442, abs=1e-4)


def test_truncation_constant():
    pdf2 = math.exp(-2) / math.sqrt(2 * math.pi)
    cdf2 = 0.5 * (1 + math.erf(2 / math.sqrt(2)))
    assert TRUNCATED_STD == pytest.approx(math.sqrt(1 - 4 * pdf2 / (2 * cdf2 - 1)), rel=1e-15)


def test_truncated_normal_is_cut_at_two_std():
    _, _, w, _ = layer_weights(scheme="flax_dense")
    sigma = math.sqrt(1 / FAN_IN) / TRUNCATED_STD
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)


@pytest.mark.parametrize("shape", [(256, 512), (512, 256), (300, 300)])
def test_orthogonal_singular_values_equal_gain(shape):
    fi, fo = shape
    cfg = Config(scheme="orthogonal", gain=1.7, depth=1, width=(fo,), inputs=fi, batch=2)
    sim = Simulator()
    sim.run(cfg)
    w = weights_of(sim, cfg)[0][0]
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), 1.7, rtol=1e-5)


def test_zeros_and_constant():
    _, _, w, _ = layer_weights(scheme="zeros")
    assert not w.any()
    _, result, w, _ = layer_weights(scheme="constant", value=0.2)
    assert (w == 0.2).all()
    assert result.layers[0].weight_std == 0


def test_torch_linear_bias_and_framework_biases():
    fi = 256
    cfg, _, _, b = layer_weights(scheme="torch_linear")
    assert np.abs(b).max() <= 1 / math.sqrt(fi)
    assert b.var() == pytest.approx(1 / (3 * fi), rel=5 * math.sqrt(0.8 / FAN_OUT))
    for scheme in ("keras_dense", "flax_dense", "xavier_uniform"):
        assert not layer_weights(scheme=scheme)[3].any()
    # an explicit bias mode overrides the scheme's own
    assert (layer_weights(scheme="torch_linear", bias="zeros")[3] == 0).all()
    assert bias_spec(Config(bias="constant", bias_value=0.1), 5).mean == 0.1


def test_bias_modes():
    assert (layer_weights(bias="constant", bias_value=0.01)[3] == 0.01).all()
    b = layer_weights(bias="normal", bias_value=0.5)[3]
    assert b.std() == pytest.approx(0.5, rel=5 * math.sqrt(2 / FAN_OUT))


def test_common_random_numbers_across_schemes():
    _, _, xn, _ = layer_weights(scheme="xavier_normal")
    _, _, hn, _ = layer_weights(scheme="he_normal")
    np.testing.assert_allclose(hn / xn, math.sqrt(2 / FAN_IN) / math.sqrt(2 / (FAN_IN + FAN_OUT)),
                               rtol=1e-5)
    # uniform draws keep the order of the normal draws they come from
    _, _, xu, _ = layer_weights(scheme="xavier_uniform")
    order = np.argsort(xn.ravel())
    assert np.all(np.diff(xu.ravel()[order]) >= 0)
    # changing depth keeps the first layer's numbers
    cfg = Config(depth=3, width=(32,), inputs=16, batch=4)
    sim = Simulator()
    sim.run(cfg)
    w3 = weights_of(sim, cfg)[0][0]
    sim.run(cfg.replace(depth=1))
    np.testing.assert_array_equal(weights_of(sim, cfg.replace(depth=1))[0][0], w3)


def test_uniform_draws_are_uniform():
    _, _, w, _ = layer_weights(scheme="uniform", bound=1.0)
    counts, _ = np.histogram(w, bins=10, range=(-1, 1))
    expected = N / 10
    # chi-square with 9 degrees of freedom: 99.9th percentile is 27.9
    assert ((counts - expected) ** 2 / expected).sum() < 27.9
