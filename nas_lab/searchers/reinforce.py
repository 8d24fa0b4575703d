"""REINFORCE policy-gradient search (Williams, 1992), in the NATS-Bench setting (Dong et al., TPAMI 2021).

The policy is factorised: one softmax over the options of each decision, all
logits starting at 0 (the uniform distribution). Each ask draws one arch from
it; each tell moves the logits by one Adam step (learning rate 0.01) along
``sum (reward - baseline) * grad log p(arch)`` over the told archs, where the
reward is the arch's fitness and the baseline is an exponential moving average
of past rewards (momentum 0.9) that starts at the first reward.

The budget counts distinct archs and the runner answers a repeated arch from its
cache for free, so a draw that was already evaluated is proposed anyway (it
still trains the policy) together with further draws up to the first new one.
Once the policy has collapsed onto evaluated archs, the ask adds the unseen
one-decision mutant the policy likes best; that arch trains the policy too (an
off-policy step that lets a collapsed policy move to a better neighbour), and
the run spends its whole budget instead of idling until the runner stops it.

An infeasible or failed arch (fitness -inf) is rewarded with the worst finite
fitness seen so far, so the policy learns to avoid it; before any finite reward
exists there is nothing to compare with and the policy is left unchanged.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np

from nas_lab.core.objective import Evaluation
from nas_lab.core.searcher import Searcher, sample_distinct
from nas_lab.core.settings import Setting
from nas_lab.searchers.predictors import Adam

#: policy draws an ask makes at most before it falls back to an unseen mutant
DRAWS = 64


class Reinforce(Searcher):
    """REINFORCE: factorised softmax policy, Adam, moving-average reward baseline."""

    name = "reinforce"
    title = "REINFORCE"

    def __init__(
        self,
        learning_rate: Annotated[float, Setting(gt=0, le=100, help="step size of the policy gradient")] = 0.01,
        momentum: Annotated[float, Setting(ge=0, lt=1, help="decay of the reward baseline (moving average)")] = 0.9,
    ):
        self.learning_rate = learning_rate
        self.momentum = momentum

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        # one row of logits per decision, padded with -inf to the widest: padding gets
        # probability 0 and gradient 0, so Adam leaves it at -inf
        self._logits = np.where(np.arange(space.sizes.max()) < space.sizes[:, None], 0.0, -np.inf)
        self._refresh()
        self._adam = Adam(self.learning_rate)
        self._rows = np.arange(space.dim)
        self._baseline: float | None = None
        self._worst = math.inf
        self._seen: set[int] = set()  # indices of archs told so far

    def probabilities(self) -> np.ndarray:
        """Current policy, ``(decisions, max options)``; padded entries are 0."""
        return self._p.copy()

    def _refresh(self) -> None:
        """Softmax of the logits and its cumulative sums, recomputed once per logits update."""
        p = np.exp(self._logits - self._logits.max(axis=1, keepdims=True))
        self._p = p / p.sum(axis=1, keepdims=True)
        self._cdf = np.cumsum(self._p, axis=1)

    def ask(self, n: int) -> np.ndarray:
        """Policy draws up to and including the first arch not yet evaluated (usually just one).

        If none of ``DRAWS`` draws is new, the policy has collapsed: the draws
        are followed by the most probable unseen one-decision mutant of them.
        """
        draws = self._draw(1)
        if int(self.space.index(draws)[0]) not in self._seen:
            return draws
        draws = np.concatenate([draws, self._draw(DRAWS - 1)])
        for j, i in enumerate(self.space.index(draws).tolist()):
            if i not in self._seen:
                return draws[: j + 1]
        return np.concatenate([draws, self._nearest_unseen(draws)])

    def _draw(self, k: int) -> np.ndarray:
        """``k`` valid archs sampled from the policy."""
        out = np.empty((k, self.space.dim), dtype=np.int64)
        bad = np.ones(k, dtype=bool)
        while bad.any():
            u = self.rng.random((int(bad.sum()), self.space.dim, 1))
            out[bad] = np.minimum((self._cdf < u).sum(axis=2), self.space.sizes - 1)
            bad[bad] = ~self.space.is_valid(out[bad])
        return out

    def _nearest_unseen(self, draws: np.ndarray) -> np.ndarray:
        """The unseen one-decision mutant of ``draws`` the policy likes best (or a random unseen arch)."""
        mutants = self.space.mutate(draws, self.rng, 1)
        fresh = np.array([i not in self._seen for i in self.space.index(mutants).tolist()])
        if not fresh.any():
            return sample_distinct(self.space, self.rng, 1, set(self._seen))
        mutants = mutants[fresh]
        z = self._logits - self._logits.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log-softmax: no log(0) once collapsed
        return mutants[[np.argmax(log_p[self._rows, mutants].sum(axis=1))]]

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        """One Adam step on the summed policy gradient of the told archs."""
        self._seen.update(self.space.index(archs).tolist())
        grad = np.zeros_like(self._logits)
        for arch, reward in zip(archs, evaluation.fitness[:, 0].tolist()):
            if math.isfinite(reward):
                self._worst = min(self._worst, reward)
            elif math.isfinite(self._worst):
                reward = self._worst
            else:
                continue
            if self._baseline is None:
                self._baseline = reward
            advantage = reward - self._baseline
            self._baseline += (1.0 - self.momentum) * (reward - self._baseline)
            # d(-advantage * log p(arch)) / d logits = -advantage * (onehot(arch) - p)
            grad += advantage * self._p
            grad[self._rows, arch] -= advantage
        self._adam.step([self._logits], [grad])
        self._refresh()
