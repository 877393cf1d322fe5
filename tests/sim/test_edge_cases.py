"""The places where an independent check against the frameworks and a separate
mean-field solver disagreed with initscope: each pinned by a test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import initscope.sim.meanfield as mf
from initscope.cli import main
from initscope.sim import Config, Simulator
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.schemes import SCHEMES


@pytest.mark.parametrize("activation", ["elu", "selu"])
def test_elu_and_selu_units_never_die(activation):
    # a strongly negative bias puts every pre-activation below 0: a ReLU unit is off
    # with derivative 0 (dead), an ELU unit still has derivative exp(z) > 0
    cfg = Config(activation=activation, scheme="he_normal", bias="constant", bias_value=-3.0,
                 depth=3, width=(64,), inputs=32, batch=128)
    result = Simulator().run(cfg)
    assert all(lay.dead_fraction is None for lay in result.layers)
    assert not any("dead" in w for w in result.warnings)
    assert result.layers[1].weight_gradient.std > 0  # its weights still learn
    relu = Simulator().run(cfg.replace(activation="relu"))
    assert relu.layers[1].dead_fraction == 1.0 and any("dead" in w for w in relu.warnings)


def test_leaky_relu_dies_only_without_a_slope():
    leaky = ACTIVATIONS["leaky_relu"]
    assert not leaky.can_die(0.01) and leaky.can_die(0.0)
    assert ACTIVATIONS["relu"].can_die() and not ACTIVATIONS["elu"].can_die()


@pytest.mark.parametrize("width", [500, 300, 1000, 777])
def test_he_relu_with_a_random_bias_has_no_finite_fixed_point(width):
    # fan_in Var(W) is 2 only up to rounding (1.9999999999999996 at width 500)
    cfg = Config(scheme="he_normal", activation="relu", bias="normal", bias_value=0.1,
                 width=(width,), inputs=width)
    sw2, sb2, mu = mf.config_sigmas(cfg)
    point = mf.phase_point(ACTIVATIONS["relu"], sw2, sb2, mu=mu)
    assert point.q_star == math.inf and point.xi_c == math.inf and point.phase == "critical"
    assert mf.fixed_point(ACTIVATIONS["relu"], sw2, 0.0) == 1.0  # every q is fixed at 0


def test_a_constant_bias_is_a_mean_shift_in_the_mean_field_maps():
    tanh = ACTIVATIONS["tanh"]
    point = mf.phase_point(tanh, 1.5, 0.0, mu=0.3)
    # z ~ N(0.3, q*): q* solves q = 1.5 E[tanh(z)^2], chi_1 = 1.5 E[tanh'(z)^2]
    q = point.q_star
    assert q == pytest.approx(1.5 * gaussian_moments(tanh, 0.3, math.sqrt(q)).phi2, rel=1e-10)
    assert point.chi_1 == pytest.approx(
        1.5 * gaussian_moments(tanh, 0.3, math.sqrt(q)).dphi2, rel=1e-10)
    assert point.chi_1 == pytest.approx(0.88235, abs=5e-5)
    # the random bias of the same second moment gives another number
    assert mf.chi_1(tanh, 1.5, 0.09) == pytest.approx(0.88808, abs=5e-5)
    assert point.approximate_position and point.to_dict()["bias_mean"] == 0.3


def test_phase_json_marks_a_constant_bias_as_placed_approximately(capsys):
    assert _cli(["phase", "--activation", "tanh", "--scheme", "lecun_normal", "--gain",
                 str(math.sqrt(1.5)), "--bias", "constant", "--bias-value", "0.3",
                 "--format", "json"]) == 0
    point = json.loads(capsys.readouterr().out)["config"]
    assert point["approximate_position"] and point["bias_mean"] == 0.3
    assert point["chi_1"] == pytest.approx(0.88235, abs=5e-4)  # sigma_w^2 from 500 draws


def test_the_relu_critical_line_says_where_q_star_is_bounded(capsys):
    assert _cli(["phase", "--activation", "relu", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    line = data["critical_line"]
    assert all(p["sigma_w2"] == 2.0 for p in line)
    assert line[0]["sigma_b2"] == 0 and line[0]["fixed_point"]
    assert not any(p["fixed_point"] for p in line[1:])
    assert "unbounded" in data["critical_note"]
    assert _cli(["phase", "--activation", "relu"]) == 0
    assert "q* unbounded" in capsys.readouterr().out


def test_he_with_leaky_relu_counts_the_slope():
    """kaiming_normal_(a=slope, nonlinearity='leaky_relu') in PyTorch:
    std = gain / sqrt(fan_in), gain = sqrt(2 / (1 + slope^2)) (torch.nn.init docs)."""
    for slope in (0.01, 0.2, 0.5):
        cfg = Config(scheme="he_normal", activation="leaky_relu", slope=slope)
        spec = SCHEMES["he_normal"].weight_spec(cfg, 500, 400)
        assert spec.std == pytest.approx(math.sqrt(2.0 / (1.0 + slope ** 2) / 500), rel=1e-12)
        uniform = SCHEMES["he_uniform"].weight_spec(cfg, 500, 400)
        assert uniform.std == pytest.approx(spec.std, rel=1e-12)
    relu = SCHEMES["he_normal"].weight_spec(Config(scheme="he_normal", activation="relu"),
                                            500, 400)
    assert relu.std == pytest.approx(math.sqrt(2.0 / 500), rel=1e-12)
    # the Keras form, which ignores the slope, stays one field away
    keras = SCHEMES["variance_scaling"].weight_spec(
        Config(scheme="variance_scaling", scale=2.0, distribution="normal",
               activation="leaky_relu", slope=0.2), 500, 400)
    assert keras.std == pytest.approx(math.sqrt(2.0 / 500), rel=1e-12)


def test_he_leaky_relu_matches_pytorch():
    torch = pytest.importorskip("torch")
    for slope in (0.01, 0.2):
        gain = torch.nn.init.calculate_gain("leaky_relu", slope)
        cfg = Config(scheme="he_normal", activation="leaky_relu", slope=slope)
        assert SCHEMES["he_normal"].weight_spec(cfg, 500, 400).std == pytest.approx(
            gain / math.sqrt(500), rel=1e-12)
        w = torch.empty(400, 500)
        torch.nn.init.kaiming_normal_(w, a=slope, nonlinearity="leaky_relu")
        n = w.numel()
        assert float(w.std()) == pytest.approx(gain / math.sqrt(500),
                                               rel=5 * math.sqrt(1 / (2 * n)))


def test_schemes_command_names_options_as_the_cli_spells_them(capsys):
    assert _cli(["schemes"]) == 0
    out = capsys.readouterr().out
    assert "--init-steps" in out and "--init_steps" not in out
    assert "untruncated" in out and "truncated" in out


def _cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as stop:
        return stop.code or 0
    return 0


def test_measured_he_leaky_network_keeps_its_variance():
    cfg = Config(scheme="he_normal", activation="leaky_relu", slope=0.2, depth=6,
                 width=(800,), inputs=800, batch=800, dtype="float64")
    result = Simulator().run(cfg)
    pre = np.array([lay.preactivation.std ** 2 for lay in result.layers])
    # the pre-activation variance stays at 2 / (1 + a^2) * E[x^2] ... = the input's 1
    assert pre[-1] / pre[0] == pytest.approx(1.0, abs=0.15)


def test_the_spectrum_is_held_to_the_memory_budget():
    from initscope.sim import MemoryBudgetError
    from initscope.sim.spectrum import jacobian_spectrum, spectrum_bytes

    big = Config(depth=1000, width=(1000,), inputs=1000, batch=8)
    assert spectrum_bytes(big) > 8 * 2**30  # float64 weights alone: 8 GB
    with pytest.raises(MemoryBudgetError, match="Jacobian spectrum"):
        jacobian_spectrum(big)
    small = Config(depth=3, width=(64,), inputs=32, batch=16)
    assert spectrum_bytes(small) < 2**20 and jacobian_spectrum(small).flat.size > 0
