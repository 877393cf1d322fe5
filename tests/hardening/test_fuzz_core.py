"""Random configs never break the core; the memory estimate holds.

INITSCOPE_FUZZ_EXAMPLES sets how many configs to try (a few dozen by default; the
README's figures come from a longer run)."""

import json
import math
import os

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from initscope.sim import Config, ConfigError, MemoryBudgetError, Simulator, validate
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS, scheme_fits
from initscope.sim.budget import estimate
from initscope.sim.config import (
    BIAS_MODES,
    BRANCHES,
    DISTRIBUTIONS,
    FAN_MODES,
    MASKS,
    NORM_PLACES,
    SWITCH,
)
from initscope.sim.schemes import SCHEMES
from tests.peak import peak_bytes

EXAMPLES = int(os.environ.get("INITSCOPE_FUZZ_EXAMPLES", "40"))
# the same examples on every CI run; a longer run under the flag explores afresh
DERANDOMIZE = "INITSCOPE_FUZZ_EXAMPLES" not in os.environ
SIM = Simulator()  # shared, as the app shares one: its caches must not leak across configs


@st.composite
def small_configs(draw, big: bool = False) -> Config:
    arch = draw(st.sampled_from(list(ARCHS)))
    scheme = draw(st.sampled_from([s for s in SCHEMES if scheme_fits(arch, s)]))
    size = (64, 512) if big else (1, 48)
    width = draw(st.integers(*size))
    return Config(
        arch=arch, scheme=scheme, activation=draw(st.sampled_from(list(ACTIVATIONS))),
        std=draw(st.sampled_from([0.0, 0.01, 1.0, 10.0])),
        bound=draw(st.sampled_from([0.0, 0.05, 3.0])),
        value=draw(st.sampled_from([0.0, 0.01, -1.0, 5.0])),
        gain=draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, -2.0])),
        mode=draw(st.sampled_from(FAN_MODES)), distribution=draw(st.sampled_from(DISTRIBUTIONS)),
        slope=draw(st.sampled_from([0.0, 0.01, 1.0])),
        depth=draw(st.integers(1, 40 if not big else 6)),
        width=(width,), inputs=draw(st.integers(*size)),
        batch=draw(st.integers(*size)), bias=draw(st.sampled_from(BIAS_MODES)),
        bias_value=draw(st.sampled_from([0.0, 0.1, 3.0])), seed=draw(st.integers(0, 2**40)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        input_dist=draw(st.sampled_from(["normal", "uniform"])),
        branch=draw(st.sampled_from(BRANCHES)), time_steps=draw(st.integers(1, 30)),
        rnn_input=draw(st.sampled_from(["all", "first"])),
        norm=draw(st.sampled_from(ARCHS[arch].norms)) if ARCHS[arch].normalizes else "none",
        norm_at=draw(st.sampled_from(NORM_PLACES)), nf_alpha=draw(st.sampled_from([0.0, 0.2, 2.0])),
        channels=draw(st.integers(1, 12 if not big else 48)), image=draw(st.integers(3, 12)),
        kernel=draw(st.sampled_from([1, 3, 5])), stride=draw(st.integers(1, 2)),
        heads=draw(st.sampled_from([h for h in (1, 2, 3, 4) if width % h == 0])),
        tokens=draw(st.integers(2, 12)), mlp_ratio=draw(st.integers(1, 4)),
        mask=draw(st.sampled_from(MASKS)), skips=draw(st.sampled_from(SWITCH)),
        correlation=draw(st.sampled_from([0.0, 0.5, 0.99])),
    )


def _finite_or_overflow(result) -> None:
    stop = result.overflow_layer
    for lay in result.layers:
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            summary = getattr(lay, q)
            if summary is None:
                assert stop is not None or result.phase != "complete"
                continue
            if summary.finite:
                assert math.isfinite(summary.mean) and math.isfinite(summary.std)
            else:
                assert stop is not None, "non-finite numbers without an overflow named"
    for bins, shared in ((2, True), (200, False)):  # any binning of the kept samples
        json.dumps(result.to_dict(bins, shared), allow_nan=False)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow])
@given(small_configs())
def test_random_configs_run_or_are_refused_with_a_reason(cfg):
    try:
        result = SIM.run(cfg)
    except (ConfigError, MemoryBudgetError) as e:
        assert str(e) and "\n" not in str(e)
        event(f"refused: {type(e).__name__}")  # --hypothesis-show-statistics counts them
        return
    assert len(result.layers) == cfg.row_count()
    _finite_or_overflow(result)
    event("ran, overflow named" if result.overflow_layer else "ran, all finite")


@st.composite
def sized_configs(draw) -> Config:
    """Configs big enough (tens of MiB) that the fixed overhead does not blur the peak."""
    cfg = draw(small_configs())
    cfg = cfg.replace(width=(draw(st.sampled_from([128, 192, 256, 384, 512, 640])),),
                      inputs=draw(st.integers(64, 640)), batch=draw(st.integers(128, 640)),
                      depth=draw(st.integers(2, 10)), time_steps=draw(st.integers(2, 24)),
                      memory_limit=4.0)
    if ARCHS[cfg.arch].attends:  # a batch of sequences: tokens times the batch are rows
        cfg = cfg.replace(batch=draw(st.integers(1, 8)), tokens=draw(st.integers(16, 96)))
    return cfg


@settings(max_examples=max(8, EXAMPLES // 4), deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(sized_configs())
def test_memory_estimate_is_an_upper_bound_of_the_measured_peak(cfg):
    try:
        est = estimate(validate(cfg)).total
    except ConfigError:
        assume(False)
    assume(est >= 8 * 2**20)  # deterministic: tiny configs are not worth a run
    peak = peak_bytes(lambda: Simulator().run(cfg))
    if peak < 16 * 2**20:
        # smaller runs are mostly fixed overhead; not an assume(): the peak moves with
        # thread timing, and hypothesis refuses a filter that changes its mind
        return
    # never under the peak, so a budget holds; not far over it, so few configs that
    # fit are refused (LSUV's tuning is counted generously: up to 1.63x measured, and
    # a fixed 4 MiB for first-use caches weighs on small runs)
    assert peak <= est <= 1.7 * peak + 8 * 2**20, (cfg, est, peak)


@settings(max_examples=max(6, EXAMPLES // 6), deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(sized_configs(), st.sampled_from(["sgd", "adam"]), st.sampled_from([0, 0.9]))
def test_training_estimate_is_an_upper_bound_of_the_measured_peak(cfg, optimizer, momentum):
    from initscope.sim.training import Trainer, training_bytes

    cfg = cfg.replace(arch="plain", optimizer=optimizer, momentum=momentum)
    try:
        Trainer(cfg)
    except ConfigError:
        assume(False)
    peak = peak_bytes(lambda: Trainer(cfg).run(2))
    assert training_bytes(cfg) >= peak, (cfg, training_bytes(cfg), peak)
