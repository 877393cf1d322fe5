"""The headless commands, through the real entry point (exit codes included)."""

import csv
import io
import json

import numpy as np
import pytest

from initscope.cli import main
from initscope.sim import Config, Simulator
from initscope.sim.activations import ACTIVATIONS
from initscope.sim.schemes import SCHEMES

TINY = ["--depth", "3", "--width", "16", "--inputs", "8", "--batch", "32"]


def call(capsys, *args):
    code = 0
    try:
        main(list(args))
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_json_has_the_documented_shape(capsys):
    code, out, _ = call(capsys, "report", "--format", "json", *TINY, "--activation", "relu")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"config", "layers", "overflow_layer", "warnings"}
    assert data["config"]["activation"] == "relu" and data["overflow_layer"] is None
    assert [lay["index"] for lay in data["layers"]] == [1, 2, 3]
    for lay in data["layers"]:
        for q in ("preactivation", "activation", "gradient", "weight_gradient"):
            assert set(lay[q]) >= {"mean", "std", "min", "max", "histogram"}
            assert len(lay[q]["histogram"]["edges"]) == len(lay[q]["histogram"]["counts"]) + 1
        assert {"dead_fraction", "saturated_fraction", "theory"} <= set(lay)
    from initscope.sim.threads import blas_threads

    assert data["environment"]["blas_threads"] == blas_threads() >= 1


def test_report_numbers_equal_the_core(capsys):
    _, out, _ = call(capsys, "report", "--format", "json", *TINY, "--scheme", "he_uniform",
                     "--seed", "7")
    data = json.loads(out)
    cfg = Config(depth=3, width=(16,), inputs=8, batch=32, scheme="he_uniform", seed=7)
    expected = json.loads(json.dumps(Simulator().run(cfg).to_dict()))
    assert data.pop("environment")["blas_threads"] >= 1
    assert data == expected


def test_report_csv_and_table(capsys):
    code, out, _ = call(capsys, "report", "--format", "csv", *TINY)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["layer"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["activation_std"]) > 0
    code, out, _ = call(capsys, "report", *TINY)
    assert code == 0 and "act std" in out and len(out.strip().splitlines()) >= 5


def test_overflow_report_exits_zero_and_names_the_layer(capsys):
    code, out, err = call(capsys, "report", "--format", "json", "--scheme", "normal", "--std", "1",
                          "--activation", "relu", "--depth", "50")
    data = json.loads(out)
    assert code == 0 and err == ""
    assert f"overflow from layer {data['overflow_layer']}" in data["warnings"]


@pytest.mark.parametrize("args,words", [
    (["--depth", "0"], "depth"),
    (["--depth", "abc"], "depth"),
    (["--scheme", "nope"], "unknown scheme"),
    (["--std", "-1"], "std"),
    (["--width", "10,x"], "width"),
    (["--mode", "sideways"], "mode"),
    (["--width", "8192", "--batch", "65536", "--depth", "100"], "GiB"),
    (["--nonsense"], "nonsense"),
])
def test_bad_values_exit_2_with_one_line(capsys, args, words):
    code, out, err = call(capsys, "report", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and words in err
    assert "Traceback" not in err


def test_schemes_and_activations_list_every_name(capsys):
    code, out, _ = call(capsys, "schemes")
    assert code == 0 and all(name in out for name in SCHEMES)
    code, out, _ = call(capsys, "activations")
    assert code == 0 and all(name in out for name in ACTIVATIONS)


def test_bench_prints_ratios(capsys):
    code, out, _ = call(capsys, "bench", "--repeats", "1", *TINY)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["case", "median", "ms"]
    floor = next(line for line in lines if line.startswith("floor"))
    assert float(floor.split()[2]) == 1.0


def test_through_typers_runner():
    from typer.testing import CliRunner

    from initscope.cli import app

    result = CliRunner().invoke(app, ["report", "--format", "json", *TINY, "--bias", "constant",
                                      "--bias-value", "0.1"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["config"]["bias"] == "constant" and data["config"]["bias_value"] == 0.1
    assert data["layers"][0]["preactivation"]["mean"] == pytest.approx(0.1, abs=0.05)


def test_train_json_has_the_documented_shape(capsys):
    code, out, _ = call(capsys, "train", "--format", "json", "--steps", "4", *TINY,
                        "--scheme", "constant", "--bias", "zeros", "--task", "spiral")
    assert code == 0
    data = json.loads(out)
    assert [s["step"] for s in data["steps"]] == [1, 2, 3, 4]
    for step in data["steps"]:
        assert isinstance(step["loss"], float)
        assert len(step["layers"]) == 3
        for lay in step["layers"]:
            assert lay["distinct_units"] == 1
            assert {"dead_units", "activation_std", "gradient_std", "saturated_fraction",
                    "gradient_norm", "update_ratio", "weight_change", "heat"} <= set(lay)
            assert len(lay["heat"]) == len(data["heat_log10_edges"]) - 1
    assert set(data) == {"config", "heat_log10_edges", "steps", "initial_loss", "stopped",
                         "suggested_lr", "warnings"}
    assert data["initial_loss"]["expected"] == pytest.approx(0.6931, abs=1e-4)  # ln 2


def test_train_table_csv_and_bad_values(capsys):
    code, out, _ = call(capsys, "train", "--steps", "5", "--preset", "toy")
    assert code == 0 and "output, 5 steps of SGD" in out
    code, out, _ = call(capsys, "train", "--steps", "2", "--format", "csv", *TINY)
    assert code == 0 and out.splitlines()[0].startswith("step,loss,layer,distinct_units")
    assert len(out.splitlines()) == 1 + 2 * 3
    for bad in (["--lr", "0"], ["--steps", "0"], ["--task", "mnist"]):
        code, _, err = call(capsys, "train", *bad, *TINY)
        assert code == 2 and len(err.strip().splitlines()) == 1


def test_phase_json_and_plot(capsys):
    code, out, _ = call(capsys, "phase", "--activation", "tanh", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["activation"] == "tanh"
    assert len(data["chi_1"]) == len(data["sigma_b2"])
    assert len(data["chi_1"][0]) == len(data["sigma_w2"])
    first = data["critical_line"][0]
    assert set(first) == {"sigma_b2", "sigma_w2", "fixed_point"} and first["fixed_point"]
    assert first["sigma_b2"] == 0 and first["sigma_w2"] == pytest.approx(1.0, rel=0.01)
    assert data["config"]["phase"] == "ordered"  # the course demo, N(0, 0.01^2)
    code, out, _ = call(capsys, "phase", "--preset", "he_relu", "--activation", "relu")
    assert code == 0 and "χ1 = 1; q* unbounded" in out and "(critical)" in out


def test_report_rnn_and_residual_and_spectrum(capsys):
    code, out, _ = call(capsys, "report", "--arch", "rnn", "--time-steps", "4", "--width", "8",
                        "--inputs", "8", "--batch", "16", "--format", "json")
    data = json.loads(out)
    assert code == 0 and [s["step"] for s in data["steps"]] == [1, 2, 3, 4]
    assert all(s["hidden_norm"] > 0 and s["gradient_norm"] > 0 for s in data["steps"])
    code, out, _ = call(capsys, "report", "--arch", "residual", "--branch", "zero_last",
                        "--depth", "3", "--width", "16", "--batch", "32", "--format", "json")
    assert code == 0 and len(json.loads(out)["layers"]) == 3
    code, out, _ = call(capsys, "spectrum", "--scheme", "orthogonal", "--activation", "linear",
                        "--width", "16", "--inputs", "16", "--depth", "3", "--format", "json")
    data = json.loads(out)
    assert code == 0 and len(data["singular_values"]) == 3
    assert all(v == pytest.approx(1.0) for row in data["singular_values"] for v in row)
    code, _, err = call(capsys, "spectrum", "--width", "1500")
    assert code == 2 and "up to 1000" in err
    code, _, err = call(capsys, "train", "--arch", "rnn", "--steps", "1")
    assert code == 2 and "plain network" in err


def test_compare_option_refuses_bad_sides(capsys):
    code, _, err = call(capsys, "--compare", "scheme=he_normal", "depth=0")
    assert code == 2 and "depth must be between" in err and len(err.strip().splitlines()) == 1


def test_spp_gives_the_runs_own_numbers_in_every_format(capsys):
    args = ["--arch", "residual", "--norm", "nf", "--activation", "relu", "--scheme",
            "he_normal", "--depth", "4", "--width", "64", "--batch", "128"]
    cfg = Config(arch="residual", norm="nf", activation="relu", scheme="he_normal", depth=4,
                 width=(64,), batch=128)
    expected = Simulator().run(cfg).spp
    code, out, _ = call(capsys, "spp", "--format", "json", *args)
    data = json.loads(out)
    assert code == 0 and [r["block"] for r in data["spp"]] == [1, 2, 3, 4]
    for got, want in zip(data["spp"], expected):
        assert got["variance"] == want.variance and got["squared_mean"] == want.squared_mean
        assert got["theory"]["variance"] == pytest.approx(want.predicted[1])
    code, out, _ = call(capsys, "spp", "--format", "csv", *args)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and float(rows[3]["branch_variance"]) == expected[3].branch_variance
    code, out, _ = call(capsys, "spp", *args)
    assert code == 0 and out.splitlines()[2].split()[:4] == ["block", "sq", "mean", "theory"]
    assert len(out.splitlines()) == 3 + 4
    code, _, err = call(capsys, "spp", *TINY)
    assert code == 2 and "spp measures residual blocks: add --arch residual" in err


def test_a_conv_network_brings_its_batch_unless_one_is_given(capsys):
    code, out, _ = call(capsys, "report", "--arch", "conv", "--depth", "2", "--format", "json")
    assert code == 0 and json.loads(out)["config"]["batch"] == 32
    code, out, _ = call(capsys, "report", "--arch", "conv", "--depth", "2", "--batch", "8",
                        "--format", "json")
    assert code == 0 and json.loads(out)["config"]["batch"] == 8
    code, _, err = call(capsys, "report", "--scheme", "dirac")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "dirac is a convolution kernel's init" in err


def test_spp_on_residual_conv_blocks(capsys):
    args = ("--arch", "resconv", "--depth", "3", "--channels", "8", "--image", "6",
            "--norm", "batch", "--scheme", "he_normal", "--activation", "relu")
    expected = Simulator().run(Config(arch="resconv", depth=3, channels=8, image=6,
                                      norm="batch", scheme="he_normal", activation="relu",
                                      batch=32)).spp
    code, out, _ = call(capsys, "spp", "--format", "json", *args)
    data = json.loads(out)
    assert code == 0 and [r["variance"] for r in data["spp"]] == [r.variance for r in expected]
    assert data["config"]["batch"] == 32
    code, out, _ = call(capsys, "spp", *args)
    assert code == 0 and "over the batch and the pixels" in out


def test_meters_give_the_runs_own_numbers_in_every_format(capsys):
    from initscope.sim.arch import with_arch

    args = ["--depth", "3", "--width", "64", "--tokens", "16", "--batch", "2",
            "--norm-at", "after"]
    cfg = with_arch(Config(), "transformer").replace(depth=3, width=(64,), tokens=16, batch=2,
                                                     norm_at="after")
    expected = Simulator().run(cfg)
    code, out, _ = call(capsys, "meters", "--format", "json", *args)
    data = json.loads(out)
    assert code == 0 and data["config"]["arch"] == "transformer"  # this command's default
    assert data["config"]["scheme"] == "gpt2" and data["config"]["norm"] == "layer"
    assert data["input_similarity"] == expected.input_similarity
    for got, want in zip(data["meters"], expected.meters, strict=True):
        assert got["entropy"] == want.entropy and got["similarity"] == want.similarity
        assert got["grad_norms"] == want.grad_norms
        assert got["theory"]["logit_std"] == pytest.approx(want.predicted["logit_std"])
    code, out, _ = call(capsys, "meters", "--format", "csv", *args)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and float(rows[2]["grad_mlp"]) == expected.meters[2].grad_norms["mlp"]
    assert float(rows[0]["logit_std_theory"]) == expected.meters[0].predicted["logit_std"]
    code, out, _ = call(capsys, "meters", *args)
    lines = out.splitlines()
    assert code == 0 and lines[2].split()[:3] == ["block", "stream", "var"]
    assert len(lines) == 3 + 3
    code, out, _ = call(capsys, "report", "--arch", "transformer", *args, "--format", "json")
    data = json.loads(out)
    assert code == 0 and len(data["layers"]) == 3 and len(data["meters"]) == 3
    code, out, _ = call(capsys, "report", "--arch", "transformer", *args)
    assert code == 0 and "meters per block" in out
    code, _, err = call(capsys, "meters", "--arch", "plain")
    assert code == 2 and "meters measure transformer blocks" in err
    code, _, err = call(capsys, "meters", "--heads", "3")
    assert code == 2 and "heads must divide the width" in err
    code, _, err = call(capsys, "report", "--scheme", "gpt2")
    assert code == 2 and "gpt2 is a transformer recipe" in err


def test_sweep_in_every_format(capsys):
    args = ("sweep", "--widths", "64,128,256", "--steps", "1", "--seeds", "1", "--batch", "32",
            "--depth", "2")
    code, out, _ = call(capsys, *args, "--format", "json", "--param", "mup")
    data = json.loads(out)
    assert code == 0 and data["kind"] == "width" and data["param"] == "mup"
    assert data["sizes"] == [64, 128, 256] and data["layers"] == ["L1", "L2", "output"]
    assert len(data["points"]) == 3 and len(data["points"][0]["l1"]) == 2  # steps 0 and 1
    assert set(data["slopes"][1]) == {"step", "L1", "L2", "output"}
    assert data["config"]["activation"] == "relu" and data["config"]["optimizer"] == "adam"
    code, out, _ = call(capsys, *args, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 * 2 * 3 and rows[0]["layer"] == "L1"
    code, out, _ = call(capsys, *args)
    assert code == 0 and out.splitlines()[2].split() == ["step", "layer", "64", "128", "256",
                                                         "slope"]
    code, out, _ = call(capsys, *args, "--format", "plot")
    assert code == 0 and "step 1: mean |h| against width (slopes: a L1" in out
    code, out, _ = call(capsys, "sweep", "--depths", "2,4", "--width", "16", "--steps", "0",
                        "--seeds", "1", "--batch", "16", "--format", "json")
    assert code == 0 and [r["branch"] for r in json.loads(out)] == ["1", "1/sqrt(L)"]
    code, out, _ = call(capsys, "params")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[:3]] == \
        ["sp", "ntk", "mup"] and "hidden: that init's variance / r, lr / r (Adam)" in out
    code, _, err = call(capsys, "sweep", "--widths", "64")
    assert code == 2 and "at least two different widths" in err
    code, _, err = call(capsys, "sweep", "--widths", "64,x")
    assert code == 2 and "widths must be a comma list" in err


def test_inspect_a_checkpoint_the_tests_make(capsys, tmp_path):
    from tests.sim.test_inspection import _model

    path = tmp_path / "model.npz"
    np.savez(path, **_model())
    code, out, _ = call(capsys, "inspect", str(path))
    lines = out.splitlines()
    assert code == 0 and lines[0].endswith("5 tensors; weights: 1 he_normal, 1 torch default "
                                           "(Linear, Conv)")
    assert any(line.startswith("fc1.weight") and line.endswith("he_normal") for line in lines)
    assert "a chain of 2 dense layers (relu, the last linear)" in out
    code, out, _ = call(capsys, "inspect", str(path), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"] == {"he_normal": 1, "torch default (Linear, Conv)": 1}
    assert [t["fan_in"] for t in data["tensors"] if t["name"] == "fc1.weight"] == [64]
    code, out, _ = call(capsys, "inspect", str(path), "--run")
    assert code == 0 and "the chain's own weights / relu, depth 1, width 256" in out
    path.write_bytes(path.read_bytes()[:200])
    code, _, err = call(capsys, "inspect", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "model.npz" in err
    code, _, err = call(capsys, "inspect", str(tmp_path / "model.onnx"))
    assert code == 2 and "not a checkpoint initscope reads" in err
    np.savez(path, **_model())
    code, _, err = call(capsys, "inspect", str(path), "--memory-limit", "0.00001")
    assert code == 2 and "over the memory budget" in err
