"""Transformer init recipes: a std for each weight group of a block, and the skip's
multiplier, as published. The schemes registry offers them for the transformer
network; its blocks read them here.

Groups: the attention's query, key, value and output projections (q, k, v, o, each
d x d) and the MLP's up and down projections (w1, d x ratio d; w2, ratio d x d).
"alpha" multiplies the skip, x -> alpha x + F(x) (1 but for DeepNet).

A leaf of the core: it imports nothing of initscope.
"""

from __future__ import annotations

import math

GROUPS = ("q", "k", "v", "o", "w1", "w2")
OUTPUTS = ("o", "w2")  # the projections that write into the residual stream
GPT2_STD = 0.02

FORMULAS = {
    "gpt2": "transformer (Radford et al. 2019): W ~ N(0, 0.02^2), the residual output "
            "projections (attention out, MLP down) N(0, (0.02/sqrt(2 L))^2), zero biases",
    "deepnet": "transformer, DeepNorm (Wang et al. 2022): x <- norm(alpha x + F(x)), "
               "alpha = (2L)^(1/4); xavier_normal, value, out and MLP weights times "
               "beta = (8L)^(-1/4); zero biases",
    "small_init": "transformer (Nguyen & Salazar 2019): W ~ N(0, 2/(5 d)), the output "
                  "projections N(0, (2/(L sqrt d))^2) (Wang's rule); zero biases",
    "mup": "transformer, muP (Yang et al. 2022): zero query weights, logits q.k/d_head "
           "instead of /sqrt(d_head), N(0, 1/fan_in) elsewhere; zero biases",
    "zero_out": "transformer: N(0, 1/fan_in), the output projections (attention out, MLP "
                "down) zero, so every block starts as the identity; zero biases",
}
RECIPES = tuple(FORMULAS)


def recipe_stds(recipe: str, d: int, ratio: int, depth: int) -> dict[str, float]:
    """Each group's std under `recipe` for `depth` blocks of width d, and "alpha":

    - gpt2 (Radford et al. 2019, "Language models are unsupervised multitask
      learners", section 2.3; nanoGPT's `c_proj` rule): 0.02 everywhere, the residual
      output projections 0.02 / sqrt(2 depth), two of them per block;
    - deepnet (Wang et al. 2022, "DeepNet: scaling transformers to 1,000 layers",
      its DeepNorm pseudocode, encoder-only: N = depth): the skip scaled by
      alpha = (2N)^(1/4); Xavier normal everywhere, with gain beta = (8N)^(-1/4) for
      the value, output and both MLP weights and 1 for query and key;
    - small_init (Nguyen & Salazar 2019, "Transformers without tears"; GPT-NeoX's
      `small_init_init_method`): Var 2 / (5 d), with the output projections at std
      2 / (depth sqrt(d)) (the companion rule `wang_init` of GPT-NeoX);
    - mup (Yang et al. 2022, Tensor Programs V; mutransformers' `query_zero_init`):
      zero query weights (attention starts uniform; the logits are scaled by
      1/d_head), 1/sqrt(fan_in) elsewhere;
    - zero_out: 1/sqrt(fan_in) everywhere but the output projections, which start at
      zero, so every block starts as the identity."""
    fan_in = {"q": d, "k": d, "v": d, "o": d, "w1": d, "w2": ratio * d}
    fan_out = {"q": d, "k": d, "v": d, "o": d, "w1": ratio * d, "w2": d}
    if recipe == "gpt2":
        stds = {g: GPT2_STD for g in GROUPS}
        stds.update({g: GPT2_STD / math.sqrt(2 * depth) for g in OUTPUTS})
        return {**stds, "alpha": 1.0}
    if recipe == "deepnet":
        beta = (8 * depth) ** -0.25
        stds = {g: math.sqrt(2 / (fan_in[g] + fan_out[g])) * (1.0 if g in "qk" else beta)
                for g in GROUPS}
        return {**stds, "alpha": (2 * depth) ** 0.25}
    if recipe == "small_init":
        stds = {g: math.sqrt(2 / (5 * d)) for g in GROUPS}
        stds.update({g: 2 / (depth * math.sqrt(d)) for g in OUTPUTS})
        return {**stds, "alpha": 1.0}
    base = {g: 1 / math.sqrt(fan_in[g]) for g in GROUPS}
    if recipe == "mup":
        return {**base, "q": 0.0, "alpha": 1.0}
    if recipe == "zero_out":
        return {**base, **{g: 0.0 for g in OUTPUTS}, "alpha": 1.0}
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
