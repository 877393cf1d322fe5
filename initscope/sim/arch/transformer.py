"""Transformer blocks over a batch of token sequences (sim/transformer.py has the block).

The tokens are `batch` sequences of `tokens` embeddings of `width` units, unit
variance, normal or uniform (input_dist); with correlation c each embedding is
sqrt(c) s + sqrt(1 - c) e, s shared by the sequence's tokens, so tokens start at
cosine similarity about c. The norm option picks the blocks' norm (layer or rms)
and norm_at its place: before the branches (pre-norm) or after the adds (post-norm);
norm none leaves the stream unnormalized. Every weight group takes the scheme, or
a transformer recipe its own std (recipes.py).

A row of the result is a block: the MLP's pre-activations, the stream after the
block, the gradient w.r.t. that stream (from a unit-Gaussian gradient at the output;
a pre-norm stack's output is the last block's stream through a final norm, as GPT-2's
ln_f), the MLP's first weight's gradient, and each stream unit's mean over the
batch and the tokens. Each block has meters as well (result.BlockMeters).

Predictions, for independent zero-mean weights (the derivations are in the
docstrings of `logit_std_theory` and `mlp_variance_theory`): the logits' std at
every block whose attention reads normalized tokens (and at block 1, which reads
the unit embeddings), the MLP branch's variance wherever a norm feeds the MLP, and
entropy exactly 1 where the query or key weights are zero.
"""

from __future__ import annotations

import math

import numpy as np

from initscope.sim.activations import ACTIVATIONS
from initscope.sim.arch.base import Arch, RowRun, Workspace, keep_draws
from initscope.sim.arch.common import check_single_width
from initscope.sim.attention import entropy, token_similarity
from initscope.sim.config import Config, ConfigError
from initscope.sim.gaussian import gaussian_moments
from initscope.sim.layers import SQRT3, bias_draw, bias_vector, weight_draw, weight_matrix
from initscope.sim.memory import Estimate, basis_transient, copies, sample_cap
from initscope.sim.recipes import GROUPS, recipe_stds
from initscope.sim.result import BlockMeters, LayerResult, RunResult
from initscope.sim.schemes import NORMAL, SCHEMES, UNIFORM, BiasSpec, WeightSpec, bias_spec
from initscope.sim.transformer import (
    BlockSetup,
    BlockWeights,
    block,
    block_backward,
    norm_tokens,
    norm_tokens_backward,
)

NOTE = "no prediction per row: the meters (M) predict the logits, MLP branch, uniform attention"


def placement(cfg: Config) -> str:
    """pre, post or none (sim/transformer.py's names for the norm's place)."""
    if cfg.norm == "none":
        return "none"
    return "pre" if cfg.norm_at == "before" else "post"


def group_specs(cfg: Config) -> tuple[dict[str, WeightSpec], float]:
    """Each weight group's spec, and the skip's multiplier alpha."""
    d, r = cfg.width[0], cfg.mlp_ratio
    fans = {g: (d, d) for g in "qkvo"} | {"w1": (d, r * d), "w2": (r * d, d)}
    scheme = SCHEMES[cfg.scheme]
    if scheme.recipe:
        stds = recipe_stds(cfg.scheme, d, r, cfg.depth)
        return ({g: WeightSpec(NORMAL, stds[g] * cfg.gain, *fans[g]) for g in GROUPS},
                stds["alpha"])
    return {g: scheme.weight_spec(cfg, *fans[g]) for g in GROUPS}, 1.0


def biases(cfg: Config) -> tuple[BiasSpec, BiasSpec]:
    """The MLP's two biases, by their layers' fan-ins (a recipe's own, under auto, are
    zero: it has no bias rule of its own)."""
    d = cfg.width[0]
    return bias_spec(cfg, d), bias_spec(cfg, cfg.mlp_ratio * d)


def setup(cfg: Config) -> BlockSetup:
    return BlockSetup(cfg.heads, placement(cfg), cfg.norm if cfg.norm != "none" else "layer",
                      cfg.activation, cfg.slope, cfg.mask == "causal", cfg.scheme == "mup",
                      cfg.skips == "on", group_specs(cfg)[1])


def independent(cfg: Config) -> bool:
    """The theory's premise: zero-mean independent weights (not constant init)."""
    return SCHEMES[cfg.scheme].zero_mean or cfg.value * cfg.gain == 0.0


def logit_std_theory(cfg: Config, block_index: int) -> float | None:
    """The attention logits' std at a block, where its input is known.

    A logit is scale q.k over the d_head coordinates of a head, q = u Wq, k = u' Wk
    for two tokens u, u'. Given the tokens, the coordinates q_i and k_i are
    independent zero-mean Gaussians over the weights (different columns, and Wq and
    Wk are independent) with variances s_q^2 |u|^2 and s_k^2 |u'|^2, so
        Var(logit) = scale^2 d_head s_q^2 s_k^2 |u|^2 |u'|^2.
    A layer or RMS norm (scale 1) makes |u|^2 = d (to eps), and the unit embeddings
    have E|u|^2 |u'|^2 = d^2 (1 + O(1/d)), so with scale 1/sqrt(d_head)
        std = d s_q s_k        (1 for s^2 = 1/d, at any head size),
    and muP's scale 1/d_head divides it by sqrt(d_head) (attention.py). Known at every
    pre-norm block, at every post-norm block after the first (the stream is
    normalized there) and at block 1 (the embeddings)."""
    if not independent(cfg) or (placement(cfg) == "none" and block_index > 1):
        return None
    specs, _ = group_specs(cfg)
    d, d_head = cfg.width[0], cfg.width[0] // cfg.heads
    std = d * specs["q"].std * specs["k"].std
    return std / math.sqrt(d_head) if cfg.scheme == "mup" else std


def mlp_variance_theory(cfg: Config) -> float | None:
    """The MLP branch's variance before it joins the stream, where a norm feeds it.

    The MLP reads normalized tokens u, |u|^2 = d: each hidden pre-activation
    z_j = u . W1_j + b1_j is, over the weights, N(mean b1, d s_1^2 + Var b1), so
    E phi(z)^2 = m2 (Gaussian quadrature, gaussian.py). An output unit
    sum_j phi(z_j) W2_jk + b2_k over r d hidden units then has variance
        r d s_2^2 m2 + Var b2.
    Pre-norm normalizes the MLP's input itself; post-norm's comes out of a norm."""
    if placement(cfg) == "none" or not independent(cfg):
        return None
    specs, _ = group_specs(cfg)
    b1, b2 = biases(cfg)
    d, act = cfg.width[0], ACTIVATIONS[cfg.activation]
    pre = math.sqrt(d * specs["w1"].var + b1.var)
    m2 = gaussian_moments(act, b1.mean, pre, cfg.slope).phi2
    return cfg.mlp_ratio * d * specs["w2"].var * m2 + b2.var


def meter_theory(cfg: Config, block_index: int) -> dict[str, float]:
    out = {}
    logit = logit_std_theory(cfg, block_index)
    if logit is not None:
        out["logit_std"] = logit
    mlp = mlp_variance_theory(cfg)
    if mlp is not None:
        out["mlp_variance"] = mlp
    specs, _ = group_specs(cfg)
    if specs["q"].scale == 0 or specs["k"].scale == 0:
        out["entropy"] = 1.0  # every logit 0: uniform over the keys each query sees
    return out


def _input_keys(cfg: Config, dt: np.dtype) -> tuple[tuple, tuple | None]:
    kind = UNIFORM if cfg.input_dist == "uniform" else NORMAL
    own = (kind, cfg.seed, "input", 0, (cfg.batch, cfg.tokens, cfg.width[0]), dt)
    shared = (kind, cfg.seed, "input", 1, (cfg.batch, 1, cfg.width[0]), dt)
    return own, shared if cfg.correlation else None


def _upstream_key(cfg: Config, dt: np.dtype) -> tuple:
    return (NORMAL, cfg.seed, "upstream", 0, (cfg.batch, cfg.tokens, cfg.width[0]), dt)


class TransformerRun(RowRun):
    def embeddings(self) -> np.ndarray:
        own_key, shared_key = _input_keys(self.cfg, self.dt)
        unit = self.dt.type(SQRT3 if own_key[0] == UNIFORM else 1.0)
        x = self.draws.basis(*own_key) * unit
        c = self.cfg.correlation
        if shared_key is not None:
            x *= self.dt.type(math.sqrt(1.0 - c))
            x += self.draws.basis(*shared_key) * self.dt.type(math.sqrt(c) * unit)
        return x

    def weights(self, b: int, specs: dict[str, WeightSpec]) -> BlockWeights:
        cfg, dt = self.cfg, self.dt
        ws = {g: weight_matrix(cfg, self.draws, len(GROUPS) * b + i, specs[g], dt)
              for i, g in enumerate(GROUPS)}
        b1, b2 = biases(cfg)
        d, r = cfg.width[0], cfg.mlp_ratio
        return BlockWeights(ws["q"], ws["k"], ws["v"], ws["o"], ws["w1"],
                            bias_vector(cfg, self.draws, 2 * b, b1, r * d, dt), ws["w2"],
                            bias_vector(cfg, self.draws, 2 * b + 1, b2, d, dt))

    def weight_std(self, b: int, spec: WeightSpec) -> float:
        """The measured std of block b's W1, from its cached unit draw's."""
        key = weight_draw(self.cfg, len(GROUPS) * b + GROUPS.index("w1"), spec, self.dt)
        return 0.0 if key is None else abs(spec.scale) * self.draws.measured_std(*key)

    def variance(self, a: np.ndarray) -> float:
        summary, _ = self.summarize(a)
        return summary.std ** 2

    def execute(self) -> RunResult:
        cfg = self.cfg
        d, s = cfg.width[0], setup(cfg)
        specs, _ = group_specs(cfg)
        layers = [LayerResult(b + 1, d, d, 0.0, specs["w1"].std) for b in range(cfg.depth)]
        # the predictions are the same from block 2 on (block 1 reads the embeddings)
        first, later = meter_theory(cfg, 1), meter_theory(cfg, 2)
        result = RunResult(cfg, layers, theory_note=NOTE, meters=[])
        x = self.embeddings()
        result.input_similarity = token_similarity(x)
        weights, caches = [], []
        with np.errstate(all="ignore"):
            for b in range(cfg.depth):
                self.check()
                w = self.weights(b, specs)
                lay = layers[b]
                lay.weight_std = self.weight_std(b, specs["w1"])
                y, cache = block(x, w, s)
                weights.append(w)
                caches.append(cache)
                ok = self.measure(lay, "preactivation", cache.z)
                ok &= self.measure(lay, "activation", y)
                self.unit_flags(lay, cache.h.reshape(-1, cache.h.shape[-1]))
                if ok:
                    self.channel_means(lay, y.reshape(-1, d))
                result.meters.append(BlockMeters(
                    b + 1, lay.activation.std ** 2, self.variance(cache.attn_branch),
                    self.variance(cache.mlp_branch), entropy(cache.attn.p, s.causal),
                    cache.attn.logits_std, token_similarity(y) if ok else math.nan,
                    predicted=dict(first if b == 0 else later)))
                if not ok:
                    result.overflow_layer, result.overflow_pass = b + 1, "forward"
                    break
                x = y
        # a pre-norm stack ends in a norm of its own (GPT-2's ln_f): the gradient
        # comes back through it
        final = norm_tokens(s.norm, x)[1] if s.place == "pre" and ok else None

        def backward() -> None:
            g = self.draws.normal(*_upstream_key(cfg, self.dt)[1:])
            if final is not None:
                g = norm_tokens_backward(g, final)
            with np.errstate(all="ignore"):
                for b in range(cfg.depth - 1, -1, -1):
                    self.check()
                    lay = layers[b]
                    if not self.measure(lay, "gradient", g):
                        result.overflow_layer, result.overflow_pass = b + 1, "backward"
                        return
                    g, grads = block_backward(g, caches[b], weights[b], s)
                    caches[b] = weights[b] = None  # free as the pass goes down
                    self.measure(lay, "weight_gradient", grads["w1"])
                    norms = {k: float(np.linalg.norm(grads[f"w{k}"])) for k in "qkvo"}
                    norms["mlp"] = math.hypot(float(np.linalg.norm(grads["w1"])),
                                              float(np.linalg.norm(grads["w2"])))
                    result.meters[b].grad_norms = norms

        return self.finish(result, backward)


def run(space: Workspace, cfg: Config, cancel=None, on_forward=None) -> RunResult:
    """Keep this config's draws (a change of scheme, gain or norm draws nothing new)."""
    dt = np.dtype(cfg.dtype)
    specs, _ = group_specs(cfg)
    b1, b2 = biases(cfg)
    d, r = cfg.width[0], cfg.mlp_ratio
    wanted = [weight_draw(cfg, len(GROUPS) * b + i, specs[g], dt)
              for b in range(cfg.depth) for i, g in enumerate(GROUPS)]
    wanted += [bias_draw(cfg, 2 * b, b1, r * d, dt) for b in range(cfg.depth)]
    wanted += [bias_draw(cfg, 2 * b + 1, b2, d, dt) for b in range(cfg.depth)]
    wanted += [*_input_keys(cfg, dt), _upstream_key(cfg, dt)]
    keep_draws(space.draws, wanted)
    space.draws.prefetch([w for w in wanted if w is not None])  # both cores, for a new seed
    return TransformerRun(space.draws, cfg, cancel, on_forward).execute()


def check(cfg: Config) -> None:
    check_single_width(cfg, "transformer network")
    d = cfg.width[0]
    if d % cfg.heads:
        raise ConfigError(f"heads must divide the width: {cfg.heads} heads do not split "
                          f"width {d} evenly")


def estimate(cfg: Config) -> Estimate:
    """Every block's weights (and their draws) and its forward cache kept for the
    backward pass; the attention's (batch, heads, T, T) arrays and the MLP's hidden
    units dominate at long sequences and wide MLPs."""
    item = np.dtype(cfg.dtype).itemsize
    d, r, L = cfg.width[0], cfg.mlp_ratio, cfg.depth
    rows = cfg.batch * cfg.tokens
    square = cfg.batch * cfg.heads * cfg.tokens ** 2
    specs, _ = group_specs(cfg)
    weights = sum(copies(specs[g]) * specs[g].fan_in * specs[g].fan_out for g in GROUPS)
    draws = (L * (weights + 2 * (r + 1) * d)
             + 4 * rows * d + 2 * cfg.batch * d) * item  # embeddings, upstream, shared
    # per block: its input, the norms' outputs, q, k, v, the heads' context, both
    # branches, the middle stream (7 + 4 of width d), z and phi(z), and p
    per_block = (11 * d + 2 * r * d) * rows + square + 4 * rows
    kept = (L * per_block + rows * d) * item
    # one block's temporaries: the logits and the softmax's steps, the backward's
    # (batch, heads, T, T) products and the weights' gradients
    scratch = (5 * square + (3 * r + 12) * rows * d
               + 2 * (4 + 2 * r) * d * d) * item + 2 * 65536 * 8
    cap = sample_cap(cfg)
    samples = L * (2 * min(cap, rows * r * d) + 3 * min(cap, rows * d) + d) * item
    transient = max(basis_transient(specs[g].basis, specs[g].fan_in * specs[g].fan_out, item)
                    for g in GROUPS)
    return Estimate(draws, kept, scratch, samples, transient)


def shape(cfg: Config) -> str:
    place = {"pre": "pre-norm", "post": "post-norm", "none": "no norm"}[placement(cfg)]
    norm = "" if cfg.norm in ("none", "layer") else f" ({cfg.norm})"
    skips = "" if cfg.skips == "on" else ", no skips"
    return (f"{cfg.depth} {place}{norm} transformer blocks{skips}, {cfg.tokens} tokens, "
            f"{cfg.heads} heads, {cfg.mask}")


TRANSFORMER = Arch(
    name="transformer",
    description="transformer blocks x + Attn(N x), then x + MLP(N x), over token sequences",
    row_noun="blocks",
    row_prefix="B",
    run=run,
    estimate=estimate,
    theory=lambda cfg: None,
    shape=shape,
    check=check,
    normalizes=True,
    norms=("none", "layer", "rms"),
    attends=True,
    defaults={"width": (256,), "depth": 8, "batch": 8, "activation": "gelu",
              "norm": "layer", "scheme": "gpt2"},
)
