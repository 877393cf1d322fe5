"""The shape of the code: the import contracts hold, and every architecture in the
registry is reachable from the CLI, the app's Network field and the docs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from initscope.cli import main
from initscope.sim.arch import ARCHS
from initscope.tui.widgets.selectors import FIELDS_BY_NAME

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the test extras")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as stop:
        return stop.code or 0
    return 0


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_architecture_runs_from_the_cli(arch, capsys):
    assert run_cli(["report", "--arch", arch, "--depth", "2", "--time-steps", "3", "--width",
                    "8", "--inputs", "8", "--batch", "16", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["arch"] == arch and len(data["layers"]) >= 2


def test_every_architecture_is_listed_by_the_cli_the_app_and_the_readme(capsys):
    assert run_cli(["archs"]) == 0
    listed = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    assert FIELDS_BY_NAME["arch"].choices == tuple(ARCHS)
    for name, arch in ARCHS.items():
        assert name in listed and arch.description in listed
        assert f"`{name}`" in readme, f"the README does not describe {name}"
