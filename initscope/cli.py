"""Command line: `initscope` opens the app; `report`, `schemes`, `activations`, `bench`
work headless. Every config field is an option of the same name on every command
that runs a config (the list is derived from `Config`), and the app is imported only
when it is opened, so headless commands never load Textual.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import os
import re
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import click
import typer

from initscope.ascii import AsciiStream
from initscope.sim.config import Config, ConfigError, option_name

# Typer escapes the "[default: ...]" of every option for an HTML export, even when
# help is plain text (typer/core.py, `escape_before_html_export` under HAS_RICH), and
# the terminal shows "\\[default: table]": format help as plain click does instead.
typer.core.HAS_RICH = False

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="See what weight initialization does to a neural network.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

FORMATS = ("table", "json", "csv")
TableFormat = Annotated[str, typer.Option("--format", click_type=click.Choice(FORMATS),
                                          help="table, json or csv")]
PlotFormat = Annotated[str, typer.Option("--format", click_type=click.Choice(("plot", "json")),
                                         help="plot (in the terminal) or json")]


class UsageProblem(Exception):
    """A bad value: printed as one line, exit code 2."""


MEMORY_HINT = " (or raise --memory-limit)"



def cut_long_words(message: str, longest: int = 60) -> str:
    """`message` with any word (a quoted argument, say) over `longest` characters cut to
    its start and its length: a 100 KB argument is not echoed back whole."""
    return re.sub(rf"\S{{{longest + 1},}}",
                  lambda m: f"{m.group()[:40]}…({len(m.group())} characters)", message)


def refused(error: Exception) -> UsageProblem:
    """The core's one-line refusal, with the flag that changes it on the command line."""
    from initscope.sim import MemoryBudgetError

    return UsageProblem(str(error) + (MEMORY_HINT if isinstance(error, MemoryBudgetError)
                                      else ""))


def _registry_choices() -> dict[str, list[str]]:
    """Fields whose values are the names in a short registry (the long ones, schemes
    and activations, are checked by the core, which names the choices)."""
    from initscope.sim.arch import ARCHS

    return {"arch": list(ARCHS)}


def _config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per config field, annotated as a typer option."""
    params = []
    registries = _registry_choices()
    for f in dataclasses.fields(Config):
        kind = str if f.name == "width" else f.type
        kind = {"int": int, "float": float, "str": str}.get(kind, kind)
        extra = {}
        choices = f.metadata.get("choices") or registries.get(f.name)
        if choices:
            extra["click_type"] = click.Choice(choices)
        opt = typer.Option(option_name(f), help=f.metadata["help"], show_default=False, **extra)
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[kind | None, opt],
        ))
    return params


def config_from_options(values: dict[str, Any], preset: str | None = None,
                        share: str | None = None, defaults: dict | None = None) -> Config:
    """A validated Config from option values (None: the default, or the command's own
    in `defaults`), on top of a preset or a share string."""
    from initscope.presets import PRESETS_BY_NAME
    from initscope.sim.parse import config_from
    from initscope.sim.share import decode

    # "" is refused, not the defaults; a command's network brings its own defaults
    base = decode(share) if share is not None else config_from(defaults or {})
    if preset is not None:
        if preset not in PRESETS_BY_NAME:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: "
                              f"{', '.join(PRESETS_BY_NAME)}")
        base = PRESETS_BY_NAME[preset].apply(base)
    return config_from({k: v for k, v in values.items() if v is not None}, base)


def _preset_names() -> list[str]:
    from initscope.presets import PRESETS

    return [p.name for p in PRESETS]


def _show_version(value: bool) -> None:
    if value:
        from initscope import __version__

        typer.echo(f"initscope {__version__}")
        raise typer.Exit()


def with_config(func: Callable | None = None, *, defaults: dict | None = None) -> Callable:
    """Give a command every config option; it receives them as one `config`. A command
    with `defaults` starts from them instead of the config's own."""
    if func is None:
        return functools.partial(with_config, defaults=defaults)
    names = [f.name for f in dataclasses.fields(Config)]
    sig = inspect.signature(func)
    wants_preset = "preset" in sig.parameters
    # the module's annotations are strings (postponed): give typer the real objects
    hints = typing.get_type_hints(func, include_extras=True)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in sig.parameters.values() if p.name not in ("config", "preset")]

    @functools.wraps(func)
    def wrapper(**kwargs):
        values = {n: kwargs.pop(n) for n in names}
        preset = kwargs.pop("preset")
        share = kwargs.pop("share")
        if wants_preset:
            kwargs["preset"] = preset
        try:
            kwargs["config"] = config_from_options(values, preset, share, defaults)
        except ConfigError as e:
            raise UsageProblem(str(e)) from None
        return func(**kwargs)

    preset = inspect.Parameter(
        "preset", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[str | None, typer.Option(
            "--preset", help=f"start from a named preset ({', '.join(_preset_names())}); "
                             "options override it", show_default=False)],
    )
    share = inspect.Parameter(
        "share", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[str | None, typer.Option(
            "--config", help="a share string (from the app's `c` key): the whole config; "
                             "other options override it", show_default=False)],
    )
    wrapper.__signature__ = sig.replace(
        parameters=own + [preset, share] + _config_parameters())
    return wrapper


@app.callback()
@with_config
def main_callback(
    ctx: typer.Context,
    compare: Annotated[tuple[str, str] | None, typer.Option(
        "--compare", help='two sides A | B, each name=value options on top of the config: '
                          '--compare "scheme=xavier_normal" "scheme=he_normal"')] = None,
    scene: Annotated[str | None, typer.Option(
        "--scene", help="step through a scene: a built-in name (initscope scenes) or a "
                        ".toml file")] = None,
    ascii_only: Annotated[bool, typer.Option(
        "--ascii", help="print only ASCII, on any command (automatic where the terminal "
                        "cannot show Unicode; also INITSCOPE_ASCII=1)")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="print the version and exit")] = False,
    theme: Annotated[str | None, typer.Option(
        "--theme", help="initscope-dark (default), initscope-light, projector, sixteen, a file "
                        "in ~/.config/initscope/themes, or any Textual theme")] = None,
    *,
    config: Config,
) -> None:
    """With no command: open the app on the given config (the course demo by default)."""
    if ctx.invoked_subcommand is not None:
        return
    from initscope.sim import MemoryBudgetError
    from initscope.sim.budget import check_budget

    try:
        check_budget(config)
    except MemoryBudgetError as e:
        raise refused(e) from None
    loaded = None
    if scene is not None:
        from initscope.scenes import SceneError, load_scene

        try:
            loaded = load_scene(scene)
        except SceneError as e:
            raise UsageProblem(str(e)) from None
    sides = None
    if compare is not None:
        from initscope.sim.parse import parse_overrides

        try:
            sides = tuple(parse_overrides(text, config) for text in compare)
            for side in sides:
                check_budget(side)
        except (ConfigError, MemoryBudgetError) as e:
            raise refused(e) from None
    if not has_terminal():
        raise UsageProblem("the app needs a terminal (standard input and output are not "
                           "one here): in a script, use `initscope report` for the numbers")
    from initscope.tui.app import InitScopeApp

    # ascii: the terminal cannot show Unicode, or it was asked for (--ascii, INITSCOPE_ASCII)
    app = InitScopeApp(config=config, theme_name=theme, scene=loaded, compare=sides,
                       ascii_only=isinstance(sys.stdout, AsciiStream))
    app.run()
    leave_now(app.return_code or 0)


def has_terminal() -> bool:
    """Whether the app can draw and read keys: a terminal on both ends, or the web
    driver that `initscope serve` starts it with. Without one, Textual would spin."""
    if os.environ.get("TEXTUAL_DRIVER"):
        return True
    return sys.stdin.isatty() and sys.stdout.isatty()


def leave_now(code: int) -> NoReturn:
    """Exit without waiting for runs still going in background threads: a quit must be
    instant, and the interpreter's exit would wait for a long layer to end, or hang in
    OpenBLAS's exit handler when a matmul was cut short. The terminal is restored by
    now, and nothing else is left to write."""
    from initscope.sim.remote import close_shared

    close_shared()  # the core's worker process holds the draws: end it now
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run_or_fail(cfg: Config):
    from initscope.sim import MemoryBudgetError, Simulator

    try:
        return Simulator().run(cfg)
    except (ConfigError, MemoryBudgetError) as e:
        raise refused(e) from None


@app.command()
@with_config
def report(
    format: TableFormat = "table",
    bins: Annotated[int, typer.Option("--bins", min=2, max=200,
                                      help="histogram bins in json and csv, 2-200")] = 30,
    x_range: Annotated[str, typer.Option(
        "--range", click_type=click.Choice(("shared", "layer")),
        help="histogram x-range: shared across layers or per layer")] = "shared",
    *,
    config: Config,
) -> None:
    """Run one config and print every layer's statistics."""
    from initscope.report import render_report

    result = _run_or_fail(config)
    typer.echo(render_report(result, format, bins, x_range == "shared"), nl=False)


@app.command()
@with_config
def spp(
    format: TableFormat = "table",
    *,
    config: Config,
) -> None:
    """The signal propagation plot of a residual network (Brock, De, Smith 2021): per
    block, the average squared channel mean and channel variance of the stream, and the
    residual branch's channel variance before it joins the skip."""
    from initscope.report import render_spp
    from initscope.sim.arch import ARCHS

    if not ARCHS[config.arch].blocks:
        blocks = " or ".join(a.name for a in ARCHS.values() if a.blocks)
        raise refused(ConfigError(f"spp measures residual blocks: add --arch {blocks}"))
    typer.echo(render_spp(_run_or_fail(config), format), nl=False)


@app.command()
@with_config(defaults={"arch": "transformer"})
def meters(
    format: TableFormat = "table",
    *,
    config: Config,
) -> None:
    """A transformer's meters per block: the stream's variance, each branch's variance
    before it joins the stream, attention's entropy and logits' std, the tokens' mean
    cosine similarity, and every parameter group's gradient norm (--arch transformer
    is the default here)."""
    from initscope.report import render_meters
    from initscope.sim.arch import ARCHS

    if not ARCHS[config.arch].attends:
        raise refused(ConfigError("meters measure transformer blocks: add --arch transformer"))
    typer.echo(render_meters(_run_or_fail(config), format), nl=False)


SWEEP_DEFAULTS = {"scheme": "he_normal", "activation": "relu", "depth": 4, "batch": 256,
                  "inputs": 64, "optimizer": "adam", "steps": 3, "width": (128,)}
SweepFormat = Annotated[str, typer.Option(
    "--format", click_type=click.Choice(("table", "json", "csv", "plot")),
    help="table, json, csv or plot (log-log, in the terminal)")]


def _sizes(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise UsageProblem(f"{name} must be a comma list of whole numbers, not {text!r}") \
            from None


@app.command()
@with_config(defaults=SWEEP_DEFAULTS)
def sweep(
    widths: Annotated[str, typer.Option(
        help="the widths to train, a comma list")] = "64,128,256,512,1024",
    depths: Annotated[str | None, typer.Option(
        help="a depth sweep instead: residual stacks of these depths (at --width), "
             "branch multipliers 1 and 1/sqrt(L)", show_default=False)] = None,
    seeds: Annotated[int, typer.Option(help="draws per point, averaged")] = 3,
    param: Annotated[str, typer.Option(
        click_type=click.Choice(("sp", "ntk", "mup")),
        help="sp: the scheme at every width; ntk: N(0,1) weights times 1/sqrt(fan_in); "
             "mup: muP for the optimizer, from --base-width")] = "sp",
    base_width: Annotated[int, typer.Option(help="mup: the width where it equals sp")] = 64,
    format: SweepFormat = "table",
    *,
    config: Config,
) -> None:
    """muP's coordinate check: train at several widths for --steps steps (0: the init)
    and report, per layer and step, the mean |h| against width and its log-log slope
    (Yang et al., Tensor Programs V). Starts from He / ReLU, depth 4, batch 256,
    64 inputs, Adam, 3 steps; every config option applies."""
    from initscope.report import render_sweep
    from initscope.sim import MemoryBudgetError
    from initscope.sim.sweep import SweepSpec
    from initscope.sim.sweep import sweep as run_sweep

    spec = SweepSpec(widths=_sizes(widths, "widths"), steps=config.steps, seeds=seeds,
                     param=param, base_width=base_width,
                     depths=_sizes(depths, "depths") if depths else ())
    try:
        results = run_sweep(config, spec)
    except (ConfigError, MemoryBudgetError) as e:
        raise refused(e) from None
    if format == "plot":
        from initscope.plots import sweep_plot

        typer.echo(sweep_plot(results), nl=False)
        return
    typer.echo(render_sweep(results, format), nl=False)


@app.command()
@with_config
def train(
    format: TableFormat = "table",
    *,
    config: Config,
) -> None:
    """Train the network (--steps, --optimizer sgd|adam, --lr, --momentum, --task,
    --batch-size) and report the loss and every layer's numbers after every step. A
    diverging run stops at the step it diverges, and a learning rate that does not is
    suggested."""
    from initscope.report import TrainWriter
    from initscope.sim import MemoryBudgetError
    from initscope.sim.training import Trainer, suggest_lr

    try:
        trainer = Trainer(config)
    except (ConfigError, MemoryBudgetError) as e:
        raise refused(e) from None
    writer = TrainWriter(trainer, format, lambda text: typer.echo(text, nl=False))
    trainer.run(config.steps, on_step=writer.step, stop_on_divergence=True, keep=False)
    suggestion = None
    if trainer.stopped is not None and not trainer.stopped.at_init:
        suggestion = suggest_lr(config, config.steps, trainer.draws)
    writer.finish(suggestion)


@app.command()
@with_config
def phase(
    format: PlotFormat = "plot",
    *,
    config: Config,
) -> None:
    """The order-to-chaos phase diagram of the activation, with the config marked."""
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.meanfield import config_sigmas, phase_grid, phase_point, sw2_range_for

    act = ACTIVATIONS[config.activation]
    sw2, sb2, mu = config_sigmas(config)
    grid = phase_grid(act, slope=config.slope, sw2_range=sw2_range_for(sw2))
    point = phase_point(act, sw2, sb2, config.slope, mu)
    if format == "json":
        _echo_json({**grid.to_dict(), "config": point.to_dict()})
        return
    from rich.console import Console

    from initscope.phaseplot import phase_text

    Console(highlight=False).print(phase_text(grid, (sw2, sb2 + mu * mu)))
    typer.echo(f"{config.activation}: sigma_w^2 = {sw2:.4g}, sigma_b^2 = {sb2:.4g}: "
               f"chi_1 = {point.chi_1:.4g} ({point.phase}), q* = {point.q_star:.4g}")
    if config.norm != "none":
        typer.echo(f"the diagram is for the stack without its {config.norm} norm: the "
                   "mean-field recursion it draws has no norm in it")
    if point.approximate_position:
        typer.echo(f"constant bias {mu:.4g}: drawn at sigma_b^2 = b^2; chi_1 and q* take it "
                   "as a mean shift, exactly")


@app.command()
@with_config
def spectrum(
    format: PlotFormat = "plot",
    *,
    config: Config,
) -> None:
    """Singular values of the input-output Jacobian (widths up to 1000)."""
    from initscope.sim import MemoryBudgetError
    from initscope.sim.spectrum import jacobian_spectrum, spread

    try:
        result = jacobian_spectrum(config)
    except (ConfigError, MemoryBudgetError) as e:
        raise refused(e) from None
    data = {**result.to_dict(), "spread": spread(result)}
    if format == "json":
        _echo_json(data)
        return
    import numpy as np
    from rich.console import Console

    from initscope.plots import histogram_text

    values = result.flat
    counts, edges = np.histogram(values, bins=40)
    Console(highlight=False).print(histogram_text(tuple(int(c) for c in counts),
                                                  tuple(float(e) for e in edges), 70, 14,
                                                  "cyan", "default"))
    typer.echo(f"{len(values)} singular values at {len(result.singular_values)} inputs: "
               f"mean square {data['mean_squared']:.4g}, min {data['min']:.4g}, "
               f"max {data['max']:.4g}, spread (std / rms) {data['spread']:.3f}")


def _echo_json(data: dict) -> None:
    import json

    from initscope.sim.result import finite_or_none

    typer.echo(json.dumps(finite_or_none(data), indent=1, allow_nan=False))


@app.command()
@with_config
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on; another than "
                                                     "127.0.0.1 opens it to the network")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port")] = 8000,
    max_sessions: Annotated[int, typer.Option(
        "--max-sessions", min=1, max=64, help="browser sessions at once; each is an app "
                                               "process with its share of the memory")] = 4,
    *,
    config: Config,
) -> None:
    """Serve the app to web browsers: each visitor gets a session of their own (at most
    --max-sessions at once), and sessions do not write files on the server."""
    import shlex

    from initscope.serving import check_address, is_loopback, serve, session_budget_gib
    from initscope.sim.share import encode

    if not host.strip():
        raise UsageProblem("--host is empty: give an address, like 127.0.0.1 (this machine "
                           "only) or 0.0.0.0 (every network it is on)")
    try:
        check_address(host, port)
    except OSError as e:
        why = "it is in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise UsageProblem(f"cannot listen on {host}:{port}: {why}") from None
    budget = session_budget_gib(max_sessions)
    session = config.replace(memory_limit=min(config.memory_limit or budget, budget))
    command = (f"{shlex.quote(sys.executable)} -m initscope --config "
               f"{shlex.quote(encode(session))}")
    typer.echo(f"initscope at http://{host}:{port} (ctrl+c stops it): up to {max_sessions} "
               f"sessions, each with a memory budget of {budget:g} GiB")
    if not is_loopback(host):
        typer.echo(f"WARNING: listening on {host}, not only on this machine: anyone who can "
                   f"reach port {port} can open sessions here", err=True)
    try:
        serve(command, host, port, max_sessions)
    except OSError as e:
        raise UsageProblem(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


@app.command()
def scenes() -> None:
    """The built-in scenes, for --scene."""
    from initscope.scenes import builtin_scenes, load_scene

    for name in builtin_scenes():
        scene = load_scene(name)
        typer.echo(f"{name:<16} {len(scene.steps)} steps  {scene.title}")


@app.command()
def archs() -> None:
    """Every architecture (--arch) and what a row of its result is."""
    from initscope.sim.arch import ARCHS

    width = max(len(n) for n in ARCHS)
    for a in ARCHS.values():
        typer.echo(f"{a.name:<{width}}  {a.description} (rows: {a.row_noun})")


@app.command()
def schemes() -> None:
    """Every initialization scheme with its formula."""
    from initscope.codegen import NAMING_NOTE
    from initscope.sim.parse import FIELDS
    from initscope.sim.schemes import SCHEMES

    width = max(len(n) for n in SCHEMES)
    for s in SCHEMES.values():
        options = ", ".join(option_name(FIELDS[p]) for p in s.params)
        typer.echo(f"{s.name:<{width}}  {s.formula}{f'  [{options}]' if options else ''}")
    typer.echo("every scheme: --gain multiplies the weights (a negative gain flips their "
               "sign)")
    typer.echo(NAMING_NOTE)


@app.command(name="inspect")
def inspect_checkpoint(
    file: Annotated[str, typer.Argument(help=".safetensors, .npz, or with PyTorch .pt, .pth, "
                                             ".bin")],
    activation: Annotated[str, typer.Option(
        help="the activation between the detected dense layers")] = "relu",
    format: TableFormat = "table",
    memory_limit: Annotated[float, typer.Option(
        help="memory budget in GiB for one tensor (0: the default budget)")] = 0.0,
    run: Annotated[bool, typer.Option(
        "--run", help="also run a unit-Gaussian batch forward and backward through the "
                      "chain's tensors as they are (initscope's core, as `report`)")] = False,
    batch: Annotated[int, typer.Option(help="--run: the batch")] = 256,
    spectrum_of: Annotated[str | None, typer.Option(
        "--spectrum", help="a weight's singular values against the Marchenko-Pastur law "
                           "of random entries with its std", show_default=False)] = None,
    in_app: Annotated[bool, typer.Option(
        "--app", help="open it in the app: the tensors, the selected one's histogram "
                      "beside its scheme's density, the chain")] = False,
) -> None:
    """Each tensor's role, fans, statistics and the initialization scheme it matches;
    what a chain of its dense layers does to a unit signal; one line per file problem.
    Nothing in the file is executed."""
    from initscope.report import render_inspection
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.checkpoint import CheckpointError, entries

    if in_app:
        if not has_terminal():
            raise UsageProblem("the app needs a terminal: without one, leave out --app")
        from initscope.tui.app import InitScopeApp

        app_ = InitScopeApp(config=Config(activation=activation, memory_limit=memory_limit),
                            inspect=file, ascii_only=isinstance(sys.stdout, AsciiStream))
        app_.run()
        leave_now(app_.return_code or 0)
    from initscope.sim.inspection import inspect_file

    if activation not in ACTIVATIONS:
        raise UsageProblem(f"unknown activation {activation!r}; choose one of: "
                           f"{', '.join(ACTIVATIONS)}")
    try:
        if spectrum_of is not None:  # one tensor: the others are not read
            typer.echo(_spectrum_text(file, entries(file), spectrum_of, format), nl=False)
            return
        found = inspect_file(file, activation, memory_limit)
    except CheckpointError as e:
        raise refused(e) from None
    typer.echo(render_inspection(file, [t.report for t in found.tensors], found.chain,
                                 found.theory, format, activation), nl=False)
    if run and found.theory:
        typer.echo(_run_chain([t.entry for t in found.tensors], found.chain, activation,
                              batch, format, memory_limit), nl=False)
    elif run:
        raise UsageProblem(f"{file}: no chain of two or more dense layers to run")


def _spectrum_text(file: str, listed, name: str, format: str) -> str:
    import json

    import numpy as np

    from initscope.plots import histogram_text
    from initscope.sim.inspection import spectrum

    found = {e.name: e for e in listed}.get(name)
    if found is None or len(found.shape) < 2:
        raise UsageProblem(f"{file}: no weight matrix named {name!r}")
    try:
        spec = spectrum(found.load())
    except ValueError as e:
        raise UsageProblem(f"{file}: {name}: {e}") from None
    if format == "json":
        return json.dumps({"name": name, "singular_values": spec.values.tolist(),
                           "marchenko_pastur": [spec.low, spec.high],
                           "outside": spec.outside}, indent=2) + "\n"
    counts, edges = np.histogram(spec.values, bins=40)
    plot = histogram_text(tuple(int(c) for c in counts), tuple(float(e) for e in edges),
                          72, 12, "", "").plain
    verdict = ("inside it: what independent random entries give (an init)" if not spec.outside
               else f"{spec.outside} beyond it: structure, as training leaves")
    return (f"{name}: {spec.values.size} singular values, {spec.values.min():.4g} to "
            f"{spec.values.max():.4g}\nMarchenko-Pastur support of random entries with its "
            f"std: [{spec.low:.4g}, {spec.high:.4g}]; {verdict}\n{plot}\n")


def _run_chain(listed, chain, activation: str, batch: int, format: str,
               memory_limit: float) -> str:
    """The chain's hidden layers run by the core on their weights as they are (the
    last, linear layer is the readout run_weights leaves out)."""
    import numpy as np

    from initscope.report import render_report
    from initscope.sim import MemoryBudgetError, Simulator

    loaders = {e.name: e for e in listed}
    weights, biases = [], []
    for lay in chain:
        weights.append(np.ascontiguousarray(loaders[lay.name].load().T, dtype=np.float32))
        bias = loaders.get(lay.name[:-len("weight")] + "bias") \
            if lay.name.endswith("weight") else None
        biases.append(bias.load().astype(np.float32) if bias is not None
                      else np.zeros(lay.fan_out, np.float32))
    cfg = Config(activation=activation, depth=len(chain) - 1, batch=batch,
                 width=tuple(lay.fan_out for lay in chain[:-1]), inputs=chain[0].fan_in,
                 memory_limit=memory_limit)
    try:
        result = Simulator().run_weights(cfg, weights, biases)
    except (ConfigError, MemoryBudgetError) as e:
        raise refused(e) from None
    text = render_report(result, format)
    if format == "table":  # its title names the weights, not a scheme
        text = text.replace(f"{cfg.scheme} / ", "the chain's own weights / ", 1)
    return "\n" + text


@app.command()
def params() -> None:
    """The parametrizations a sweep compares (--param), each layer's rule."""
    from initscope.sim.sweep import PARAM_RULES

    for name, rule in PARAM_RULES.items():
        typer.echo(f"{name:<4} {rule}")
    typer.echo("r = width / base width (--base-width, 64); a depth sweep's blocks: branch x 1, "
               "or x 1/sqrt(L) with Adam's block lr / sqrt(L) (Tensor Programs VI)")


@app.command()
def activations() -> None:
    """Every activation with its formula and gain."""
    from initscope.sim.theory import activation_table

    rows = activation_table()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        typer.echo(f"{r['name']:<{width}}  gain {r['gain']:.4f}  {r['formula']}")


@app.command()
@with_config
def bench(
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=100,
                                         help="timed runs per case")] = 5,
    *,
    config: Config,
) -> None:
    """Time the core against the matmul floor of the same work, in one run."""
    from initscope.bench import format_bench, run_bench

    try:
        rows = run_bench(config, repeats)
    except Exception as e:  # budget or config problems come back as one line
        raise refused(e) from None
    typer.echo(format_bench(rows))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage problems print one line and exit with code 2."""
    from initscope.ascii import ascii_streams_if_needed

    args = list(sys.argv[1:] if argv is None else argv)
    if "--ascii" in args:  # anywhere on the line: before or after the command
        args = [a for a in args if a != "--ascii"]
        os.environ["INITSCOPE_ASCII"] = "1"
    ascii_streams_if_needed()
    try:
        app(args=args, standalone_mode=False)
    except UsageProblem as e:
        typer.echo(f"initscope: {cut_long_words(str(e))}", err=True)
        sys.exit(2)
    except MemoryError:  # past the estimate: the process's own limits were lower
        typer.echo("initscope: this config ran out of memory: lower the width, depth or "
                   "batch (or the --memory-limit)", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        typer.echo(f"initscope: {cut_long_words(e.format_message())}", err=True)
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
