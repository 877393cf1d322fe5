"""Share strings round-trip every config, and refuse what is not one."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initscope.sim import Config, ConfigError, validate
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch import ARCHS, scheme_fits
from initscope.sim.schemes import SCHEMES
from initscope.sim.share import decode, encode

FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
POSITIVE = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)


@st.composite
def configs(draw) -> Config:
    depth = draw(st.integers(1, 1000))
    per_layer = draw(st.booleans()) and depth <= 20
    width = tuple(draw(st.lists(st.integers(1, 8192), min_size=depth, max_size=depth))) \
        if per_layer else (draw(st.integers(1, 8192)),)
    choice = {f.name: draw(st.sampled_from(f.metadata["choices"]))
              for f in dataclasses.fields(Config) if f.metadata.get("choices")}
    arch = draw(st.sampled_from(list(ARCHS))) if len(width) == 1 else "plain"
    scheme = draw(st.sampled_from(list(SCHEMES)))
    if not scheme_fits(arch, scheme):
        scheme = "normal"
    if not ARCHS[arch].normalizes or SCHEMES[scheme].data_init or \
            choice["norm"] not in ARCHS[arch].norms:
        choice["norm"] = "none"
    heads = draw(st.sampled_from([h for h in (1, 2, 3, 4, 8) if width[0] % h == 0]))
    return Config(**{**choice, "arch": arch}, scheme=scheme, nf_alpha=draw(st.floats(0, 4)),
                  activation=draw(st.sampled_from(list(ACTIVATIONS))),
                  std=draw(POSITIVE), bound=draw(POSITIVE), value=draw(FINITE),
                  gain=draw(FINITE), scale=draw(POSITIVE), slope=draw(st.floats(0, 1)),
                  depth=depth, width=width, inputs=draw(st.integers(1, 8192)),
                  batch=draw(st.integers(1, 65536)), bias_value=abs(draw(FINITE)),
                  seed=draw(st.integers(0, 2**63 - 1)),
                  memory_limit=draw(st.floats(0, 4096)), lr=draw(POSITIVE),
                  momentum=draw(st.floats(0, 0.999)), batch_size=draw(st.integers(0, 65536)),
                  time_steps=draw(st.integers(1, 1000)), init_steps=draw(st.integers(-1, 50)),
                  steps=draw(st.integers(1, 100_000)), heads=heads,
                  tokens=draw(st.integers(2, 2048)), mlp_ratio=draw(st.integers(1, 16)),
                  correlation=draw(st.floats(0, 0.999)))


@settings(max_examples=300, deadline=None)
@given(configs())
def test_every_config_round_trips(cfg):
    validate(cfg)
    text = encode(cfg)
    assert text.startswith("is1.") and "\n" not in text and " " not in text
    assert decode(text) == cfg


def test_defaults_make_a_short_string():
    assert len(encode(Config())) < 20
    assert decode(encode(Config())) == Config()


@pytest.mark.parametrize("bad", ["", "hello", "is1.", "is1.!!!", "is1.eNqrVkpMLsks",
                                 encode(Config()).replace("is1.", "is2.")])
def test_damaged_strings_are_refused(bad):
    with pytest.raises(ConfigError):
        decode(bad)


def test_strings_with_impossible_values_are_refused():
    import base64
    import json
    import zlib

    def make(payload) -> str:
        raw = zlib.compress(json.dumps(payload).encode())
        return "is1." + base64.urlsafe_b64encode(raw).decode()

    for payload in [{"depth": 0}, {"nope": 1}, {"depth": "ten"}, [1, 2], {"scheme": "x"},
                    {"width": [0]}, {"gain": True}]:
        with pytest.raises(ConfigError):
            decode(make(payload))


def _packed(raw: bytes) -> str:
    import base64
    import zlib

    return "is1." + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


@pytest.mark.parametrize("text", [
    encode(Config(depth=3)) + "AAAA",  # bytes after the compressed stream
    "",  # not the defaults
    "is1.",
    _packed(b" " * 5_000_000),  # inflates far past any config
    _packed(b"[" * 100_000),  # nesting that would recurse
    "is1." + "A" * 50_000,  # longer than any config's string
], ids=["trailing bytes", "empty", "prefix only", "inflates to 5 MB", "nested", "too long"])
def test_lenient_share_strings_are_refused(text):
    with pytest.raises(ConfigError):
        decode(text)
