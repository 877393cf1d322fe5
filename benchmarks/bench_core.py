"""Core speed against the matmul floor, on the configs the README reports.

    python benchmarks/bench_core.py            # all cases, markdown table
    python benchmarks/bench_core.py --quick    # the course config only

Each case builds the floor (only the unavoidable matmuls) and times it round-robin
with the core, in one process, so the ratio is what matters. When PyTorch is
installed, an autograd version of the same work (forward, backward of the same
upstream gradient, and the same per-layer statistics) is timed beside them.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from initscope.bench import run_bench  # noqa: E402
from initscope.sim import Config  # noqa: E402
from initscope.sim.arch import with_arch  # noqa: E402
from initscope.sim.stats import DEFAULT_BINS  # noqa: E402

CASES = {
    "course demo (tanh, 10 x 500, batch 1000)": Config(scheme="xavier_normal"),
    "He ReLU, depth 100, width 1000, batch 1000": Config(
        scheme="he_normal", activation="relu", depth=100, width=(1000,), inputs=1000),
    # the norms add elementwise work to the same matmuls
    "batch norm before ReLU, 10 x 500, batch 1000": Config(
        scheme="normal", activation="relu", norm="batch"),
    "layer norm after tanh, 10 x 500, batch 1000": Config(
        scheme="xavier_normal", norm="layer", norm_at="after"),
    "nf (weight standardization), ReLU, 10 x 500, batch 1000": Config(
        scheme="he_normal", activation="relu", norm="nf"),
    # against its own floor: the im2col matmuls
    "conv default (10 x 3x3, 16 ch, 16 px, batch 32), ReLU": Config(
        arch="conv", scheme="he_normal", activation="relu", batch=32),
    "conv 64 ch, 32 px, batch 32, depth 5, ReLU": Config(
        arch="conv", scheme="he_normal", activation="relu", batch=32, channels=64, image=32,
        depth=5),
    "conv batch norm, 32 ch, batch 32, ReLU": Config(
        arch="conv", scheme="he_normal", activation="relu", batch=32, channels=32, norm="batch"),
    "resconv default (10 blocks, 16 ch, 16 px, batch 32), ReLU": Config(
        arch="resconv", scheme="he_normal", activation="relu", batch=32),
    "resconv NF, 64 ch, 16 px, batch 16, depth 4": Config(
        arch="resconv", scheme="he_normal", activation="relu", batch=16, channels=64, depth=4,
        norm="nf"),
    # against its own floor: the projections', the heads' and the MLP's matmuls
    "transformer default (8 pre-norm blocks, d 256, T 64, 4 heads, batch 8), GELU":
        with_arch(Config(), "transformer"),
    "transformer default with a ReLU MLP": with_arch(Config(), "transformer").replace(
        activation="relu"),
    "transformer post-norm, d 512, 8 heads, batch 4": with_arch(Config(), "transformer").replace(
        norm_at="after", width=(512,), heads=8, batch=4),
}


def torch_transformer_seconds(cfg: Config, repeats: int) -> float | None:
    """Median seconds of the same stack in PyTorch (nn.TransformerEncoderLayer, the same
    mask and final norm), forward and backward of a unit-Gaussian gradient, or None."""
    try:
        import torch
    except ImportError:
        return None
    from initscope.codegen_transformer import fits_encoder_layer

    if not fits_encoder_layer(cfg):
        return None
    d, pre = cfg.width[0], cfg.norm_at == "before"
    layer = torch.nn.TransformerEncoderLayer(d, cfg.heads, cfg.mlp_ratio * d, dropout=0.0,
                                             activation=cfg.activation, batch_first=True,
                                             norm_first=pre)
    model = torch.nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False,
                                        norm=torch.nn.LayerNorm(d) if pre else None)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(cfg.tokens)
    x = torch.randn(cfg.batch, cfg.tokens, d, requires_grad=True)
    upstream = torch.randn(cfg.batch, cfg.tokens, d)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model(x, mask=mask, is_causal=True).backward(upstream)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


class _Standardize:
    """Scaled weight standardization as a parametrization (gamma 1), made on first use
    so that the module imports without PyTorch."""

    def __new__(cls):
        import torch

        class Standardize(torch.nn.Module):
            def forward(self, w):
                mean = w.mean(dim=1, keepdim=True)
                std = w.std(dim=1, unbiased=False, keepdim=True)
                return (w - mean) / (std * w.shape[1] ** 0.5)

        return Standardize()


def torch_autograd_seconds(cfg: Config, repeats: int) -> float | None:
    """Median seconds of the same work written with PyTorch autograd, or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(cfg.seed)
    fans = cfg.fans()
    layers = [torch.nn.Linear(fi, fo, bias=False) for fi, fo in fans]
    for layer in layers:
        torch.nn.init.xavier_normal_(layer.weight)
    act = {"tanh": torch.tanh, "relu": torch.relu}[cfg.activation]
    norm_of = {"batch": lambda n: torch.nn.BatchNorm1d(n, eps=1e-5),
               "layer": lambda n: torch.nn.LayerNorm(n, eps=1e-5),
               "rms": lambda n: torch.nn.RMSNorm(n, eps=1e-5)}.get(cfg.norm)
    norms = [norm_of(fo) if norm_of else None for _, fo in fans]
    if cfg.norm == "nf":  # the standardization as PyTorch users write it
        for layer in layers:
            torch.nn.utils.parametrize.register_parametrization(layer, "weight", _Standardize())
    before = cfg.norm_at == "before"
    x = torch.randn(cfg.batch, cfg.inputs)
    upstream = torch.randn(cfg.batch, fans[-1][1])

    def stats(t: torch.Tensor) -> None:
        t = t.detach()
        (t.mean().item(), t.std().item(), t.min().item(), t.max().item(),
         torch.histc(t, bins=DEFAULT_BINS))

    def once() -> None:
        hs = []
        h = x
        for layer, norm in zip(layers, norms):
            z = layer(h)
            if norm is not None and before:
                z = norm(z)
            stats(z)
            h = act(z)
            if norm is not None and not before:
                h = norm(h)
            h.retain_grad()
            stats(h)
            hs.append(h)
        h.backward(upstream)
        for layer, h in zip(layers, hs):
            stats(h.grad)
            raw = layer.parametrizations.weight.original if cfg.norm == "nf" else layer.weight
            stats(raw.grad)
            raw.grad = None

    once()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def training_rows(cfg: Config, repeats: int) -> list[str]:
    """One training step (forward, backward, update, records) with SGD, SGD with
    momentum and Adam, against one recompute of the statistics and the matmul floor,
    all timed round-robin in this run."""
    from initscope.bench import MatmulFloor
    from initscope.sim import Simulator
    from initscope.sim.training import Trainer

    floor, sim = MatmulFloor(cfg), Simulator()
    trainers = {"SGD": Trainer(cfg), "SGD, momentum 0.9": Trainer(cfg.replace(momentum=0.9)),
                "Adam": Trainer(cfg.replace(optimizer="adam", lr=1e-3))}
    sim.run(cfg)
    cases = {"floor": floor, **{k: t.step for k, t in trainers.items()}}
    times: dict[str, list[float]] = {k: [] for k in [*cases, "recompute"]}
    for i in range(repeats):
        for name, fn in [*cases.items(),
                         ("recompute", lambda i=i: sim.run(cfg.replace(gain=1 + 1e-3 * (i % 2))))]:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return [f"| {name}, {cfg.task} task, course shapes | {1000 * med['floor']:.1f} "
            f"| {1000 * med['recompute']:.0f} ms | {1000 * med[name]:.0f} ms "
            f"| {med[name] / med['floor']:.2f}x | {med[name] / med['recompute']:.2f}x |"
            for name in trainers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the course config only")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("| case | floor ms | changed setting | new seed | PyTorch autograd |")
    print("|---|---:|---:|---:|---:|")
    for name, cfg in list(CASES.items())[: 1 if args.quick else None]:
        repeats = args.repeats if cfg.depth <= 10 else 3
        rows = {r.name: r for r in run_bench(cfg, repeats)}
        floor = rows["floor"].seconds
        torch_s = torch_autograd_seconds(cfg, repeats) \
            if cfg.activation in ("tanh", "relu") and cfg.arch == "plain" else None
        if cfg.arch == "transformer":
            torch_s = torch_transformer_seconds(cfg, repeats)
        compared = cfg.arch in ("plain", "transformer")
        torch_cell = (f"{torch_s / floor:.2f}x" if torch_s else "-" if not compared
                      else "not installed")
        print(f"| {name} | {1000 * floor:.1f} | {rows['changed setting'].ratio:.2f}x "
              f"| {rows['new seed'].ratio:.2f}x | {torch_cell} |")
    print("\n| training step | floor ms | one recompute | one step | x floor | x recompute |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in training_rows(Config(scheme="xavier_normal"), args.repeats):
        print(row)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:.0f} MiB; ratios are medians over the "
          "floor measured in the same run")


if __name__ == "__main__":
    main()
