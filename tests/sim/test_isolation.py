import subprocess
import sys


def test_core_imports_no_ui_or_cli_packages():
    code = (
        "import sys, initscope.sim, initscope.sim.network, initscope.sim.theory;"
        "bad = [m for m in ('textual', 'plotext', 'rich', 'typer', 'click') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_headless_report_does_not_load_textual():
    code = (
        "import sys; from initscope.cli import main\n"
        "try:\n"
        "    main(['report', '--depth', '1', '--width', '4', '--inputs', '3', '--batch', '2'])\n"
        "except SystemExit:\n    pass\n"
        "print('textual' in sys.modules, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().endswith("False")
