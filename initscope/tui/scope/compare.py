"""Compare: two configs side by side, A | B, on the same random draws.

Both panes share one simulator, so with the same seed they share every random
number (common random numbers) and differ only by what their configs change. The
selectors and every key that changes a config act on the active side (`w`
switches); a new seed goes to both sides, so they keep the same draws; a display
setting (view, range, bins) goes to both. Escape hands the active side's config
back to the screen underneath.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from initscope.sim import Config
from initscope.sim.remote import AnySimulator, shared_simulator
from initscope.tui.scope.editing import ScopeScreen
from initscope.tui.scope.pane import ScopePane
from initscope.tui.screens import ClosesOnce
from initscope.tui.widgets.footer import KeyFooter
from initscope.tui.widgets.selectors import SelectorPane

SIDES = ("A", "B")
SHARED_FIELDS = ("seed",)  # changed on both sides at once: the draws stay the same
# the phase diagram and the spectrum need the whole width; the signal propagation plot
# is drawn once per side, as Brock et al. set two networks' curves side by side, and so
# are a transformer's meters (their tables fit a side's width)
COMPARE_VIEWS = ("activation", "preactivation", "gradient", "weight_gradient", "channel_mean",
                 "meters", "spp")


class CompareScreen(ClosesOnce, ScopeScreen):
    """A | B. Escape goes back to one network with the active side's config."""

    DEFAULT_CSS = """
    CompareScreen #compare-main {
        height: 1fr;
    }
    CompareScreen .compare-side {
        width: 1fr;
    }
    CompareScreen .side-title {
        height: 1;
        padding: 0 1;
        color: $text-muted;
        text-style: bold;
    }
    CompareScreen .side-title.active {
        color: $accent;
        background: $boost;
    }
    CompareScreen #compare-status {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """

    BINDINGS = [
        Binding("w", "switch_side", "Switch side", id="compare-switch",
                tooltip="which side the selectors and keys change"),
        Binding("escape", "leave", "Back", id="compare-back",
                tooltip="back to one network (the active side)"),
        Binding("pagedown", "page(1)", "Next layers", id="compare-page-down", show=False),
        Binding("pageup", "page(-1)", "Previous layers", id="compare-page-up", show=False),
    ]

    def __init__(self, a: Config, b: Config, sim: AnySimulator | None = None,
                 view: str = "activation") -> None:
        super().__init__()
        sim = sim or shared_simulator()
        view = view if view in COMPARE_VIEWS else "activation"
        self.panes = {side: ScopePane(cfg, sim, view=view, id=f"pane-{side}")
                      for side, cfg in zip(SIDES, (a, b))}
        self.active = "A"

    @property
    def sides(self) -> dict[str, Config]:
        return {side: pane.config for side, pane in self.panes.items()}

    @property
    def active_pane(self) -> ScopePane:
        return self.panes[self.active]

    def panes_for(self, changes: dict) -> list[ScopePane]:
        if set(changes) & set(SHARED_FIELDS):
            return list(self.panes.values())
        return [self.active_pane]

    def display_panes(self) -> list[ScopePane]:
        return list(self.panes.values())

    def set_view(self, view: str) -> None:
        if view not in COMPARE_VIEWS:  # these diagrams need the whole width
            self.notify("compare shows histograms and the signal propagation plot: Esc "
                        "for the other diagrams", timeout=3)
            return
        super().set_view(view)

    def action_cycle_view(self, delta: int) -> None:
        now = COMPARE_VIEWS.index(self.active_pane.view)
        super().set_view(COMPARE_VIEWS[(now + delta) % len(COMPARE_VIEWS)])

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-main"):
            yield SelectorPane(self.panes["A"].config, training=False)
            for side in SIDES:
                with Vertical(id=f"side-{side}", classes="compare-side"):
                    yield Static("", classes="side-title")
                    yield self.panes[side]
        yield Static("", id="compare-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#sel-scheme").focus()
        self._titles()

    def propose(self, **changes) -> bool:
        applied = super().propose(**changes)
        self._titles()
        return applied

    def action_switch_side(self) -> None:
        self.active = "B" if self.active == "A" else "A"
        self.query_one(SelectorPane).config = self.active_pane.config
        self._titles()

    def action_page(self, delta: int) -> None:
        for pane in self.panes.values():
            pane.grid.turn(delta)

    def action_leave(self) -> None:
        self.dismiss(self.active_pane.config)

    def on_scope_pane_failed(self, message: ScopePane.Failed) -> None:
        self.say_error(message.error)

    def _titles(self) -> None:
        for side in SIDES:
            c = self.panes[side].config
            mark = "▶ " if side == self.active else "  "
            title = self.query_one(f"#side-{side} .side-title", Static)
            title.update(f"{mark}{side}: {c.scheme} · {c.activation} · gain {c.gain:g}")
            title.set_class(side == self.active, "active")
        self.query_one("#compare-status", Static).update(
            f"Compare A | B on the same draws (seed {self.panes['A'].config.seed}) · keys and "
            f"selectors change side {self.active} · w switches · Esc back")

    def settled(self) -> bool:
        return all(pane.settled() for pane in self.panes.values())
