"""Each framework snippet asks for the weight variance initscope uses (REFERENCE.md)."""

import math
import re

import numpy as np
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


FIXED = [name for name, s in SCHEMES.items()  # transformer recipes: test_codegen_transformer
         if not s.data_init and not s.conv_only and not s.recipe and name != "constant"]


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


JAX_DISTRIBUTIONS = {"truncated_normal", "normal", "uniform"}  # what jax accepts
KERAS_DISTRIBUTIONS = {"truncated_normal", "untruncated_normal", "uniform"}
GAINS = [1.0, 0.5, -1.5]


def _configs():
    for scheme in FIXED + ["constant"]:
        for gain in GAINS:
            for dist in ("normal", "truncated_normal", "uniform"):
                if dist != "normal" and scheme != "variance_scaling":
                    continue
                yield Config(scheme=scheme, gain=gain, distribution=dist, inputs=FI,
                             width=(FO,), depth=1, activation="leaky_relu", slope=0.2)


def _calls(code: str) -> list[tuple[str, list, dict]]:
    """(dotted name, positional constants, keyword constants) of every call."""
    import ast

    def constant(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return None

    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), [constant(a) for a in node.args],
                        {k.arg: constant(k.value) for k in node.keywords}))
    return out


@pytest.mark.parametrize("cfg", list(_configs()),
                         ids=lambda c: f"{c.scheme}-{c.distribution}-g{c.gain:g}")
def test_every_snippet_parses_and_names_what_its_framework_accepts(cfg):
    code = snippets(cfg)
    for framework, text in code.items():
        calls = _calls(text)  # valid Python, or ast raises
        for name, args, kwargs in calls:
            if name == "init.variance_scaling":
                assert args[2] in JAX_DISTRIBUTIONS, text
            if name == "keras.initializers.VarianceScaling":
                assert kwargs["distribution"] in KERAS_DISTRIBUTIONS, text
            for value in [*args, *kwargs.values()]:
                if name.endswith(("xavier_normal_", "xavier_uniform_", "orthogonal_",
                                  "Orthogonal", "orthogonal")) and isinstance(value, float):
                    assert value >= 0, f"{framework}: a negative gain reached {name}"
        negations = text.count("neg_()") + text.count("-layer.kernel") + text.count("W = -W")
        assert negations == (1 if cfg.gain < 0 else 0), text
        assert "--" not in text.replace("# ", ""), text


def test_negative_gain_flips_the_constant_and_keeps_the_spread():
    cfg = Config(scheme="constant", value=0.2, gain=-1.5, inputs=FI, width=(FO,))
    code = snippets(cfg)
    assert "constant_(layer.weight, 0.3)" in code["pytorch"] and "neg_()" in code["pytorch"]
    assert "W = -W" in code["jax"] and "assign(-layer.kernel)" in code["keras"]
    flipped = Config(scheme="uniform", bound=0.05, gain=-1.0, inputs=FI, width=(FO,))
    assert "uniform_(layer.weight, -0.05, 0.05)" in snippets(flipped)["pytorch"]


def test_pytorch_snippets_run_and_draw_initscopes_distribution():
    torch = pytest.importorskip("torch")
    for cfg in _configs():
        if cfg.scheme in ("zeros",):
            continue
        scope = {}
        torch.manual_seed(0)
        exec(snippets(cfg)["pytorch"], scope)  # noqa: S102 - our own generated code
        w = scope["layer"].weight.detach().double().T  # (fan_in, fan_out) as initscope
        spec = SCHEMES[cfg.scheme].weight_spec(cfg, FI, FO)
        if cfg.scheme == "constant":
            assert float(w.mean()) == pytest.approx(cfg.value * cfg.gain, rel=1e-6)
            continue
        n = w.numel()
        # a sample std's relative standard error is at most sqrt(2 / n) for these
        assert float(w.std()) == pytest.approx(spec.std, rel=5 * math.sqrt(2 / n))


def test_jax_snippets_run_and_draw_initscopes_distribution():
    pytest.importorskip("jax")
    for cfg in _configs():
        scope = {}
        exec(snippets(cfg)["jax"], scope)  # noqa: S102 - our own generated code
        w = np.asarray(scope["W"], dtype=np.float64)
        assert w.shape == (FI, FO)
        _check_draw(cfg, w)


def _check_draw(cfg: Config, w: np.ndarray) -> None:
    """A (fan_in, fan_out) draw has initscope's std (mean for constant), its support
    for the bounded schemes, and the sign a negative gain gives."""
    spec = SCHEMES[cfg.scheme].weight_spec(cfg, FI, FO)
    if cfg.scheme in ("zeros", "constant"):
        assert float(w.mean()) == pytest.approx(cfg.value * cfg.gain if cfg.scheme ==
                                                "constant" else 0.0, abs=1e-6)
        return
    # a sample std's relative standard error is at most sqrt(2 / n) for these
    assert float(w.std()) == pytest.approx(spec.std, rel=5 * math.sqrt(2 / w.size))
    if spec.basis == "truncated_normal":
        assert np.max(np.abs(w)) <= 2 * abs(spec.scale) * (1 + 1e-6)


def test_keras_snippets_run(monkeypatch):
    pytest.importorskip("jax")  # Keras' backend here: TensorFlow is not installed
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    for cfg in _configs():
        scope = {}
        exec(snippets(cfg)["keras"], scope)  # noqa: S102 - our own generated code
        w = np.asarray(scope["layer"].kernel, dtype=np.float64)
        assert w.shape == (FI, FO)
        _check_draw(cfg, w)


NORMED = [Config(norm=norm, norm_at=at, arch=arch, scheme="he_normal", activation="relu",
                 inputs=FI if arch == "plain" else FO, width=(FO,), depth=2)
          for norm in ("batch", "layer", "rms") for at in ("before", "after")
          for arch in ("plain", "residual")]


def _batch(width: int) -> np.ndarray:
    return np.random.default_rng(9).normal(1.0, 2.0, (64, width))


def _initscope_norm(cfg: Config, x: np.ndarray) -> np.ndarray:
    from initscope.sim.norm import normalize

    return normalize(cfg.norm, x)[0]


@pytest.mark.parametrize("cfg", NORMED, ids=lambda c: f"{c.arch}-{c.norm}-{c.norm_at}")
def test_pytorch_norm_snippets_normalize_as_initscope(cfg):
    torch = pytest.importorskip("torch")
    scope = {}
    exec(snippets(cfg)["pytorch"], scope)  # noqa: S102 - our own generated code
    norm = scope["norm"]
    x = _batch(FO)
    with torch.no_grad():  # training mode: batch statistics, as at the first step
        y = norm(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(y, _initscope_norm(cfg, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cfg", NORMED, ids=lambda c: f"{c.arch}-{c.norm}-{c.norm_at}")
def test_keras_and_jax_norm_snippets_normalize_as_initscope(cfg, monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    x = _batch(FO)
    scope = {}
    exec(snippets(cfg)["keras"], scope)  # noqa: S102 - our own generated code
    y = np.asarray(scope["norm"](x.astype(np.float32), training=True), dtype=np.float64)
    np.testing.assert_allclose(y, _initscope_norm(cfg, x), rtol=1e-4, atol=1e-4)
    scope = {}
    exec(snippets(cfg)["jax"], scope)  # noqa: S102 - our own generated code
    y = np.asarray(scope["norm"](x.astype(np.float32)), dtype=np.float64)
    np.testing.assert_allclose(y, _initscope_norm(cfg, x), rtol=1e-4, atol=1e-4)


def _standardized_columns(w: np.ndarray) -> None:
    """(fan_in, fan_out) weights standardized with gamma 1, as initscope's first layer."""
    np.testing.assert_allclose(w.sum(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.sum(w ** 2, axis=0), 1, rtol=1e-4)


WS_CONFIGS = [Config(norm="nf", scheme="he_normal", activation="relu", inputs=FI, width=(FO,)),
              Config(arch="resconv", norm="nf", channels=8, scheme="he_normal",
                     activation="relu")]


@pytest.mark.parametrize("cfg", WS_CONFIGS, ids=lambda c: c.arch)
def test_weight_standardization_snippets_run_in_their_frameworks(cfg, monkeypatch):
    code = snippets(cfg)
    assert "gamma = 1.71286 in every layer after relu" in code["pytorch"]
    if cfg.arch == "resconv":
        assert "blocks x + 0.2 F(x / beta)" in code["pytorch"]

    def check(w: np.ndarray) -> None:  # (fan_in, fan_out), or HWIO for a kernel
        _standardized_columns(w.reshape(-1, w.shape[-1]))

    torch = pytest.importorskip("torch")
    scope = {}
    exec(code["pytorch"], scope)  # noqa: S102 - our own generated code
    weight = scope["layer"].weight.detach().double()  # (out, in[, k, k])
    check((weight.permute(2, 3, 1, 0) if weight.dim() == 4 else weight.T).numpy())
    pytest.importorskip("jax")
    scope = {}
    exec(code["jax"], scope)  # noqa: S102 - our own generated code
    check(np.asarray(scope["W_hat"], dtype=np.float64))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    scope = {}
    exec(code["keras"], scope)  # noqa: S102 - our own generated code
    check(np.asarray(scope["W_hat"], dtype=np.float64))
    del torch


CONV_SCHEMES = ["he_normal", "xavier_uniform", "lecun_normal", "orthogonal", "torch_linear",
                "variance_scaling", "normal", "dirac", "delta_orthogonal"]


def _centre_only(kernel: np.ndarray, scheme: str, gain: float) -> None:
    """An HWIO kernel zero but the centre tap: gain I (Dirac) or gain Q, Q orthogonal."""
    centre = kernel[1, 1].copy()
    kernel = kernel.copy()
    kernel[1, 1] = 0
    assert not kernel.any()
    if scheme == "dirac":
        np.testing.assert_allclose(centre, gain * np.eye(centre.shape[0]), atol=1e-6)
    else:
        np.testing.assert_allclose(centre.T @ centre, gain ** 2 * np.eye(centre.shape[0]),
                                   atol=1e-4)


@pytest.mark.parametrize("scheme", CONV_SCHEMES)
def test_conv_snippets_run_and_draw_initscopes_distribution(scheme, monkeypatch):
    from initscope.sim.arch.conv import weight_spec

    centre_only = SCHEMES[scheme].conv_only
    cfg = Config(arch="conv", scheme=scheme, channels=32, kernel=3, stride=2, padding=1,
                 activation="relu", std=0.05, distribution="uniform", mode="fan_avg",
                 gain=1.5 if centre_only else 1.0)
    code = snippets(cfg)
    assert "nn.Conv2d(32, 32, 3, stride=2, padding=1)" in code["pytorch"]
    spec = weight_spec(cfg)
    n = 32 * 32 * 9
    tolerance = 5 * math.sqrt(2 / n)  # a sample std's relative standard error
    torch = pytest.importorskip("torch")
    scope = {}
    torch.manual_seed(0)
    exec(code["pytorch"], scope)  # noqa: S102 - our own generated code
    weight = scope["layer"].weight.detach().double()
    assert float(weight.std()) == pytest.approx(spec.std, rel=tolerance)
    if centre_only:  # PyTorch's (out, in, k, k) as HWIO
        _centre_only(weight.permute(2, 3, 1, 0).numpy(), scheme, 1.5)
    pytest.importorskip("jax")
    scope = {}
    exec(code["jax"], scope)  # noqa: S102 - our own generated code
    assert scope["W"].shape == (3, 3, 32, 32)
    assert float(np.asarray(scope["W"], dtype=np.float64).std()) == pytest.approx(
        spec.std, rel=tolerance)
    if centre_only:
        _centre_only(np.asarray(scope["W"], dtype=np.float64), scheme, 1.5)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    scope = {}
    exec(code["keras"], scope)  # noqa: S102 - our own generated code
    kernel = np.asarray(scope["layer"].kernel, dtype=np.float64)
    assert kernel.shape == (3, 3, 32, 32)
    assert float(kernel.std()) == pytest.approx(spec.std, rel=tolerance)
    if centre_only:
        _centre_only(kernel, scheme, 1.5)


CONV_NORMED = [Config(arch=arch, norm=norm, norm_at="before", channels=8, scheme="he_normal",
                      activation="relu")
               for norm in ("batch", "layer", "rms") for arch in ("conv", "resconv")]


@pytest.mark.parametrize("cfg", CONV_NORMED, ids=lambda c: f"{c.arch}-{c.norm}")
def test_conv_norm_snippets_normalize_as_initscope(cfg, monkeypatch):
    # batch norm per channel over images and pixels; layer and RMS per pixel
    from initscope.sim.norm import normalize

    x = np.random.default_rng(5).normal(1.0, 2.0, (4, 5, 5, 8))  # NHWC
    expected = normalize(cfg.norm, x.reshape(-1, 8))[0].reshape(x.shape)
    torch = pytest.importorskip("torch")
    scope = {}
    exec(snippets(cfg)["pytorch"], scope)  # noqa: S102 - our own generated code
    with torch.no_grad():
        y = scope["norm"](torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2))
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).double().numpy(), expected, rtol=1e-5,
                               atol=1e-5)
    pytest.importorskip("jax")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    scope = {}
    exec(snippets(cfg)["keras"], scope)  # noqa: S102 - our own generated code
    y = np.asarray(scope["norm"](x.astype(np.float32), training=True), dtype=np.float64)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    scope = {}
    exec(snippets(cfg)["jax"], scope)  # noqa: S102 - our own generated code
    y = np.asarray(scope["norm"](x.astype(np.float32)), dtype=np.float64)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
