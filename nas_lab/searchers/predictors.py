"""Numpy building blocks for model-based searchers: Adam and an MLP-ensemble regressor.

A model-based searcher such as BANANAS (White, Neiswanger & Savani, AAAI 2021)
trains its predictor every round of every repeat of a study, on the tabular hot
path, so a round must cost milliseconds and must not import torch; ``fit``
trains from scratch, ``partial_fit`` continues from the current weights (a
warm start) and ``renew`` re-initialises one member. The ensemble
is therefore one model whose weights carry a leading member axis: a training
step is a handful of batched matmuls over all members at once, and the whole
parameter set lives in one flat buffer so that an Adam step is a few array ops.
It computes in single precision: twice the arithmetic rate, and ranking
candidates needs no more.
"""

from __future__ import annotations

from itertools import pairwise
from math import prod

import numpy as np


class Adam:
    """Adam (Kingma & Ba, ICLR 2015) *minimising*; updates a list of arrays in place.

    The moment estimates are created on the first ``step`` with the shapes of the
    parameters; bias correction is folded into the step size (the paper's
    efficient form), so one step costs a few array ops per parameter array.
    """

    def __init__(self, learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self._m: list[np.ndarray] = []
        self._v: list[np.ndarray] = []

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One descent step of every array of ``params`` along its gradient in ``grads``."""
        if not self._m:
            self._m = [np.zeros_like(p) for p in params]
            self._v = [np.zeros_like(p) for p in params]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        size = self.learning_rate * (1.0 - b2**self.t) ** 0.5 / (1.0 - b1**self.t)
        for p, g, m, v in zip(params, grads, self._m, self._v):
            m += (1.0 - b1) * (g - m)
            v *= b2
            v += (1.0 - b2) * g * g
            p -= size * m / (np.sqrt(v) + self.eps)


class MLPEnsemble:
    """``members`` ReLU MLP regressors that differ only by their random initialisation.

    ``fit`` standardises the targets and trains every member full-batch with Adam
    on mean squared error plus an L2 penalty; ``predict`` returns one row of
    predictions per member, in the targets' units, so a caller can take the
    ensemble mean and spread (BANANAS's uncertainty estimate). Members agree
    where the data pin the function down and disagree away from it.
    """

    def __init__(
        self,
        members: int = 5,
        hidden: tuple[int, ...] = (32, 32),
        steps: int = 100,
        learning_rate: float = 1e-2,
        weight_decay: float = 1e-4,
    ):
        self.members = members
        self.hidden = tuple(hidden)
        self.steps = steps
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self._layers: list[tuple[np.ndarray, np.ndarray]] = []
        self._y_mean = 0.0
        self._y_std = 1.0

    def _allocate(self, n_in: int) -> tuple[np.ndarray, list, list]:
        """One flat parameter buffer and one flat gradient buffer, with per-layer (W, b) views."""
        widths = (n_in, *self.hidden, 1)
        shapes = []
        for a, b in pairwise(widths):
            shapes += [(self.members, a, b), (self.members, 1, b)]
        total = sum(prod(s) for s in shapes)
        flat, gflat = np.zeros(total, dtype=np.float32), np.zeros(total, dtype=np.float32)

        def views(buf):
            out, start = [], 0
            for s in shapes:
                out.append(buf[start : start + prod(s)].reshape(s))
                start += prod(s)
            return list(zip(out[::2], out[1::2]))

        self._views = views
        return flat, gflat, views(flat), views(gflat)

    def renew(self, member: int, rng: np.random.Generator) -> None:
        """Re-initialise one member (fresh He weights, zero biases, zero Adam moments); the others keep theirs."""
        for w, b in self._layers:
            w[member] = rng.standard_normal(w.shape[1:]) * np.sqrt(2.0 / w.shape[1])
            b[member] = 0.0
        if self._adam._m:
            for buf in (self._adam._m[0], self._adam._v[0]):
                for w, b in self._views(buf):
                    w[member] = 0.0
                    b[member] = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> MLPEnsemble:
        """Train ``steps`` steps from a fresh He initialisation drawn from ``rng`` on features ``(n, f)``,
        targets ``(n,)``."""
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        self._flat, self._gflat, layers, self._grads = self._allocate(x.shape[1])
        for w, _ in layers:
            w[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / w.shape[1])
        self._layers = layers
        self._adam = Adam(self.learning_rate)
        self._train(x, y, self.steps)
        return self

    @property
    def fitted(self) -> bool:
        return bool(self._layers)

    def partial_fit(self, x: np.ndarray, y: np.ndarray, steps: int, mean: float, std: float) -> MLPEnsemble:
        """Continue training the current weights (and Adam's moments) for ``steps`` steps on ``(x, y)``.

        The targets are standardised with ``mean`` and ``std`` (those of all the data, of which ``(x, y)`` may
        be a sample); the output layer is first re-expressed in that scale, so the function the ensemble
        computes is unchanged until training moves it.
        """
        std = std or 1.0
        w, b = self._layers[-1]
        ratio = np.float32(self._y_std / std)
        w *= ratio
        b *= ratio
        b += np.float32((self._y_mean - mean) / std)
        self._y_mean, self._y_std = float(mean), float(std)
        self._train(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64), steps)
        return self

    def _train(self, x: np.ndarray, y: np.ndarray, steps: int) -> None:
        """``steps`` full-batch Adam steps on mean squared error (plus the L2 penalty) of the standardised targets."""
        target = ((y - self._y_mean) / self._y_std).astype(np.float32)[None, :, None]  # broadcast over members
        layers, grads, flat, gflat, adam = self._layers, self._grads, self._flat, self._gflat, self._adam
        scale = np.float32(2.0 / len(x))
        last = len(layers) - 1
        xt = x.T
        ones = np.ones((1, len(x)), dtype=np.float32)  # ones @ delta sums over samples, faster than .sum
        for _ in range(steps):
            out, inputs = self._forward(x)
            # backward: d(mean squared error)/d(output), then layer by layer
            delta = (out - target) * scale
            for i in range(last, -1, -1):
                gw, gb = grads[i]
                np.matmul(xt if i == 0 else inputs[i].transpose(0, 2, 1), delta, out=gw)  # x is shared: 2-D
                np.matmul(ones, delta, out=gb)
                if i:
                    delta = np.matmul(delta, layers[i][0].transpose(0, 2, 1))
                    delta *= inputs[i] > 0
            gflat += np.float32(self.weight_decay) * flat
            adam.step([flat], [gflat])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions ``(members, n)`` for features ``(n, f)``, in the fitted targets' units."""
        out, _ = self._forward(np.asarray(x, dtype=np.float32))
        return out[:, :, 0].astype(np.float64) * self._y_std + self._y_mean

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Standardised outputs ``(members, n, 1)`` and each layer's input (for backpropagation)."""
        inputs = [x]
        h = x
        last = len(self._layers) - 1
        for i, (w, b) in enumerate(self._layers):
            h = np.matmul(h, w)
            h += b
            if i < last:
                np.maximum(h, 0.0, out=h)
                inputs.append(h)
        return h, inputs
