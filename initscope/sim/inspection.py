"""What a checkpoint's tensors are: their role, fans, statistics, the initialization
scheme each matches, and what a chain of its dense layers does to a signal.

Fans are PyTorch's (torch.nn.init._calculate_fan_in_and_fan_out): a weight is
(out, in) or (out, in, k, ...), fan_in = in x prod(k), fan_out = out x prod(k).

Matching. A tensor whose entries all equal one value is zeros, ones or a constant.
One whose rows (or columns) are orthonormal up to one scale is orthogonal with that
gain. Otherwise the entries are standardized by their own std and compared with the
three unit shapes initscope draws from, the normal, the uniform on +-sqrt 3 and the
normal cut at +-2 std (rescaled to unit variance, 0.87962566), by the Kolmogorov-
Smirnov distance D on up to 20000 entries; the smallest D names the shape, and its
p-value (the Kolmogorov distribution's tail at sqrt(n) D, conservative with an
estimated scale: a true scheme is rarely refused) must be at least 1e-3. A matrix
of independent entries also has its singular values inside the Marchenko-Pastur
edge, sigma (sqrt(rows) + sqrt(cols)); a trained matrix grows a few outside it, and
is then "no known scheme" even where its entries still look Gaussian. The scheme is
the one of that shape whose std at these fans is nearest the measured one; a gain
beyond the std's sampling error (5 standard errors) is solved for and named
("he_normal with gain 0.5").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from initscope.sim.erf import erf

SAMPLE = 20000
MIN_P = 1e-3
TRUNCATED_STD = 0.87962566103423978
SPECTRUM_MAX = 2048  # singular values of matrices up to this size in their smaller side
EDGE_MARGIN = 1.1  # Tracy-Widom's fluctuation at the edge is far below 10% at these sizes


@dataclass(frozen=True)
class Candidate:
    name: str
    shape: str  # normal, uniform or truncated
    std: float


def candidates(fan_in: int, fan_out: int) -> list[Candidate]:
    """The schemes initscope draws, at these fans: their shape and std."""
    avg = (fan_in + fan_out) / 2
    out = []
    for name, var in (("lecun_normal", 1 / fan_in), ("xavier_normal", 1 / avg),
                      ("he_normal", 2 / fan_in), ("he_normal (fan_out)", 2 / fan_out)):
        out.append(Candidate(name, "normal", math.sqrt(var)))
    out.append(Candidate("N(0, 0.02^2) (GPT-2, BERT)", "normal", 0.02))
    for name, var in (("torch default (Linear, Conv)", 1 / (3 * fan_in)),
                      ("lecun_uniform", 1 / fan_in), ("xavier_uniform", 1 / avg),
                      ("he_uniform", 2 / fan_in)):
        out.append(Candidate(name, "uniform", math.sqrt(var)))
    for name, var in (("truncated lecun_normal (Keras, JAX, Flax)", 1 / fan_in),
                      ("truncated glorot_normal (Keras, JAX)", 1 / avg),
                      ("truncated he_normal (Keras, JAX)", 2 / fan_in),
                      ("trunc_normal(std=0.02) (timm, ViT)", 0.02 ** 2 * TRUNCATED_STD ** 2)):
        out.append(Candidate(name, "truncated", math.sqrt(var)))
    return out


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """PyTorch's fan_in and fan_out of a weight; a vector's are its length."""
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def role(name: str, shape: tuple[int, ...]) -> str:
    """What the tensor probably is, from its name and shape."""
    low = name.lower()
    parts = low.replace("/", ".").split(".")
    leaf = parts[-1]
    normish = "norm" in low or any(p.startswith(("ln", "bn", "gn")) for p in parts[:-1])
    if len(shape) <= 1:
        if normish and leaf in ("weight", "gamma", "scale", "g"):
            return "norm scale"
        if normish and leaf in ("bias", "beta", "b"):
            return "norm shift"
        if leaf in ("bias", "b", "beta") or low.endswith("bias"):
            return "bias"
        return "vector"
    if any(k in low for k in ("embed", "wte", "wpe", "tok_emb", "pos_emb")):
        return "embedding"
    if len(shape) >= 3:
        return "conv weight"
    return "dense weight"


def _cdf(shape: str, x: np.ndarray) -> np.ndarray:
    if shape == "normal":
        return 0.5 * (1 + erf(x / math.sqrt(2)))
    if shape == "uniform":
        return np.clip((x + math.sqrt(3)) / (2 * math.sqrt(3)), 0, 1)
    # the normal cut at +-2 and rescaled to unit variance: support +-2 / 0.8796
    z = np.clip(x * TRUNCATED_STD, -2.0, 2.0)
    lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))
    mass = 1 - 2 * lo
    return (0.5 * (1 + erf(z / math.sqrt(2))) - lo) / mass


def kolmogorov_p(d: float, n: int) -> float:
    """P(D_n >= d) under the null, from the Kolmogorov distribution with Stephens'
    small-sample correction (sqrt n + 0.12 + 0.11 / sqrt n) d."""
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if lam < 0.2:
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return float(min(max(2 * total, 0.0), 1.0))


def ks_distance(shape: str, standardized: np.ndarray) -> float:
    x = np.sort(standardized)
    n = x.size
    f = _cdf(shape, x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


@dataclass
class Match:
    """The scheme a tensor matches, or why none."""

    scheme: str | None  # None: no known scheme
    shape: str | None = None
    gain: float = 1.0
    p_value: float | None = None
    reason: str = ""

    def label(self) -> str:
        if self.scheme is None:
            return f"no known scheme ({self.reason})" if self.reason else "no known scheme"
        if abs(self.gain - 1) < 1e-12:
            return self.scheme
        return f"{self.scheme} with gain {self.gain:.3g}"


def singular_outliers(w: np.ndarray, std: float) -> int | None:
    """How many singular values lie beyond the Marchenko-Pastur edge of a matrix of
    independent entries of this std, or None when the matrix is too large to factor."""
    m = w.reshape(w.shape[0], -1)
    if min(m.shape) > SPECTRUM_MAX or min(m.shape) < 8 or std == 0:
        return None
    s = np.linalg.svd(m, compute_uv=False)
    edge = std * (math.sqrt(m.shape[0]) + math.sqrt(m.shape[1]))
    return int(np.count_nonzero(s > EDGE_MARGIN * edge))


def match(values: np.ndarray, shape: tuple[int, ...]) -> Match:
    """The scheme these values match at this shape's fans (module docstring)."""
    flat = values.reshape(-1)
    if flat.size == 0:
        return Match(None, reason="empty")
    bad = flat.size - int(np.count_nonzero(np.isfinite(flat)))
    if bad:
        return Match(None, reason=f"{bad} entries not finite")
    first = flat[0]
    if np.all(flat == first):
        name = "zeros" if first == 0 else "ones" if first == 1 else f"constant {first:.6g}"
        return Match(name, "constant")
    fan_in, fan_out = fans(shape)
    centre = _centre_tap(values, shape)
    if centre is not None:
        return centre
    if len(shape) >= 2:
        ortho = _orthogonal(values.reshape(shape[0], -1))
        if ortho is not None:
            return ortho
    n = flat.size
    mean, std = _stats(flat)[:2]
    if abs(mean) > 5 * std / math.sqrt(n) + 1e-12:
        return Match(None, reason=f"mean {mean:.3g}, not zero")
    step = max(1, n // SAMPLE)
    sample = flat[::step][:SAMPLE] / std
    scored = sorted((ks_distance(s, sample), s) for s in ("normal", "uniform", "truncated"))
    d, best = scored[0]
    p = kolmogorov_p(d, sample.size)
    if p < MIN_P:
        return Match(None, best, p_value=p, reason=f"KS p {p:.1e} against the nearest, {best}")
    if len(shape) >= 2:
        outliers = singular_outliers(values, std)
        if outliers:
            return Match(None, best, p_value=p, reason=f"{outliers} singular values beyond "
                         "the Marchenko-Pastur edge: structure, as training leaves")
    options = [c for c in candidates(fan_in, fan_out) if c.shape == best]
    chosen = min(options, key=lambda c: abs(math.log(std / c.std)))
    gain = std / chosen.std
    # the std's relative standard error: sqrt((kurtosis - 1) / (4 n)), kurtosis 3 for
    # the normal, 1.8 for the uniform, about 2.7 for the truncated normal
    kurt = {"normal": 3.0, "uniform": 1.8, "truncated": 2.7}[best]
    tolerance = 5 * math.sqrt((kurt - 1) / (4 * n))
    if abs(gain - 1) <= tolerance:
        gain = 1.0
    same = [c.name for c in options if c is not chosen and abs(c.std - chosen.std) <= 1e-12
            * chosen.std]
    name = chosen.name + (f" (= {', '.join(same)} at these fans)" if same else "")
    return Match(name, best, gain, p)


def _orthogonal(m: np.ndarray) -> Match | None:
    """Rows (or columns, whichever are fewer) orthonormal up to one gain."""
    if min(m.shape) > SPECTRUM_MAX or min(m.shape) < 2:
        return None
    short = m if m.shape[0] <= m.shape[1] else m.T
    gram = short @ short.T
    g2 = float(np.mean(np.diag(gram)))
    if g2 <= 0:
        return None
    off = np.abs(gram / g2 - np.eye(gram.shape[0])).max()
    if off > 1e-3:
        return None
    gain = math.sqrt(g2)
    return Match("orthogonal", "orthogonal", 1.0 if abs(gain - 1) < 1e-5 else gain)


def _centre_tap(values: np.ndarray, shape: tuple[int, ...]) -> Match | None:
    """A conv kernel (out, in, k, k) zero but its centre tap: Dirac (the identity
    there) or delta-orthogonal (an orthogonal matrix there)."""
    if len(shape) != 4 or shape[2] != shape[3] or shape[2] % 2 == 0 or shape[2] == 1:
        return None
    c = shape[2] // 2
    rest = values.copy()
    centre = values[:, :, c, c].copy()
    rest[:, :, c, c] = 0
    if np.any(rest) or not np.any(centre):
        return None
    if shape[0] == shape[1]:
        diag = np.diag(centre)
        if np.all(centre == np.diag(diag)) and np.all(diag == diag[0]):
            return Match("dirac", "centre tap", float(diag[0]))
    ortho = _orthogonal(centre)
    if ortho is not None:
        return Match("delta_orthogonal", "centre tap", ortho.gain)
    return Match(None, reason="only the centre tap is set, with no known structure")


@dataclass
class TensorReport:
    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    fan_in: int
    fan_out: int
    count: int
    mean: float
    std: float
    min: float
    max: float
    match: Match
    warnings: list[str] = field(default_factory=list)

    @property
    def std_sqrt_fan_in(self) -> float:
        return self.std * math.sqrt(self.fan_in)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "role": self.role, "fan_in": self.fan_in, "fan_out": self.fan_out,
                "count": self.count, "mean": self.mean, "std": self.std, "min": self.min,
                "max": self.max, "std_sqrt_fan_in": self.std_sqrt_fan_in,
                "scheme": self.match.scheme, "shape_family": self.match.shape,
                "gain": self.match.gain, "p_value": self.match.p_value,
                "match": self.match.label(), "warnings": self.warnings}


def _stats(flat: np.ndarray) -> tuple[float, float, float, float]:
    """mean, std, min, max over the finite entries; the std of entries near the float
    range taken on them scaled to 1, so that their squares do not overflow."""
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return (math.nan,) * 4
    scale = float(np.max(np.abs(finite))) or 1.0
    unit = finite / scale
    return (float(unit.mean()) * scale, float(unit.std()) * scale, float(finite.min()),
            float(finite.max()))


def report(name: str, shape: tuple[int, ...], dtype: str, values: np.ndarray,
           activation_gain: float | None = None) -> TensorReport:
    """One tensor's report; `activation_gain` (the chain's activation's) lets a dense
    or conv weight be judged by std sqrt(fan_in). Statistics are of the finite entries."""
    with np.errstate(all="ignore"):
        return _report(name, shape, dtype, values, activation_gain)


def _report(name, shape, dtype, values, activation_gain) -> TensorReport:
    flat = values.reshape(-1)
    fan_in, fan_out = fans(shape)
    kind = role(name, shape)
    if kind in ("dense weight", "conv weight", "embedding"):
        found = match(values, shape)
    elif flat.size and np.all(flat == flat[0]):  # a vector is judged only as a constant
        found = match(values, shape)
    else:
        found = Match(None, reason="a vector: only a constant is a scheme here")
    out = TensorReport(name, shape, dtype, kind, fan_in, fan_out, int(flat.size),
                       *_stats(flat), found)
    bad = flat.size - int(np.count_nonzero(np.isfinite(flat)))
    if bad:
        out.warnings.append(f"{bad} of {flat.size} entries are not finite")
    if kind == "norm scale" and flat.size and not np.all(flat == 1):
        out.warnings.append("a norm scale that is not 1")
    if kind in ("dense weight", "conv weight") and found.scheme == "zeros":
        low = name.lower()
        if not any(k in low for k in ("head", "out", "proj", "readout", "classifier", "fc2",
                                      "down")):
            out.warnings.append("zero weights, and not a readout or residual projection: "
                                "every unit the same (no symmetry broken)")
    if kind in ("dense weight", "conv weight") and activation_gain and out.std > 0:
        ratio = out.std_sqrt_fan_in / activation_gain
        if not 0.5 <= ratio <= 2:
            out.warnings.append(f"std sqrt(fan_in) = {out.std_sqrt_fan_in:.3g}, {ratio:.2g} "
                                f"times the activation's gain {activation_gain:.3g}")
    return out


@dataclass(frozen=True)
class ChainLayer:
    name: str
    fan_in: int
    fan_out: int
    std: float
    bias_std: float
    bias_mean: float


def _natural(name: str) -> list:
    """layer2 before layer10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def find_chain(tensors: list[tuple[str, tuple[int, ...], float, float]]
               ) -> list[ChainLayer]:
    """The longest run of dense weights, in the names' natural order, each reading
    what the one before it writes ((out, in) shapes), with its bias (the same name
    with "bias" for "weight"). `tensors`: (name, shape, mean, std)."""
    by_name = {name: (shape, mean, std) for name, shape, mean, std in tensors}
    best: list[ChainLayer] = []
    run: list[ChainLayer] = []
    for name, shape, _, std in sorted(tensors, key=lambda t: _natural(t[0])):
        if role(name, shape) != "dense weight":
            continue
        out_n, in_n = shape
        bias = by_name.get(name[:-len("weight")] + "bias") if name.endswith("weight") else None
        if bias is not None and bias[0] != (out_n,):
            bias = None
        layer = ChainLayer(name, in_n, out_n, std, bias[2] if bias else 0.0,
                           bias[1] if bias else 0.0)
        run = run + [layer] if run and run[-1].fan_out == in_n else [layer]
        if len(run) > len(best):
            best = list(run)
    return best


def chain_theory(layers: list[ChainLayer], activation: str, slope: float = 0.01
                 ) -> list[tuple[float, float]]:
    """(activation std, gradient std) per layer from the variance recursion, with each
    layer's measured std as if its entries were independent (theory.py), on a unit
    input and a unit upstream gradient; the last layer is linear."""
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.gaussian import gaussian_moments

    act = ACTIVATIONS[activation]
    m2, forward = 1.0, []
    for i, lay in enumerate(layers):
        q = lay.fan_in * lay.std ** 2 * m2 + lay.bias_std ** 2
        if i == len(layers) - 1:
            forward.append((q, 1.0, q + lay.bias_mean ** 2, lay.bias_mean))
            break
        mom = gaussian_moments(act, lay.bias_mean, math.sqrt(q), slope)
        forward.append((q, mom.dphi2, mom.phi2, mom.phi1))
        m2 = mom.phi2
    out, g2 = [], 1.0
    for lay, (_, dphi2, phi2, phi1) in zip(reversed(layers), reversed(forward)):
        out.append((math.sqrt(max(phi2 - phi1 * phi1, 0.0)), math.sqrt(g2)))
        g2 = lay.fan_out * lay.std ** 2 * dphi2 * g2
    out.reverse()
    return out


def expected_counts(match_: Match, std: float, edges: np.ndarray, n: int) -> np.ndarray | None:
    """The counts the matched scheme's density expects in these bins, for n entries of
    this std (the gain solved for is in the std); None where the match is no shape."""
    if match_.scheme is None or match_.shape not in ("normal", "uniform", "truncated") \
            or std <= 0:
        return None
    cdf = _cdf(match_.shape, np.asarray(edges, dtype=float) / std)
    return n * np.diff(cdf)


@dataclass(frozen=True)
class Spectrum:
    """A weight's singular values (as (out, in x k...)) and the Marchenko-Pastur
    support of a matrix of that shape with independent entries of the same std:
    s in sigma (sqrt(n) -+ sqrt(m)) for m <= n, i.e. s^2 in (1 -+ sqrt(m/n))^2 sigma^2 n."""

    values: np.ndarray
    low: float
    high: float

    @property
    def outside(self) -> int:
        return int(np.count_nonzero(self.values > EDGE_MARGIN * self.high))


def spectrum(values: np.ndarray) -> Spectrum:
    m = values.reshape(values.shape[0], -1) if values.ndim >= 2 else values.reshape(1, -1)
    if min(m.shape) > SPECTRUM_MAX:
        raise ValueError(f"the smaller side is {min(m.shape)}: above {SPECTRUM_MAX}, a "
                         "singular value decomposition here takes too long")
    std = float(m.std())
    short, long_ = sorted(m.shape)
    s = np.linalg.svd(m, compute_uv=False)
    return Spectrum(s, std * (math.sqrt(long_) - math.sqrt(short)),
                    std * (math.sqrt(long_) + math.sqrt(short)))


SAMPLE_KEPT = 8192  # values kept per tensor, for its histogram


@dataclass
class Inspected:
    """One tensor's report, a strided sample of its values, and its entry (which reads
    the whole tensor again, for a spectrum or a run)."""

    report: TensorReport
    sample: np.ndarray
    entry: object


@dataclass
class Inspection:
    tensors: list[Inspected]
    chain: list[ChainLayer]  # empty unless two or more dense layers chain
    theory: list[tuple[float, float]]


def inspect_file(path, activation: str = "relu", memory_limit: float = 0.0, cancel=None,
                 progress=None) -> Inspection | None:
    """Every tensor of a checkpoint, read one at a time and each checked against the
    memory budget first; CheckpointError (one line) for anything wrong with the file,
    None when `cancel` is set. `progress(done, total)` hears of every tensor."""
    from initscope.sim.activations import ACTIVATIONS
    from initscope.sim.checkpoint import CheckpointError, entries
    from initscope.sim.config import Config
    from initscope.sim.memory import budget_bytes, format_bytes

    limit = budget_bytes(Config(memory_limit=memory_limit))
    gain = ACTIVATIONS[activation].gain()
    listed = entries(path)
    out = []
    for done, entry in enumerate(listed, start=1):
        if cancel is not None and cancel.is_set():
            return None
        need = 3 * 8 * entry.size  # float64 values, a sorted sample, a copy
        if need > limit:
            raise CheckpointError(f"{path}: {entry.name} needs {format_bytes(need)}, over "
                                  f"the memory budget of {format_bytes(limit)}")
        try:
            values = entry.load()
        except CheckpointError:
            raise
        except Exception as e:  # a parser's complaint about this tensor's bytes
            raise CheckpointError(f"{path}: {entry.name} could not be read "
                                  f"({type(e).__name__})") from None
        if values.shape != entry.shape:
            raise CheckpointError(f"{path}: {entry.name} is not the shape its header says")
        flat = values.reshape(-1)
        out.append(Inspected(report(entry.name, entry.shape, entry.dtype, values, gain),
                             flat[::max(1, flat.size // SAMPLE_KEPT)][:SAMPLE_KEPT]
                             .astype(np.float32), entry))
        del values, flat
        if progress is not None:
            progress(done, len(listed))
    chain = find_chain([(t.report.name, t.report.shape, t.report.mean, t.report.std)
                        for t in out])
    theory = chain_theory(chain, activation) if len(chain) > 1 else []
    return Inspection(out, chain if theory else [], theory)
