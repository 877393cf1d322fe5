"""Layout snapshots at 80x24 and 160x50 (fixed seed, no timings on screen).
Refresh after an intended layout change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from initscope.sim import Config
from initscope.tui.app import InitScopeApp
from tests.tui.helpers import settle


def _app(**changes) -> InitScopeApp:
    return InitScopeApp(Config(**changes), timings=False)


async def _ready(pilot) -> None:
    await settle(pilot.app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_course_demo_layout(snap_compare, size):
    assert snap_compare(_app(), terminal_size=size, run_before=_ready)


def test_he_relu_gradients_layout(snap_compare):
    async def view_gradients(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("v", "v")
        await settle(pilot.app, pilot)

    app = _app(scheme="he_normal", activation="relu")
    assert snap_compare(app, terminal_size=(160, 50), run_before=view_gradients)
