"""The transformer in the app: its fields, its schemes and norms by key, the meters view
at 80x24, the code dialog and compare."""

from __future__ import annotations

from initscope.report import fmt
from initscope.sim import Config
from initscope.sim.arch import with_arch
from initscope.tui.app import InitScopeApp
from initscope.tui.display import meter_cell
from tests.tui.helpers import SMALL, core_rows, main, pane, screen_rows, settle, wait_for

TINY = with_arch(Config(), "transformer").replace(width=(64,), depth=4, tokens=16, batch=4)


def diagram(app) -> str:
    return str(app.query_one(".diagram").render())


async def test_the_network_key_brings_the_transformer_and_its_fields():
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        main(app).propose(arch="resconv")
        await settle(app, pilot)
        app.query_one("#sel-arch").focus()
        await pilot.press("right")
        await settle(app, pilot)
        cfg = pane(app).config
        # the transformer's own defaults; a width and batch set by hand stay
        assert (cfg.arch, cfg.scheme, cfg.norm, cfg.activation) == \
            ("transformer", "gpt2", "layer", "gelu")
        assert cfg.width == (64,) and cfg.batch == 128
        for field in ("tokens", "heads", "mlp_ratio", "mask", "correlation", "skips"):
            assert app.query_one(f"#sel-{field}").display, field
        assert screen_rows(app) == core_rows(cfg)
        await pilot.press("right")  # and back to the plain stack, its defaults again
        await settle(app, pilot)
        cfg = pane(app).config
        assert (cfg.arch, cfg.scheme, cfg.norm, cfg.batch) == ("plain", "normal", "none", 128)
        assert not app.query_one("#sel-tokens").display


async def test_keys_step_the_recipes_and_the_norms_a_transformer_takes():
    app = InitScopeApp(TINY.replace(scheme="flax_dense"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        seen = set()
        for _ in range(8):
            await pilot.press("s")
            await settle(app, pilot)
            seen.add(pane(app).config.scheme)
        # past flax_dense: the kernel-only schemes are skipped, the recipes are not
        assert {"gpt2", "deepnet", "small_init", "mup", "zero_out"} <= seen
        assert not seen & {"dirac", "delta_orthogonal", "lsuv"}
        norms = []
        for _ in range(3):
            await pilot.press("N")
            await settle(app, pilot)
            norms.append(pane(app).config.norm)
        assert sorted(norms) == ["layer", "none", "rms"]  # never batch or nf
    app = InitScopeApp(SMALL.replace(scheme="flax_dense"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        assert pane(app).config.scheme == "lsuv"  # the recipes are skipped on a plain stack


async def test_the_meters_view_fits_80x24_and_follows_the_keys():
    app = InitScopeApp(TINY)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("M")
        await settle(app, pilot)
        assert pane(app).view == "meters"
        meters = pane(app).shown.result.meters
        shown = diagram(app)
        assert "entropy" in shown and "|dW| q" in shown  # both tables fit
        assert fmt(meters[0].entropy, 3) in shown and fmt(meters[-1].similarity, 3) in shown
        assert meter_cell(meters[0].grad_norms["mlp"]) in shown
        assert max(len(line) for line in shown.splitlines()) <= 80
        main(app).propose(skips="off", depth=12)
        await settle(app, pilot)
        last = pane(app).shown.result.meters[-1]
        assert last.similarity > 0.9 and fmt(last.similarity, 3) in diagram(app)
    app = InitScopeApp(SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("M")
        await settle(app, pilot)
        assert "the meters measure transformer blocks" in diagram(app)


async def test_the_code_dialog_gives_the_whole_stack():
    from initscope.tui.screens import CodeScreen

    app = InitScopeApp(TINY)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CodeScreen))
        assert "nn.TransformerEncoderLayer" in app.screen.snippets["pytorch"]
        assert "def block(p, x)" in app.screen.snippets["jax"]


async def test_compare_shows_pre_and_post_norm_meters_side_by_side():
    from initscope.tui.scope.compare import CompareScreen

    app = InitScopeApp(TINY, compare=(TINY, TINY.replace(norm_at="after")))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        await settle(app, pilot, screen=screen)
        await pilot.press("M")
        await settle(app, pilot, screen=screen)
        for side in screen.panes.values():
            assert side.view == "meters"
            first = side.shown.result.meters[0]
            assert fmt(first.logit_std, 3) in str(side.query_one(".diagram").render())
