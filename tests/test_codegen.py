"""Each framework snippet asks for the weight variance initscope uses (REFERENCE.md)."""

import math
import re

import pytest

from initscope.codegen import snippets
from initscope.sim import Config
from initscope.sim.schemes import SCHEMES

FI, FO = 256, 512
FANS = {"fan_in": FI, "fan_out": FO, "fan_avg": (FI + FO) / 2}
NUM = r"(-?[0-9.e+-]+)"


def implied_variance(code: str) -> float:
    """The weight variance a snippet asks for, read off its call."""
    rules = [
        (rf"VarianceScaling\(scale={NUM}, mode=\"(\w+)\"", lambda s, m: float(s) / FANS[m]),
        (rf"variance_scaling\({NUM}, \"(\w+)\"", lambda s, m: float(s) / FANS[m]),
        (rf"trunc_normal_\(layer.weight, std={NUM}",
         lambda s: (0.87962566103423978 * float(s)) ** 2),
        (rf"normal_\(layer.weight, mean=0.0, std={NUM}", lambda s: float(s) ** 2),
        (rf"uniform_\(layer.weight, -{NUM}, ", lambda a: float(a) ** 2 / 3),
        (rf"xavier_\w+_\(layer.weight, gain={NUM}", lambda g: float(g) ** 2 * 2 / (FI + FO)),
        (rf"[Oo]rthogonal_?\((?:layer.weight, )?(?:gain|scale)={NUM}",
         lambda g: float(g) ** 2 / max(FI, FO)),
        (rf"RandomNormal\(mean=0.0, stddev={NUM}\)", lambda s: float(s) ** 2),
        (rf"init.normal\(stddev={NUM}\)", lambda s: float(s) ** 2),
        (rf"RandomUniform\(-{NUM}, ", lambda a: float(a) ** 2 / 3),
        (rf"symmetric_uniform\({NUM}\)\)\(key_w", lambda a: float(a) ** 2 / 3),
        (r"reset_parameters", lambda: 1 / (3 * FI)),
        (r"zeros_\(layer.weight\)|Zeros\(\),\n    bias|W = \(init.zeros\)", lambda: 0.0),
    ]
    for pattern, var in rules:
        m = re.search(pattern, code)
        if m:
            scaled = re.search(rf"weight.mul_\({NUM}\)", code)  # a gain applied afterwards
            return var(*m.groups()) * (float(scaled.group(1)) ** 2 if scaled else 1.0)
    raise AssertionError(f"no initializer found in:\n{code}")


FIXED = [name for name, s in SCHEMES.items() if not s.data_init and name != "constant"]


@pytest.mark.parametrize("scheme", FIXED)
@pytest.mark.parametrize("framework", ["pytorch", "keras", "jax"])
@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_snippet_variance_matches_the_scheme(scheme, framework, gain):
    cfg = Config(scheme=scheme, gain=gain, inputs=FI, width=(FO,), depth=1, std=0.2, bound=0.3,
                 mode="fan_out", scale=2.0, distribution="uniform", activation="relu")
    code = snippets(cfg)[framework]
    expected = SCHEMES[scheme].weight_spec(cfg, FI, FO).std ** 2
    assert implied_variance(code) == pytest.approx(expected, rel=1e-5)


def test_constant_and_biases():
    cfg = Config(scheme="constant", value=0.2, gain=1.5, bias="constant", bias_value=0.1,
                 inputs=FI, width=(FO,))
    code = snippets(cfg)
    assert "constant_(layer.weight, 0.3)" in code["pytorch"]
    assert "Constant(0.3)" in code["keras"] and "Constant(0.1)" in code["keras"]
    assert "init.constant(0.3)" in code["jax"] and "init.constant(0.1)" in code["jax"]
    torch_default = snippets(Config(scheme="torch_linear", inputs=FI, width=(FO,)))
    bound = 1 / math.sqrt(FI)
    assert f"RandomUniform(-{bound:.6g}, {bound:.6g})" in torch_default["keras"]
    assert "reset_parameters" in torch_default["pytorch"]


def test_data_dependent_schemes_say_why_there_is_no_snippet():
    for scheme in ("lsuv", "data_dependent"):
        for code in snippets(Config(scheme=scheme)).values():
            assert code.startswith("#") and "data batch" in code
