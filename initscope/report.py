"""A run's per-layer numbers as a text table, JSON or CSV (the `report` command)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from initscope.sim.arch import ARCHS
from initscope.sim.result import METER_GROUPS, QUANTITIES, RunResult, finite_or_none
from initscope.sim.stats import DEFAULT_BINS
from initscope.sim.threads import blas_threads
from initscope.sim.training import HEAT_EDGES

# (column header, how to read it from a layer); shared by the table and the CSV
COLUMNS = [
    ("layer", lambda lay: lay.index),
    ("fan_in", lambda lay: lay.fan_in),
    ("fan_out", lambda lay: lay.fan_out),
    ("weight_std", lambda lay: lay.weight_std),
    ("weight_target_std", lambda lay: lay.weight_target_std),
]
for _q in QUANTITIES:
    for _stat in ("mean", "std", "min", "max"):
        COLUMNS.append((f"{_q}_{_stat}",
                        lambda lay, q=_q, s=_stat: getattr(getattr(lay, q), s, None)
                        if getattr(lay, q) is not None else None))
    COLUMNS.append((f"{_q}_std_theory",
                    lambda lay, q=_q: getattr(lay.theory, f"{q}_std", None)
                    if lay.theory else None))
COLUMNS += [
    ("dead_fraction", lambda lay: lay.dead_fraction),
    ("saturated_fraction", lambda lay: lay.saturated_fraction),
]

# the table shows the columns a person reads first
TABLE = [
    ("layer", "layer"), ("act mean", "activation_mean"), ("act std", "activation_std"),
    ("theory", "activation_std_theory"), ("pre std", "preactivation_std"),
    ("grad std", "gradient_std"), ("theory", "gradient_std_theory"),
    ("dW std", "weight_gradient_std"), ("dead", "dead_fraction"),
    ("sat", "saturated_fraction"),
]


def fmt(v, digits: int = 4) -> str:
    """A number in at most 9 characters: `digits` significant digits, '-' for missing."""
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.{digits}g}"
    return f"{v:.{max(digits - 2, 1)}e}"


def fmt_percent(v) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def aligned(header: list[str], body: list[list[str]], left: bool = False,
            sep: str = "  ") -> list[str]:
    """Header and rows as lines of columns `sep` apart, each as wide as its widest
    cell: numbers right-aligned, or (left) names left-aligned."""
    widths = [max(len(x) for x in col) for col in zip(header, *body)]

    def line(cells: list[str]) -> str:
        if left:
            return sep.join(x.ljust(w) for x, w in zip(cells, widths)).rstrip()
        return sep.join(x.rjust(w) for x, w in zip(cells, widths))

    return [line(cells) for cells in [header, *body]]


def csv_text(header: list[str], body: list[list]) -> str:
    """CSV with floats written exactly (repr) and a missing value as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for cells in body:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                         for v in cells])
    return out.getvalue()


def json_text(data, indent: int = 1) -> str:
    """JSON, every non-finite number as null."""
    return json.dumps(finite_or_none(data), indent=indent, allow_nan=False) + "\n"


def rows(result: RunResult) -> list[dict]:
    """One dict per layer, keyed by COLUMNS' names."""
    return [{name: get(lay) for name, get in COLUMNS} for lay in result.layers]


def table_cells(result: RunResult) -> list[tuple[str, ...]]:
    """The TABLE columns of every row as text: the CLI's table and the app's."""
    return [tuple(fmt_percent(r[key]) if key in ("dead_fraction", "saturated_fraction")
                  else fmt(r[key]) for _, key in TABLE) for r in rows(result)]


def render_table(result: RunResult) -> str:
    lines = aligned([h for h, _ in TABLE], [list(cells) for cells in table_cells(result)])
    c = result.config
    shape = ARCHS[c.arch].shape(c)
    widths = "" if ARCHS[c.arch].convolutional else f", width {','.join(map(str, c.width))}"
    title = f"{c.scheme} / {c.activation}, {shape}{widths}, batch {c.batch}, seed {c.seed}"
    if result.meters is not None:  # a transformer's: its meters under its rows
        lines += ["", "meters per block (also `initscope meters`):",
                  meters_table(meter_rows(result))]
    tail = [f"warning: {w}" for w in result.warnings]
    return "\n".join([title] + lines + tail) + "\n"


def render_json(result: RunResult, bins: int = DEFAULT_BINS, shared: bool = True) -> str:
    """The result as JSON, with the BLAS thread count it was computed with: float32
    statistics can differ in their last bits between counts (see the README)."""
    data = result.to_dict(bins, shared)
    data["environment"] = {"blas_threads": blas_threads(), "numpy": np.__version__}
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def render_csv(result: RunResult) -> str:
    return csv_text([name for name, _ in COLUMNS], [list(r.values()) for r in rows(result)])


def render_report(result: RunResult, format: str, bins: int = DEFAULT_BINS,
                  shared: bool = True) -> str:
    """The result as a table, CSV, or JSON with histograms binned as asked."""
    if format == "json":
        return render_json(result, bins, shared)
    return {"table": render_table, "csv": render_csv}[format](result)


# ---- signal propagation plot ---------------------------------------------------------

SPP_COLUMNS = (("block", "block"), ("sq mean", "squared_mean"), ("theory", "sq_theory"),
               ("variance", "variance"), ("theory", "var_theory"),
               ("branch var", "branch_variance"), ("theory", "branch_theory"))


def spp_rows(result: RunResult) -> list[dict]:
    """One dict per block: the three measured averages and their predictions (None
    where the recursion predicts only their sum)."""
    out = []
    for row in result.spp or []:
        predicted = row.predicted or (None, None, None)
        out.append({"block": row.block, "squared_mean": row.squared_mean,
                    "sq_theory": predicted[0], "variance": row.variance,
                    "var_theory": predicted[1], "branch_variance": row.branch_variance,
                    "branch_theory": predicted[2]})
    return out


def render_spp(result: RunResult, format: str) -> str:
    """The signal propagation plot's numbers as a table, CSV or JSON."""
    rows_ = spp_rows(result)
    if format == "json":
        return json_text({"config": result.config.to_dict(), "spp": result.spp_dicts(),
                          "warnings": list(result.warnings)})
    keys = [key for _, key in SPP_COLUMNS]
    if format == "csv":
        return csv_text(keys, [[r[k] for k in keys] for r in rows_])
    body = [[str(r["block"])] + [fmt(r[k]) for k in keys[1:]] for r in rows_]
    c = result.config
    images = ARCHS[c.arch].convolutional
    width = "" if images else f", width {c.width[0]}"
    title = (f"signal propagation: {c.scheme} / {c.activation}, {ARCHS[c.arch].shape(c)}"
             f"{width}, batch {c.batch}, seed {c.seed}")
    over = "the batch and the pixels" if images else "the batch"
    note = (f"averages over channels of each channel's mean squared and variance over {over}; "
            "branch: F before alpha")
    lines = aligned([h for h, _ in SPP_COLUMNS], body)
    return "\n".join([title, note] + lines + [f"warning: {w}" for w in result.warnings]) + "\n"


# ---- transformer meters --------------------------------------------------------------

METER_COLUMNS = (
    ("block", "block"), ("stream var", "stream_variance"), ("attn var", "attention_variance"),
    ("mlp var", "mlp_variance"), ("theory", "mlp_variance_theory"), ("entropy", "entropy"),
    ("theory", "entropy_theory"), ("logit std", "logit_std"), ("theory", "logit_std_theory"),
    ("similarity", "similarity"),
    *((f"|dW| {g}" if g == "q" else g, f"grad_{g}") for g in METER_GROUPS),
)


def meter_rows(result: RunResult) -> list[dict]:
    """One dict per block, keyed by METER_COLUMNS' keys (None where nothing is known)."""
    out = []
    for m in result.meters or []:
        row = m.to_dict()
        for key in ("mlp_variance", "entropy", "logit_std"):
            row[f"{key}_theory"] = m.predicted.get(key)
        for g in METER_GROUPS:
            row[f"grad_{g}"] = m.grad_norms.get(g) if m.grad_norms else None
        out.append({key: row[key] for _, key in METER_COLUMNS})
    return out


def render_meters(result: RunResult, format: str) -> str:
    """The transformer meters as a table, CSV or JSON."""
    rows_ = meter_rows(result)
    if format == "json":
        return json_text({"config": result.config.to_dict(),
                          "input_similarity": result.input_similarity,
                          "meters": result.meter_dicts(),
                          "overflow_layer": result.overflow_layer,
                          "warnings": list(result.warnings)})
    if format == "csv":
        return csv_text([key for _, key in METER_COLUMNS], [list(r.values()) for r in rows_])
    c = result.config
    title = (f"transformer meters: {c.scheme} / {c.activation}, {ARCHS[c.arch].shape(c)}, "
             f"width {c.width[0]}, batch {c.batch}, seed {c.seed}")
    notes = [f"embeddings' token similarity {fmt(result.input_similarity)}; variances over "
             "every token's units; |dW|: each group's gradient norm"]
    if result.overflow_layer is not None:
        notes.append(f"overflow from block {result.overflow_layer} "
                     f"({result.overflow_pass} pass)")
    return "\n".join([title, *notes, meters_table(rows_)]
                     + [f"warning: {w}" for w in result.warnings]) + "\n"


def meters_table(rows_: list[dict], digits: int = 4) -> str:
    body = [[str(r["block"])] + [fmt(r[k], digits) for _, k in METER_COLUMNS[1:]]
            for r in rows_]
    return "\n".join(aligned([h for h, _ in METER_COLUMNS], body))


# ---- training ------------------------------------------------------------------------

TRAIN_LAYER_FIELDS = ("distinct_units", "dead_units", "saturated_fraction", "activation_std",
                      "gradient_std", "gradient_norm", "update_ratio", "weight_change")


def shown_steps(total: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to `total`, and `total` itself."""
    out, base = [], 1
    while base <= total:
        out += [s for s in (base, 2 * base, 5 * base) if s <= total]
        base *= 10
    return sorted(set(out + [total]))


def train_warnings(trainer, suggestion: tuple[float, bool] | None) -> list[str]:
    """The trainer's warnings, the divergence's with the learning rate to try."""
    if suggestion is None:
        return trainer.warnings()
    lr, searched = suggestion
    how = ("the largest of lr/2, lr/4, ... that ran as many steps without diverging"
           if searched else "a tenth of this one")
    return trainer.warnings(advice=f"; try --lr {lr:g} ({how})")


class TrainWriter:
    """`train`'s output, written as the steps come: memory stays bounded however many
    steps there are (JSON and CSV write each step at once; the table keeps only the
    steps it shows, 1, 2, 5, 10, ... and the last)."""

    TABLE_HEADER = ["step", "loss", "distinct units per layer", "dead", "act std (last)",
                    "grad std (first)", "update/W (log10, max)", "moved (max)"]

    def __init__(self, trainer, format: str, write) -> None:
        self.trainer, self.format, self.write = trainer, format, write
        self.count, self.last = 0, None
        self.shown = set(shown_steps(trainer.cfg.steps))
        self.rows: list[list[str]] = []
        if format == "json":
            config = json.dumps(trainer.cfg.to_dict(), allow_nan=False)
            self.write(f'{{"config": {config},\n "heat_log10_edges": '
                       f'{json.dumps(list(HEAT_EDGES))},\n "steps": [')
        elif format == "csv":
            self._csv_row(["step", "loss", "layer", *TRAIN_LAYER_FIELDS])

    def _csv_row(self, cells: list) -> None:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(cells)
        self.write(out.getvalue())

    def step(self, s) -> None:
        self.count += 1
        if self.format == "json":
            self.write(("\n  " if self.count == 1 else ",\n  ")
                       + json.dumps(s.to_dict(heat=True), allow_nan=False))
        elif self.format == "csv":
            for i, lay in enumerate(s.layers, 1):
                self._csv_row([s.step, repr(s.loss), i,
                               *("" if getattr(lay, f) is None else getattr(lay, f)
                                 for f in TRAIN_LAYER_FIELDS)])
        else:
            if s.step in self.shown:
                self.rows.append(self._table_row(s))
            self.last = s

    @staticmethod
    def _table_row(s) -> list[str]:
        units = ",".join("-" if lay.distinct_units is None else str(lay.distinct_units)
                         for lay in s.layers[:6])
        if len(s.layers) > 6:
            units += ",…"
        dead = [lay.dead_units for lay in s.layers if lay.dead_units is not None]
        ratios = [lay.update_ratio for lay in s.layers if lay.update_ratio is not None]
        return [str(s.step), fmt(s.loss), units, str(sum(dead)) if dead else "-",
                fmt(s.layers[-1].activation_std), fmt(s.layers[0].gradient_std),
                f"{max(ratios):.2f}" if ratios else "-",
                fmt(max(lay.weight_change for lay in s.layers))]

    def finish(self, suggestion: tuple[float, bool] | None = None) -> None:
        trainer, cfg = self.trainer, self.trainer.cfg
        warnings = train_warnings(trainer, suggestion)
        if self.format == "json":
            tail = {"initial_loss": trainer.initial_loss.to_dict() if trainer.initial_loss
                    else None,
                    "stopped": trainer.stopped.to_dict() if trainer.stopped else None,
                    "suggested_lr": suggestion[0] if suggestion else None,
                    "warnings": warnings}
            body = json.dumps(tail, indent=1, allow_nan=False)
            self.write("\n ],\n" + body[2:] + "\n")  # the tail's keys, in the same object
            return
        if self.format == "csv":
            return
        if self.last is not None and (not self.rows or self.rows[-1][0] != str(self.last.step)):
            self.rows.append(self._table_row(self.last))  # stopped early: its last step
        lines = aligned(self.TABLE_HEADER, self.rows)
        how = ("Adam" if cfg.optimizer == "adam" else "SGD"
               + (f", momentum {cfg.momentum}" if cfg.momentum else ""))
        title = (f"{cfg.scheme} / {cfg.activation}, depth {cfg.depth}: {cfg.task}, "
                 f"{self.count} steps of {how}, lr {cfg.lr}")
        if trainer.initial_loss is not None and trainer.initial_loss.expected is not None:
            title += (f"; initial loss {fmt(trainer.initial_loss.value)} "
                      f"(a well-scaled output gives {fmt(trainer.initial_loss.expected)})")
        self.write("\n".join([title] + lines + [f"warning: {w}" for w in warnings]) + "\n")


def render_train(trainer, steps: list, format: str,
                 suggestion: tuple[float, bool] | None = None) -> str:
    """`steps` (records of `trainer`) as `train` prints them, in one string."""
    parts: list[str] = []
    writer = TrainWriter(trainer, format, parts.append)
    for s in steps:
        writer.step(s)
    writer.finish(suggestion)
    return "".join(parts)


SWEEP_MARKERS = "abcdfghijkmnpqrstuvwxyz"  # one per layer ("o" is the output)


def slope_text(slope: float) -> str:
    """A fitted slope, or why there is none (the runs went non-finite)."""
    return f"{slope:+.2f}" if math.isfinite(slope) else "diverged"


def diverged_line(result) -> list[str]:
    sizes = result.diverged()
    return [f"went non-finite at {', '.join(map(str, sizes))}: a slope fits the finite "
            "points only"] if sizes else []


def sweep_series(result) -> list[tuple[str, list[str]]]:
    """Each recorded layer's marker and name: a, b, ... for hidden layers, o for the
    output (the stream of a depth sweep is s)."""
    names = result.layer_names
    if names == ["stream", "output"]:
        return [("s", "stream"), ("o", "output")]
    return [(SWEEP_MARKERS[i % len(SWEEP_MARKERS)], n) for i, n in enumerate(names[:-1])] + \
        [("o", "output")]


def _sweep_title(result) -> str:
    c, spec = result.config, result.spec
    kind = "depth" if spec.depths else "width"
    what = (f"residual blocks, width {c.width[0]}, branch x {result.branch}"
            if spec.depths else f"{spec.param}, base width {spec.base_width}, depth {c.depth}")
    return (f"{kind} sweep: {c.scheme} / {c.activation}, {what}, {c.optimizer} lr {c.lr:g}, "
            f"batch {c.batch}, {spec.seeds} seed{'s' if spec.seeds > 1 else ''}")


def render_sweep(results: list, format: str) -> str:
    """A width or depth sweep as a table (mean |h| over the seeds, and the fitted
    log-log slope), JSON (every point and slope) or CSV (one row a point)."""
    if format == "json":
        return json_text([r.to_dict() for r in results] if len(results) > 1
                         else results[0].to_dict(), indent=2)
    if format == "csv":
        kind = "depth" if results[0].spec.depths else "width"
        return csv_text(["branch", kind, "seed", "step", "layer", "l1", "std"],
                        [[r.branch or "", p.size, p.seed, t, name, float(l1), float(std)]
                         for r in results for p in r.points
                         for t, (l1s, stds) in enumerate(zip(p.l1, p.std))
                         for name, l1, std in zip(r.layer_names, l1s, stds)])
    blocks = []
    for r in results:
        sizes, l1, slopes = r.sizes, r.mean_l1(), r.slopes()
        header = ["step", "layer", *[str(s) for s in sizes], "slope"]
        body = [[str(t), name, *[fmt(float(l1[k, t, i]), 3) for k in range(len(sizes))],
                 slope_text(slopes[t, i])]
                for t in range(l1.shape[1]) for i, name in enumerate(r.layer_names)]
        lines = aligned(header, body)
        blocks.append("\n".join([_sweep_title(r), "mean |h| over the seeds; slope: of log "
                                 "mean |h| against log size (0: the same at every size)"]
                                + diverged_line(r) + lines))
    return "\n\n".join(blocks) + "\n"


INSPECT_TABLE = [("name", "name"), ("shape", "shape"), ("role", "role"), ("fan_in", "fan_in"),
                 ("std", "std"), ("std*sqrt(fan_in)", "std_sqrt_fan_in"), ("matches", "match")]


def render_inspection(path: str, reports: list, chain: list, theory: list, format: str,
                      activation: str) -> str:
    """`initscope inspect`: per tensor, and the summary line; the chain's prediction."""
    rows = [r.to_dict() for r in reports]
    counts: dict[str, int] = {}
    for r in reports:
        if r.role in ("dense weight", "conv weight", "embedding"):
            key = r.match.scheme or "no known scheme"
            counts[key] = counts.get(key, 0) + 1
    warnings = [f"{r.name}: {w}" for r in reports for w in r.warnings]
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    chain_rows = [{"layer": lay.name, "fan_in": lay.fan_in, "fan_out": lay.fan_out,
                   "weight_std": lay.std, "activation_std_theory": a, "gradient_std_theory": g}
                  for lay, (a, g) in zip(chain, theory)]
    if format == "json":
        return json_text({"file": path, "tensors": rows, "summary": counts,
                          "warnings": warnings,
                          "chain": {"activation": activation, "layers": chain_rows}}, indent=2)
    if format == "csv":
        keys = [k for k in rows[0] if k != "warnings"] if rows else []
        return csv_text(keys, [["x".join(map(str, row[k])) if k == "shape" else row[k]
                                for k in keys] for row in rows])
    header = [h for h, _ in INSPECT_TABLE]
    body = []
    for row in rows:
        cells = []
        for _, key in INSPECT_TABLE:
            v = row[key]
            cells.append("x".join(map(str, v)) if key == "shape" else
                         fmt(v, 3) if isinstance(v, float) else str(v))
        body.append(cells)
    lines = aligned(header, body, left=True)
    out_lines = [f"{path}: {len(reports)} tensors; weights: {summary or 'none'}", *lines]
    if chain_rows:
        out_lines += ["", f"a chain of {len(chain_rows)} dense layers ({activation}, the last "
                      "linear): predicted from the variance recursion, unit input",
                      "layer  fan_in  fan_out  weight std  act std  grad std"]
        out_lines += [f"{r['layer']}  {r['fan_in']}  {r['fan_out']}  {fmt(r['weight_std'], 3)}"
                      f"  {fmt(r['activation_std_theory'], 3)}  {fmt(r['gradient_std_theory'], 3)}"
                      for r in chain_rows]
    out_lines += [f"warning: {w}" for w in warnings]
    return "\n".join(out_lines) + "\n"
