"""Named experiments one key away: the course sequence, symmetry, framework defaults.

A preset sets the initialization and the activation (every keyed preset names its
activation, so a preset key gives the same network whatever came before), and
leaves the network's shape (depth, width, batch) and the seed as the user set them.
"""

from __future__ import annotations

from dataclasses import dataclass

from initscope.sim.config import Config

# the fields a preset resets before applying its own changes: the init, and the
# training settings (a preset's lesson must not depend on what came before)
_RESET = dict(std=0.01, gain=1.0, bias="auto", bias_value=0.01, mode="fan_in", arch="plain",
              init_steps=-1, task="teacher", optimizer="sgd", lr=0.01, momentum=0.0,
              batch_size=0, steps=100, norm="none", norm_at="before", nf_alpha=0.2,
              tokens=64, heads=4, mlp_ratio=4, mask="causal", correlation=0.0, skips="on")
# (a preset may also set any other field). Learning rates: the largest of 0.01, 0.003,
# 0.001 at which 500 SGD steps on the teacher task do not diverge on the course
# shapes (10 x 500, batch 1000); only He ReLU and constant init need less than 0.01.


@dataclass(frozen=True)
class Preset:
    key: str  # "" for presets reached only by name
    name: str
    title: str
    description: str
    changes: dict

    def apply(self, cfg: Config) -> Config:
        return cfg.replace(**{**_RESET, **self.changes})


PRESETS: list[Preset] = [
    Preset("1", "small_tanh", "tanh, N(0, 0.01^2)",
           "weights too small: each tanh layer shrinks the signal until it is 0",
           dict(scheme="normal", std=0.01, activation="tanh")),
    Preset("2", "large_tanh", "tanh, N(0, 1)",
           "weights too large: every tanh unit saturates at -1 or +1",
           dict(scheme="normal", std=1.0, activation="tanh")),
    Preset("3", "lecun_tanh", "tanh, 1/sqrt(fan_in)",
           "variance kept: activations stay spread out in every layer",
           dict(scheme="lecun_normal", activation="tanh")),
    Preset("4", "lecun_relu", "ReLU, 1/sqrt(fan_in)",
           "ReLU halves the second moment: the signal shrinks layer by layer",
           dict(scheme="lecun_normal", activation="relu")),
    Preset("5", "he_relu", "ReLU, He (2/fan_in)",
           "the factor 2 makes up for ReLU: the variance holds",
           dict(scheme="he_normal", activation="relu", lr=0.003)),
    Preset("6", "zeros", "zero init",
           "all weights 0: every unit identical, gradients vanish below the top",
           dict(scheme="zeros", bias="zeros", activation="tanh")),
    Preset("7", "constant", "constant init",
           "all weights equal: the units of a layer never differ",
           dict(scheme="constant", bias="zeros", activation="tanh", lr=0.003)),
    Preset("8", "torch_linear", "PyTorch nn.Linear default",
           "kaiming_uniform(a=sqrt 5): Var = 1/(3 fan_in), bias U(+-1/sqrt fan_in)",
           dict(scheme="torch_linear", activation="tanh")),
    Preset("9", "keras_dense", "Keras Dense default",
           "glorot_uniform weights, zero bias", dict(scheme="keras_dense", activation="tanh")),
    Preset("0", "flax_dense", "Flax Dense default",
           "lecun_normal (truncated) weights, zero bias",
           dict(scheme="flax_dense", activation="tanh")),
    Preset("", "res_plain", "residual: plain He blocks",
           "both branch layers He: the stream's variance triples with every block",
           dict(arch="residual", branch="plain", scheme="he_normal", activation="relu")),
    Preset("", "res_zero_last", "residual: zero last layer",
           "the branch's last layer starts at 0: the variance stays the input's",
           dict(arch="residual", branch="zero_last", scheme="he_normal", activation="relu")),
    Preset("", "bn_hides_init", "batch norm hides a tiny init",
           "N(0, 0.01^2) ReLU with batch norm: the forward pass looks healthy, but the "
           "gradient grows by pi/(pi-1) in variance at every layer down",
           dict(scheme="normal", std=0.01, activation="relu", norm="batch")),
    Preset("", "ln_relu", "layer norm, ReLU",
           "layer norm before ReLU: the forward pass as healthy, and the gradient holds",
           dict(scheme="normal", std=0.01, activation="relu", norm="layer")),
    Preset("", "pre_norm", "residual: pre-norm",
           "x + F(LN(x)) with He blocks: each block adds the same variance, so the "
           "stream's variance grows linearly with depth",
           dict(arch="residual", branch="plain", scheme="he_normal", activation="relu",
                norm="layer", norm_at="before")),
    Preset("", "post_norm", "residual: post-norm",
           "LN(x + F(x)): the stream is reset to unit variance after every block",
           dict(arch="residual", branch="plain", scheme="he_normal", activation="relu",
                norm="layer", norm_at="after")),
    Preset("", "bn_resnet", "residual: batch-norm ResNet",
           "x + F(BN(x)): the batch-normalized ResNet that NF-ResNets set out to match",
           dict(arch="residual", branch="plain", scheme="he_normal", activation="relu",
                norm="batch", norm_at="before")),
    Preset("", "nf_resnet", "residual: NF-ResNet",
           "x + alpha F(x / beta) with scaled weight standardization: the variance grows "
           "by alpha^2 = 0.04 per block, as in a batch-normalized ResNet, without a norm",
           dict(arch="residual", branch="plain", scheme="he_normal", activation="relu",
                norm="nf", nf_alpha=0.2)),
    Preset("", "conv_he", "conv: He, 3x3",
           "ten 3x3 convolutions of 64 channels on 16x16 images, He ReLU: fan_in = "
           "64 x 9; the border positions, padded with zeros, see fewer inputs",
           dict(arch="conv", scheme="he_normal", activation="relu", batch=32, channels=64)),
    Preset("", "conv_torch", "conv: PyTorch Conv2d default",
           "kaiming_uniform(a = sqrt 5) with fan_in = channels k^2: Var = 1/(3 fan_in), "
           "too small for ReLU, so the activations shrink",
           dict(arch="conv", scheme="torch_linear", activation="relu", batch=32)),
    Preset("", "conv_bn", "conv: batch norm, tiny init",
           "BatchNorm2d (per channel over images and pixels) before ReLU: N(0, 0.01^2) "
           "kernels look healthy forward, while the gradients grow by pi/(pi-1) a layer",
           dict(arch="conv", scheme="normal", std=0.01, activation="relu", norm="batch",
                channels=32, batch=32)),
    Preset("", "conv_dirac", "conv: Dirac (identity) kernels",
           "PyTorch's dirac_: each layer passes its input on, so a ReLU stack is relu(x) at "
           "every depth and the theory is exact",
           dict(arch="conv", scheme="dirac", activation="relu", batch=32)),
    Preset("", "conv_delta", "conv: delta-orthogonal",
           "an orthogonal channel mixing at the kernel's centre (Xiao et al. 2018): every "
           "pixel's norm is kept; with tanh it stays near dynamical isometry",
           dict(arch="conv", scheme="delta_orthogonal", activation="tanh", channels=64,
                batch=32, depth=20)),
    Preset("", "resnet_plain", "ResNet: He blocks, no norm",
           "3x3 conv blocks x + F(x) with He kernels: the stream's variance doubles with "
           "every block (signal propagation plot)",
           dict(arch="resconv", scheme="he_normal", activation="relu", bias="zeros",
                channels=32, batch=16)),
    Preset("", "resnet_bn", "ResNet: batch norm",
           "pre-activation BatchNorm2d blocks x + F(BN(x)): the stream's variance grows by "
           "a fixed amount a block, linearly",
           dict(arch="resconv", scheme="he_normal", activation="relu", bias="zeros",
                norm="batch", channels=32, batch=16)),
    Preset("", "resnet_nf", "ResNet: normalizer-free",
           "NF-ResNet on images: x + 0.2 F(x / beta) with scaled weight standardization; "
           "variance 1 + k alpha^2 at block k and channel means near zero, no norm at all",
           dict(arch="resconv", scheme="he_normal", activation="relu", bias="zeros",
                norm="nf", nf_alpha=0.2, channels=32, batch=16)),
    Preset("", "rnn_orthogonal", "RNN: orthogonal",
           "orthogonal W keeps the hidden norm: only tanh contracts it, the same every draw",
           dict(arch="rnn", scheme="orthogonal", activation="tanh", width=(128,), inputs=128,
                rnn_input="first")),
    Preset("", "rnn_xavier", "RNN: Xavier",
           "a Gaussian W stretches some directions and squeezes others: the norm wanders",
           dict(arch="rnn", scheme="xavier_normal", activation="tanh", width=(128,),
                inputs=128, rnn_input="first")),
    *(Preset("", name, title, description,
             dict(arch="transformer", width=(256,), batch=8, activation="gelu", norm="layer",
                  **changes))
      for name, title, description, changes in (
        ("tf_gpt2", "transformer: GPT-2, pre-norm",
         "N(0, 0.02^2), the two output projections of a block / sqrt(2L): the stream's "
         "variance holds at any depth", dict(scheme="gpt2", depth=24)),
        ("tf_gpt2_unscaled", "transformer: N(0, 0.02^2), unscaled",
         "GPT-2's std without the 1/sqrt(2L): every pre-norm block adds the same variance, "
         "so the stream grows linearly with depth", dict(scheme="normal", std=0.02, depth=32)),
        ("tf_pre_norm", "transformer: pre-norm, 1/sqrt(fan_in)",
         "x + F(LN x) with LeCun weights: the stream grows by about a unit of variance a "
         "block, and the gradients shrink toward the output",
         dict(scheme="lecun_normal", depth=24)),
        ("tf_post_norm", "transformer: post-norm, 1/sqrt(fan_in)",
         "LN(x + F(x)): the stream stays at unit variance, the tokens drift together, and "
         "the last blocks' gradients are about sqrt(L) times pre-norm's (Xiong et al.)",
         dict(scheme="lecun_normal", norm_at="after", depth=24)),
        ("tf_deepnet", "transformer: DeepNet",
         "post-norm with the skip up-weighted by (2L)^(1/4) and v, out and MLP weights by "
         "(8L)^(-1/4): the tokens stay apart", dict(scheme="deepnet", norm_at="after",
                                                    depth=24)),
        ("tf_no_skips", "transformer: no skips",
         "attention and the MLP alone: attention averages each sequence's tokens, and with "
         "no skip to keep them apart they collapse to one (rank collapse)",
         dict(scheme="gpt2", skips="off", depth=24)),
        ("tf_mup", "transformer: muP, zero query",
         "zero query weights: every logit is 0 and attention is exactly uniform, entropy 1 "
         "at every block", dict(scheme="mup", depth=8)),
        ("tf_zero_out", "transformer: zero output projections",
         "the attention and MLP output projections start at 0: every block is the "
         "identity, yet their own gradients are not zero", dict(scheme="zero_out", depth=8)),
      )),
    Preset("", "toy", "toy symmetry network",
           "2 inputs, two hidden layers of 2 identity units, constant weights, the output "
           "as the loss: w1 = w2, w3 = w4, w5 = ... = w8, w9 = w10 after every update. "
           "The loss has no floor (the output can always go lower): 10 steps show it",
           dict(scheme="constant", value=0.5, bias="zeros", activation="linear", depth=2,
                width=(2,), inputs=2, batch=4, task="output", lr=0.1, steps=10,
                optimizer="sgd", momentum=0.0)),
]

PRESETS_BY_NAME = {p.name: p for p in PRESETS}
