"""Times the core against the matmul floor of the same work, measured in the same run.

The floor is the 3L - 1 matrix products a forward and backward pass cannot avoid
(forward, weight gradient, input gradient except below the first layer), in the
config's dtype, into preallocated outputs. Every case is timed round-robin so the
machine's load affects all of them alike; the figure that matters is the ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from initscope.sim.budget import check_budget
from initscope.sim.config import Config
from initscope.sim.network import Simulator


@dataclass
class BenchRow:
    name: str
    what: str
    seconds: float
    floor: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


class MatmulFloor:
    """Only the unavoidable products of one forward-backward pass."""

    def __init__(self, cfg: Config) -> None:
        dt = np.dtype(cfg.dtype)
        rng = np.random.default_rng(cfg.seed)
        fans = cfg.fans()
        self.x = rng.standard_normal((cfg.batch, cfg.inputs), dtype=dt.type)
        self.w = [(rng.standard_normal((fi, fo), dtype=dt.type) / np.sqrt(fi)).astype(dt)
                  for fi, fo in fans]
        self.h = [np.empty((cfg.batch, fo), dt) for _, fo in fans]
        self.g = [np.empty((cfg.batch, fi), dt) for fi, _ in fans]
        self.dw = [np.empty((fi, fo), dt) for fi, fo in fans]
        self.top = rng.standard_normal((cfg.batch, fans[-1][1]), dtype=dt.type)

    def __call__(self) -> None:
        h = self.x
        for w, out in zip(self.w, self.h):
            np.matmul(h, w, out=out)
            h = out
        g = self.top
        for i in range(len(self.w) - 1, -1, -1):
            below = self.x if i == 0 else self.h[i - 1]
            np.matmul(below.T, g, out=self.dw[i])
            if i:
                np.matmul(g, self.w[i].T, out=self.g[i])
                g = self.g[i]


def _windows_products(rows: int, fan: int, c: int, dt, rng) -> tuple:
    """Random windows (rows, fan), a kernel (fan, c), and the outputs of z = cols W,
    dW = cols^T dz and dcols = dz W^T."""
    return (rng.standard_normal((rows, fan), dtype=dt.type),
            rng.standard_normal((fan, c), dtype=dt.type), np.empty((rows, c), dt),
            np.empty((fan, c), dt), np.empty((rows, fan), dt))


class ResConvFloor:
    """The residual conv blocks' unavoidable products: per block, both convolutions'
    windows times W; back, dW1 = windows^T dz and both windows' gradients dz W^T (the
    stream's gradient passes both layers of every block)."""

    def __init__(self, cfg: Config) -> None:
        dt, rng = np.dtype(cfg.dtype), np.random.default_rng(cfg.seed)
        fan, rows = cfg.channels * cfg.kernel ** 2, cfg.batch * cfg.image ** 2
        self.layers = [_windows_products(rows, fan, cfg.channels, dt, rng)
                       for _ in range(2 * cfg.depth)]

    def __call__(self) -> None:
        for cols, w, z, _, _ in self.layers:
            np.matmul(cols, w, out=z)
        for k in range(len(self.layers) - 1, -1, -1):
            cols, w, z, dw, dcols = self.layers[k]
            if k % 2 == 0:  # W1: the gradient shown
                np.matmul(cols.T, z, out=dw)
            np.matmul(z, w.T, out=dcols)


class ConvFloor:
    """The convolution stack's unavoidable products: per layer, the windows times W,
    and back, the windows' transpose times dz and dz times W^T (not below layer 2).
    The im2col copies and the scatter back are the core's, not the floor's."""

    def __init__(self, cfg: Config) -> None:
        from initscope.sim.arch.grids import sizes

        dt = np.dtype(cfg.dtype)
        rng = np.random.default_rng(cfg.seed)
        fan = cfg.channels * cfg.kernel ** 2
        positions = [cfg.batch * n * n for n in sizes(cfg)[1:]]
        self.w = [rng.standard_normal((fan, cfg.channels), dtype=dt.type) for _ in positions]
        self.cols = [rng.standard_normal((p, fan), dtype=dt.type) for p in positions]
        self.z = [np.empty((p, cfg.channels), dt) for p in positions]
        self.dw = [np.empty((fan, cfg.channels), dt) for _ in positions]
        self.dcols = [np.empty((p, fan), dt) for p in positions]

    def __call__(self) -> None:
        for cols, w, z in zip(self.cols, self.w, self.z):
            np.matmul(cols, w, out=z)
        for i in range(len(self.w) - 1, -1, -1):
            np.matmul(self.cols[i].T, self.z[i], out=self.dw[i])
            if i:
                np.matmul(self.z[i], self.w[i].T, out=self.dcols[i])


class TransformerFloor:
    """A transformer stack's unavoidable products: per block, x Wq, x Wk, x Wv, each
    head's Q K^T and P V, the output projection and the MLP's two; back, the six
    weight gradients, the MLP's and the output projection's input gradients, the
    heads' dP, dV, dQ and dK, and (not below block 1) the three projections' input
    gradients. Softmax, the norms, the activation and the statistics are the core's."""

    def __init__(self, cfg: Config) -> None:
        dt = np.dtype(cfg.dtype)
        rng = np.random.default_rng(cfg.seed)
        d, r, rows = cfg.width[0], cfg.mlp_ratio, cfg.batch * cfg.tokens
        b, h, t, dh = cfg.batch, cfg.heads, cfg.tokens, cfg.width[0] // cfg.heads

        def arr(*shape):
            return rng.standard_normal(shape, dtype=dt.type)

        self.depth = cfg.depth
        self.x, self.w = arr(rows, d), [arr(d, d) for _ in range(4)]
        self.w1, self.w2 = arr(d, r * d), arr(r * d, d)
        self.heads = [arr(b, h, t, dh) for _ in range(3)]  # q, k, v
        self.p = arr(b, h, t, t)
        self.wide, self.narrow = arr(rows, r * d), [arr(rows, d) for _ in range(4)]
        self.out_d, self.out_wide = np.empty((rows, d), dt), np.empty((rows, r * d), dt)
        self.out_tt, self.out_th = np.empty((b, h, t, t), dt), np.empty((b, h, t, dh), dt)
        self.dw, self.dw1, self.dw2 = np.empty((d, d), dt), np.empty((d, r * d), dt), \
            np.empty((r * d, d), dt)

    def __call__(self) -> None:
        q, k, v = self.heads
        kt = k.transpose(0, 1, 3, 2)
        for _ in range(self.depth):
            for w in self.w:  # q, k, v and the output projection
                np.matmul(self.x, w, out=self.out_d)
            np.matmul(q, kt, out=self.out_tt)
            np.matmul(self.p, v, out=self.out_th)
            np.matmul(self.x, self.w1, out=self.out_wide)
            np.matmul(self.wide, self.w2, out=self.out_d)
        for block in range(self.depth - 1, -1, -1):
            np.matmul(self.wide.T, self.x, out=self.dw2)
            np.matmul(self.x, self.w2.T, out=self.out_wide)
            np.matmul(self.x.T, self.wide, out=self.dw1)
            np.matmul(self.wide, self.w1.T, out=self.out_d)
            for _ in range(4):  # the four d x d weights' gradients
                np.matmul(self.x.T, self.narrow[0], out=self.dw)
            np.matmul(self.x, self.w[3].T, out=self.out_d)  # through the output projection
            np.matmul(q, v.transpose(0, 1, 3, 2), out=self.out_tt)  # dP = dC V^T
            np.matmul(self.p.transpose(0, 1, 3, 2), q, out=self.out_th)  # dV = P^T dC
            np.matmul(self.p, k, out=self.out_th)  # dQ = dS K
            np.matmul(self.p.transpose(0, 1, 3, 2), q, out=self.out_th)  # dK = dS^T Q
            if block:
                for w in self.w[:3]:
                    np.matmul(self.narrow[1], w.T, out=self.out_d)


def _time_round_robin(cases: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def run_bench(cfg: Config, repeats: int = 5) -> list[BenchRow]:
    """Median seconds of: the floor; a recompute after a scheme/activation/bias change
    (draws cached); a recompute with a new seed (fresh draws)."""
    check_budget(cfg)
    floor = {"conv": ConvFloor, "resconv": ResConvFloor,
             "transformer": TransformerFloor}.get(cfg.arch, MatmulFloor)(cfg)
    warm, fresh = Simulator(), Simulator()  # one keeps its draws, one never can
    warm.run(cfg)
    flip = {"n": 0}

    def changed_setting() -> None:
        # alternate the gain: a new config every time, same draws
        flip["n"] += 1
        warm.run(cfg.replace(gain=cfg.gain * (1.0 + 1e-3 * (flip["n"] % 2))))

    def new_seed() -> None:
        flip["n"] += 1
        fresh.run(cfg.replace(seed=cfg.seed + 1 + flip["n"]))

    floor()
    med = _time_round_robin(
        {"floor": floor, "changed setting": changed_setting, "new seed": new_seed}, repeats
    )
    what = {
        "floor": "the unavoidable matmuls alone",
        "changed setting": "scheme, gain, activation or bias changed: draws reused",
        "new seed": "new seed: every draw made afresh",
    }
    return [BenchRow(k, what[k], v, med["floor"]) for k, v in med.items()]


def format_bench(rows: list[BenchRow]) -> str:
    lines = [f"{'case':<16} {'median ms':>10} {'x floor':>8}  what"]
    for r in rows:
        lines.append(f"{r.name:<16} {1000 * r.seconds:>10.1f} {r.ratio:>8.2f}  {r.what}")
    return "\n".join(lines)


def sweep_floor(cfg: Config, spec) -> Callable[[], None]:
    """The matmuls of every run of a width sweep: per run, steps + 1 forward passes
    (each layer's h W) and `steps` backward passes (each layer's dW, and the input's
    gradient but for the first layer's), into preallocated outputs."""
    from initscope.sim.sweep import OUTPUTS, runs

    dt, rng = np.dtype(cfg.dtype), np.random.default_rng(cfg.seed)
    cases = {}
    for width in spec.widths:
        fans = [(cfg.inputs, width)] + [(width, width)] * (cfg.depth - 1) + [(width, OUTPUTS)]
        x = rng.standard_normal((cfg.batch, cfg.inputs), dtype=dt.type)
        ws = [rng.standard_normal(f, dtype=dt.type) for f in fans]
        hs = [np.empty((cfg.batch, fo), dt) for _, fo in fans]
        gs = [np.empty((cfg.batch, fi), dt) for fi, _ in fans]
        dws = [np.empty(f, dt) for f in fans]
        cases[width] = (x, ws, hs, gs, dws)
    plan = [size for size, _, _ in runs(spec)]

    def run() -> None:
        for width in plan:
            x, ws, hs, gs, dws = cases[width]
            for t in range(spec.steps + 1):
                h = x
                for w, out in zip(ws, hs):
                    np.matmul(h, w, out=out)
                    h = out
                if t == spec.steps:
                    break
                g = hs[-1]
                for i in range(len(ws) - 1, -1, -1):
                    np.matmul(x.T if i == 0 else hs[i - 1].T, g, out=dws[i])
                    if i:
                        np.matmul(g, ws[i].T, out=gs[i])
                        g = gs[i]

    return run


def run_sweep_bench(cfg: Config, spec, repeats: int = 3) -> list[BenchRow]:
    """Median seconds of a whole sweep against its runs' matmul floor."""
    from initscope.sim.sweep import check_sweep, sweep

    check_sweep(cfg, spec)
    floor = sweep_floor(cfg, spec)
    floor()
    med = _time_round_robin({"floor": floor, "sweep": lambda: sweep(cfg, spec)}, repeats)
    return [BenchRow("floor", "the runs' matmuls alone", med["floor"], med["floor"]),
            BenchRow("sweep", "train every width and seed, record every step", med["sweep"],
                     med["floor"])]
