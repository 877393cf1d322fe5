"""Random and malformed command lines: exit 0 or 2 with one line, never a traceback."""

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from initscope.cli import main
from initscope.sim import Config
from initscope.sim.config import option_name

EXAMPLES = int(os.environ.get("INITSCOPE_FUZZ_EXAMPLES", "40"))
DERANDOMIZE = "INITSCOPE_FUZZ_EXAMPLES" not in os.environ  # as in test_fuzz_core
OPTIONS = [option_name(f) for f in dataclasses.fields(Config)]
JUNK = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-0", "3.5", "99999999", "", "a,b",
                     "8192,8192", "he_normal", "relu", "float16", "1,2,3", "1e308", "1e200",
                     "-1e300", "1e-320"]),
)
SMALL = ["--depth", "2", "--width", "8", "--inputs", "4", "--batch", "8"]


def run(capsys, args) -> tuple[int, str, str]:
    code = 0
    try:
        main(args)
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def check(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("initscope: ")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["report", "train", "phase", "spectrum"]),
       pairs=st.lists(st.tuples(st.sampled_from(OPTIONS), JUNK), max_size=3))
def test_random_option_values(capsys, command, pairs):
    args = [command, *SMALL]
    if command == "train":
        args += ["--steps", "2"]
    for option, value in pairs:
        if option in ("--depth", "--width", "--inputs", "--batch", "--time-steps"):
            continue  # kept small: the point is bad values, not big runs
        args += [option, value]
    code, _, err = run(capsys, args)
    check(code, err)
    event(f"exit {code}")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=40), st.from_regex(r"is1\.[A-Za-z0-9_-]{0,40}")))
def test_random_share_strings(capsys, text):
    check(*run(capsys, ["report", "--config", text, *SMALL])[::2])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=200))
def test_random_scene_files(tmp_path_factory, capsys, body):
    from initscope.scenes import SceneError, parse_scene

    try:
        parse_scene(body, "fuzz.toml")
    except SceneError as e:
        assert str(e).startswith("fuzz.toml") and "\n" not in str(e)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=200))
def test_random_theme_files(tmp_path_factory, body):
    from initscope.tui.themes import theme_from_toml

    path = tmp_path_factory.mktemp("themes") / "fuzz.toml"
    path.write_text(body, encoding="utf-8")
    try:
        theme_from_toml(path)
    except ValueError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("args", [["--nope"], ["report", "--format", "xml"], ["bench", "--repeats",
                                  "0"], ["serve", "--port", "0"], ["phase", "--format", "csv"],
                                  ["train", "--steps", "-3"], ["--scene", "/does/not/exist"]])
def test_malformed_command_lines(capsys, args):
    code, _, err = run(capsys, args)
    assert code == 2
    check(code, err)


HUGE = [["report", "--gain", "1e308"], ["report", "--std", "1e308"],
        ["report", "--scheme", "uniform", "--bound", "1e308"],
        ["report", "--bias", "normal", "--bias-value", "1e200"],
        ["report", "--arch", "residual", "--gain", "1e200"],
        ["report", "--arch", "rnn", "--gain", "1e200", "--time-steps", "3"],
        ["report", "--gain", "1e308", "--format", "json"],
        ["phase", "--activation", "relu", "--gain", "1e300"],
        ["train", "--gain", "1e300", "--steps", "3"]]


@pytest.mark.parametrize("args", HUGE, ids=lambda a: " ".join(a[1:]))
def test_huge_finite_values_say_overflow_and_never_raise(capsys, args):
    code, out, err = run(capsys, [*args, *SMALL])
    assert code == 0 and "Traceback" not in err, err
    if args[0] == "report":
        assert "overflow from layer 1" in out


@pytest.mark.parametrize("command", ["report", "train", "phase", "spectrum", "bench"])
def test_a_huge_memory_limit_is_refused_in_one_line(capsys, command):
    code, _, err = run(capsys, [command, *SMALL, "--memory-limit", "1e300"])
    assert code == 2 and "memory-limit must be at most 4096 GiB" in err
    check(code, err)


# TOML values of every type a hand-edited file might hold where another was meant
TOML_VALUES = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["1e308", "-1e308", "nan", "inf", "-inf", "0.0", "2.5", "1e-320"]),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(["[]", "[1, 2]", "[8.5, 4.0]", '["a"]', "{}", "{ a = 1 }", "[[1]]",
                     '"#ff0000"', '"ansi_red"', '"he_normal"', '"relu"']),
)
THEME_KEYS = ["name", "primary", "secondary", "foreground", "background", "dark",
              "luminosity_spread", "text_alpha", "ansi", "variables", "bogus"]
CONFIG_KEYS = ["depth", "width", "batch", "inputs", "seed", "gain", "scheme", "activation",
               "bias", "bias_value", "dtype", "lr", "steps", "optimizer", "memory_limit"]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(THEME_KEYS), TOML_VALUES), max_size=5),
       variables=st.lists(st.tuples(st.sampled_from(["histogram-bar", "sparkline-theory"]),
                                    TOML_VALUES), max_size=2))
def test_theme_files_with_values_of_every_type(tmp_path_factory, pairs, variables):
    from initscope.tui.themes import theme_from_toml

    lines = ['name = "fuzz"', 'primary = "#336699"']
    lines += [f"{k} = {v}" for k, v in dict(pairs).items() if k not in ("name", "primary",
                                                                         "variables")]
    if variables:
        lines += ["[variables]"] + [f"{k} = {v}" for k, v in dict(variables).items()]
    path = tmp_path_factory.mktemp("themes") / "fuzz.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        theme = theme_from_toml(path)
    except ValueError as e:
        assert "\n" not in str(e)
        event("refused")
        return
    theme.to_color_system().generate()  # what loads, Textual can show
    event("loaded")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), TOML_VALUES), max_size=3),
       train=st.one_of(st.none(), TOML_VALUES))
def test_scene_files_with_values_of_every_type(pairs, train):
    from initscope.scenes import SceneError, parse_scene

    values = ", ".join(f"{k} = {v}" for k, v in dict(pairs).items())
    text = f'title = "t"\n[[step]]\ncaption = "c"\nconfig = {{ {values} }}\n'
    if train is not None:
        text += f"train = {train}\n"
    try:
        scene = parse_scene(text, "fuzz.toml")
    except SceneError as e:
        assert str(e).startswith("fuzz.toml") and "\n" not in str(e)
        event("refused")
        return
    assert all(isinstance(s.config.depth, int) for s in scene.steps)  # typed, as a Config
    event("loaded")


COMPARE_KEYS = st.one_of(st.sampled_from(OPTIONS).map(lambda o: o.lstrip("-").replace("-", "_")),
                         st.sampled_from(["widths", "replace", "to_dict", "__class__",
                                          "__dict__", "fans", "", "depth ", " gain"]),
                         st.text(max_size=8))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sides=st.lists(st.lists(st.tuples(COMPARE_KEYS, JUNK), max_size=3), min_size=2,
                      max_size=2))
def test_random_compare_sides(capsys, sides):
    from initscope.sim import Config as Base
    from initscope.sim.parse import parse_overrides

    texts = [",".join(f"{k}={v}" for k, v in side) for side in sides]
    for text in texts:  # the core's parser: a Config, or one ConfigError
        try:
            parse_overrides(text, Base())
        except ValueError as e:
            assert "\n" not in str(e)
    # the command line (no terminal here: refused either way, in one line)
    code, _, err = run(capsys, ["--compare", *texts, *SMALL])
    assert code == 2
    check(code, err)
