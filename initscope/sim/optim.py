"""The optimizers training uses: SGD (with momentum) and Adam, PyTorch's semantics.

Each `update` changes the parameters in place and returns, per parameter, the array
that was added to it: the update-to-data ratio ||update|| / ||W|| is read from it.

SGD with momentum mu (torch.optim.SGD, dampening 0): v <- mu v + g; p <- p - lr v
(plain SGD when mu = 0: p <- p - lr g).

Adam (Kingma & Ba 2015, Algorithm 1; torch.optim.Adam's defaults): with g the
gradient at step t = 1, 2, ...,
    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
    p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),
b1 = 0.9, b2 = 0.999, eps = 1e-8. The first step moves every entry by about lr,
whatever the gradient's scale.
"""

from __future__ import annotations

import math

import numpy as np

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class SGD:
    def __init__(self, params: list[np.ndarray], lr: float, momentum: float = 0.0) -> None:
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(p) for p in params] if momentum else None

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> list[np.ndarray]:
        """Apply one step; the gradients are overwritten (they become the updates)."""
        updates = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.velocity is not None:
                v = self.velocity[i]
                v *= p.dtype.type(self.momentum)
                v += g
                step = np.multiply(v, p.dtype.type(-self.lr), out=g)
            else:
                step = np.multiply(g, p.dtype.type(-self.lr), out=g)
            p += step
            updates.append(step)
        return updates


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float, betas=ADAM_BETAS,
                 eps: float = ADAM_EPS) -> None:
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> list[np.ndarray]:
        """Apply one step; the gradients are overwritten (they become the updates)."""
        self.t += 1
        b1, b2 = self.b1, self.b2
        step_size = self.lr / (1 - b1 ** self.t)
        root_correction = math.sqrt(1 - b2 ** self.t)
        updates = []
        for p, g, m, v in zip(params, grads, self.m, self.v):
            t = p.dtype.type
            m *= t(b1)
            m += t(1 - b1) * g
            v *= t(b2)
            np.multiply(g, g, out=g)
            g *= t(1 - b2)
            v += g
            # the update, in g's memory: -step_size m / (sqrt(v) / root_correction + eps)
            np.sqrt(v, out=g)
            g *= t(1 / root_correction)
            g += t(self.eps)
            np.divide(m, g, out=g)
            g *= t(-step_size)
            p += g
            updates.append(g)
        return updates


def make_optimizer(name: str, params: list[np.ndarray], lr: float, momentum: float):
    return Adam(params, lr) if name == "adam" else SGD(params, lr, momentum)
