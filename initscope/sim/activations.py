"""Registry of activations: phi, its derivative, its gain, and what to watch for.

Each function works in place on preallocated arrays (`out=`) so the forward and
backward passes allocate nothing per layer. Derivatives are written in terms of
the output `a` wherever that is exact, so the forward pass keeps only `a`; the two
activations whose derivative needs `z` (gelu, silu) have the derivative stored
during the forward pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from initscope.sim.erf import CHUNK, erf_into, gelu_float32_into
from initscope.sim.gaussian import gaussian_moments

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772
GELU_C = math.sqrt(2.0 / math.pi)

Array = np.ndarray


def _linear(z: Array, out: Array, slope: float) -> None:
    if out is not z:
        np.copyto(out, z)


def _linear_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    out.fill(1)


def _tanh(z: Array, out: Array, slope: float) -> None:
    np.tanh(z, out=out)


def _tanh_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)


def _sigmoid(z: Array, out: Array, slope: float) -> None:
    # 0.5 * (1 + tanh(z / 2)) never overflows, unlike 1 / (1 + exp(-z))
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    np.add(out, 1, out=out)
    np.multiply(out, 0.5, out=out)


def _sigmoid_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    np.subtract(1, a, out=out)
    np.multiply(out, a, out=out)


def _relu(z: Array, out: Array, slope: float) -> None:
    np.maximum(z, 0, out=out)


def _relu_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    np.greater(a, 0, out=out)


def _leaky(z: Array, out: Array, slope: float) -> None:
    # max(z, s z) equals the leaky ReLU for 0 <= s <= 1
    np.multiply(z, slope, out=out)
    np.maximum(z, out, out=out)


def _leaky_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    np.greater(a, 0, out=out)
    out *= 1 - slope
    out += slope


def _elu(z: Array, out: Array, slope: float) -> None:
    np.minimum(z, 0, out=out)
    np.expm1(out, out=out)
    np.add(out, np.maximum(z, 0), out=out)


def _elu_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    # a > 0: 1; else a + 1 (= exp(z))
    np.minimum(a, 0, out=out)
    out += 1


def _selu(z: Array, out: Array, slope: float) -> None:
    _elu(z, out, slope)
    np.multiply(out, SELU_ALPHA, out=out, where=out < 0)
    out *= SELU_LAMBDA


def _selu_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    # a > 0: lambda; else a + lambda * alpha (= lambda * alpha * exp(z))
    np.minimum(a, 0, out=out)
    out += SELU_LAMBDA * SELU_ALPHA
    np.copyto(out, SELU_LAMBDA, where=a > 0)


def _gelu_erf(z: Array, out: Array, slope: float) -> None:
    """GELU as PyTorch's and JAX's default (approximate=False): z Phi(z), with
    Phi(z) = (1 + erf(z / sqrt 2)) / 2; float32 reads Phi from its own table."""
    if z.dtype == np.float32:
        gelu_float32_into(z, out)
        return
    np.multiply(z, z.dtype.type(1 / math.sqrt(2.0)), out=out)
    erf_into(out, out)
    out += 1
    out *= z
    out *= 0.5


def _gelu_erf_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    """d/dz z Phi(z) = Phi(z) + z phi(z); Phi(z) = a / z comes from the forward pass
    (1/2 at z = 0), so only the density is new work."""
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(a, z, out=out)
    out[z == 0] = 0.5
    flat_z, flat_out = z.reshape(-1), out.reshape(-1)
    for i in range(0, flat_z.size, CHUNK):  # small temporaries, as in erf_into
        zc = flat_z[i:i + CHUNK]
        density = np.square(zc)
        density *= -0.5
        np.exp(density, out=density)
        density *= zc.dtype.type(1 / math.sqrt(2.0 * math.pi))
        density *= zc
        flat_out[i:i + CHUNK] += density


def _gelu_inner(z: Array, out: Array) -> None:
    """out = tanh(c (z + 0.044715 z^3)), the tanh form of GELU."""
    np.multiply(z, z, out=out)
    out *= 0.044715
    out += 1
    out *= z
    out *= GELU_C
    np.tanh(out, out=out)


def _gelu(z: Array, out: Array, slope: float) -> None:
    _gelu_inner(z, out)
    out += 1
    out *= z
    out *= 0.5


def _gelu_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    t = np.empty_like(out)
    _gelu_inner(z, t)
    # d/dz 0.5 z (1 + t) = 0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 * 0.044715 z^2)
    np.multiply(z, z, out=out)
    out *= 3 * 0.044715
    out += 1
    out *= GELU_C * 0.5
    out *= z
    out *= 1 - t * t
    out += 0.5 * (1 + t)


def _silu(z: Array, out: Array, slope: float) -> None:
    _sigmoid(z, out, slope)
    out *= z


def _silu_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    s = np.empty_like(out)
    _sigmoid(z, s, slope)
    # s (1 + z (1 - s))
    np.subtract(1, s, out=out)
    out *= z
    out += 1
    out *= s


def _softplus(z: Array, out: Array, slope: float) -> None:
    # max(z, 0) + log1p(exp(-|z|)) never overflows
    np.abs(z, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(z, 0)


def _softplus_d(z: Array | None, a: Array, out: Array, slope: float) -> None:
    # sigmoid(z) = 1 - exp(-softplus(z))
    np.negative(a, out=out)
    np.exp(out, out=out)
    np.subtract(1, out, out=out)


@dataclass(frozen=True)
class Activation:
    """One activation function and what the core and the theory need to know of it."""

    name: str
    formula: str
    forward: Callable[[Array, Array, float], None]
    derivative: Callable[[Array | None, Array, Array, float], None]
    derivative_needs_input: bool = False
    kink: bool = False  # derivative jumps at z = 0: quadrature splits there
    # a unit is dead when phi' = 0 on the whole batch: ReLU's negative side, and leaky
    # ReLU's only at slope 0. ELU and SELU have phi' = exp(z) > 0 there: never dead.
    zero_slope_side: bool = False
    saturation: tuple[float, float] | None = None  # outputs outside (lo, hi) are saturated
    torch_gain: Callable[[float], float] | None = None

    def can_die(self, slope: float = 0.01) -> bool:
        """Whether a unit can be dead: off, with zero derivative, on the whole batch."""
        return self.zero_slope_side and (self.name != "leaky_relu" or slope == 0.0)

    def gain(self, slope: float = 0.01) -> float:
        """PyTorch's `calculate_gain` where it defines one; otherwise the gain that
        keeps the second moment fixed: 1 / sqrt(E[phi(z)^2]) for z ~ N(0, 1)."""
        if self.torch_gain is not None:
            return self.torch_gain(slope)
        return 1.0 / math.sqrt(gaussian_moments(self, 0.0, 1.0, slope).phi2)

    def apply(self, z: Array, slope: float = 0.01) -> Array:
        """phi(z) into a new array (for tests and the theory, not the hot path)."""
        out = np.empty_like(z)
        self.forward(z, out, slope)
        return out

    def slope_of(self, z: Array, slope: float = 0.01) -> Array:
        """phi'(z) into a new array (for tests and the theory, not the hot path)."""
        a = self.apply(z, slope)
        out = np.empty_like(z)
        self.derivative(z, a, out, slope)
        return out


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", "phi(z) = z", _linear, _linear_d, torch_gain=lambda s: 1.0),
        Activation(
            "tanh", "phi(z) = tanh(z)", _tanh, _tanh_d,
            saturation=(-0.99, 0.99), torch_gain=lambda s: 5.0 / 3.0,
        ),
        Activation(
            "sigmoid", "phi(z) = 1 / (1 + exp(-z))", _sigmoid, _sigmoid_d,
            saturation=(0.01, 0.99), torch_gain=lambda s: 1.0,
        ),
        Activation(
            "relu", "phi(z) = max(z, 0)", _relu, _relu_d,
            kink=True, zero_slope_side=True, torch_gain=lambda s: math.sqrt(2.0),
        ),
        Activation(
            "leaky_relu", "phi(z) = z if z > 0 else slope * z", _leaky, _leaky_d,
            kink=True, zero_slope_side=True,
            torch_gain=lambda s: math.sqrt(2.0 / (1.0 + s * s)),
        ),
        Activation(
            "elu", "phi(z) = z if z > 0 else exp(z) - 1", _elu, _elu_d, kink=True,
        ),
        Activation(
            "selu", "phi(z) = lambda * (z if z > 0 else alpha * (exp(z) - 1))",
            _selu, _selu_d, kink=True, torch_gain=lambda s: 0.75,
        ),
        Activation(
            "gelu", "phi(z) = z Phi(z) = z/2 * (1 + erf(z / sqrt 2)) (PyTorch's and JAX's "
            "default, approximate=False)", _gelu_erf, _gelu_erf_d, derivative_needs_input=True,
        ),
        Activation(
            "gelu_tanh", "phi(z) = z/2 * (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) "
            "(approximate='tanh')", _gelu, _gelu_d, derivative_needs_input=True,
        ),
        Activation(
            "silu", "phi(z) = z * sigmoid(z)", _silu, _silu_d, derivative_needs_input=True,
        ),
        Activation("softplus", "phi(z) = log(1 + exp(z))", _softplus, _softplus_d),
    )
}
