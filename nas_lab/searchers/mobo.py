"""Multi-objective Bayesian optimisation: one GP per target, expected hypervolume improvement (``searcher=mobo``).

Model (``TargetModel``): each target is modelled on its own, as independent
(the usual simplification of multi-objective BO), by a linear trend on the
space's one-hot encoding (ridge regression, penalty by generalised
cross-validation) plus ``gp.GaussianProcess`` (per-decision Hamming kernel,
relevances by marginal likelihood, warm-started round to round) on what the
trend leaves. The GP's product kernel learns effects that add up over decisions
(a size is a sum over layers, an accuracy mostly so) only from many points; the
trend has them from the first few. Before the fit each target's values go
through ``transform``: by default a Yeo-Johnson power map (its exponent by
likelihood on a grid), which tames skew (a few broken cells near chance, a long
tail of latencies) but keeps the spacing of the values that ranks
(``copula``) lose. Values of infeasible archs still train the target models;
failed (NaN) values take the worst finite value of their target.

Acquisition: the expected hypervolume improvement (EHVI) over the feasible
front found so far, measured on the values themselves (model draws are mapped
back through ``ValueMap``), rescaled per target to the range seen (0 the worst,
1 the best), against a reference point ``margin`` below the worst. The front is
scored on values, so ranks would misplace the gains; the reference sits below
the worst value seen rather than at the front's own nadir, because the true
front's nadir lies past the extremes found so far (the most accurate arch is
usually among the largest) and a tight reference would make extending the
front worthless. It is estimated by Monte-Carlo with ``samples`` draws shared by
every candidate (common random numbers, so candidates are compared on the same
draws). With two targets each draw's improvement is exact and vectorised (a
staircase); with more it uses pymoo's hypervolume per draw, which is slower.
Hypervolume is what a front is scored by, so the acquisition pursues it
directly; random Chebyshev scalarisations (ParEGO) reach it only in
expectation over the weights and spend each pick on one direction.

Constraints: bounds the searcher may check for free (closed-form sizes, a
latency table: ``core.searcher.cheap_bounds``) filter the candidates before
anything is proposed. Once an evaluated arch has been infeasible, a further GP
models the violation (0 when feasible) and the EHVI of each candidate is
weighted by its probability of being feasible (the classic constrained
expected improvement); the front only ever holds feasible archs.

Batches: ``batch`` archs per round, picked greedily; after each pick its
posterior mean joins the front as if observed there (the kriging believer), so
the next pick must improve on it. Adding a point can only lower an
improvement, so the greedy pass re-scores lazily: only candidates that come out
on top of the stale scores are re-scored before one is taken.

Candidates: as ``gp``'s: mutants of the ``parents`` best archs (by non-dominated
rank, feasible first, then by violation) and ``random`` uniform samples, minus
every arch already proposed (an evaluated arch is never proposed again). The
space is never enumerated, so this works on spaces of 10^43 archs.

Cost: each GP conditions on at most ``max_points`` archs (``gp.training_subset``:
those nearest the parents, a trust region around where the candidates are
drawn), its hyper-parameters fitted on those, so a round costs the same however
long the history and a run's cost grows about linearly with the budget; the
trend, linear in the number of archs, and the GP's constant mean see them all.

With one target the EHVI is the expected improvement over the best value.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from scipy.special import ndtr

from nas_lab.core.objective import EVALUATED, Evaluation
from nas_lab.core.searcher import cheap_bounds, sample_distinct, within
from nas_lab.core.settings import Setting
from nas_lab.searchers.gp import (
    KERNELS,
    TRANSFORMS,
    GaussianProcess,
    GPSearch,
    copula,
    groups_of,
    standardise,
    training_subset,
)


def power(y: np.ndarray) -> np.ndarray:
    """Yeo-Johnson power transform, standardised: makes a skewed target near-normal while keeping the spacing of its
    values, which ranks (``copula``) discard. Its exponent maximises the likelihood over the grid ``EXPONENTS``, all
    at once (scipy's ``yeojohnson`` fits it by a scalar optimisation per call, which costs more than the GP fits)."""
    z = ((y - y.mean()) / (y.std() or 1.0))[None]  # the exponent's fit is scale-sensitive; standard units keep it tame
    e = EXPONENTS[:, None]
    above, below = np.maximum(z, 0.0), np.minimum(z, 0.0)  # each branch's formula on the values it serves
    shapes = np.where(z >= 0, ((above + 1.0) ** e - 1.0) / e, -((1.0 - below) ** (2.0 - e) - 1.0) / (2.0 - e))
    likelihood = -0.5 * z.shape[1] * np.log(shapes.var(axis=1) + 1e-300) + (EXPONENTS - 1.0) * (
        np.sign(z) * np.log1p(np.abs(z))).sum()
    return standardise(shapes[int(np.argmax(likelihood))])


#: Yeo-Johnson exponents ``power`` chooses from, in steps of 0.5 (0 and 2, whose formulas differ, left out)
EXPONENTS = np.linspace(-1.75, 3.75, 12)
#: maps of each target's values before its fit
OUTPUT_MAPS = {**TRANSFORMS, "power": power}
#: candidates re-scored at once when the best stale score comes out on top in the greedy pass
RESCORED = 8
#: ridge penalties the linear trend of a target model chooses from
ALPHAS = np.logspace(-3, 3, 13)


def staircase_volume(P: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolumes ``(N,)`` dominated by each of ``N`` sets of two-target points ``P (N, m, 2)`` (maximised) above
    ``ref``, where each set is ordered by its first target descending and its second ascending (a front clipped to
    a box keeps that order)."""
    x = np.maximum(P[..., 0] - ref[0], 0.0)
    y = np.maximum(P[..., 1], ref[1])
    below = np.concatenate([np.full(y.shape[:-1] + (1,), ref[1]), y[..., :-1]], axis=-1)
    return (x * (y - below)).sum(axis=-1)


def improvement(front: np.ndarray, Y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvements ``(...)`` of points ``Y (..., k)`` (maximised) over the non-dominated ``front (m, k)``
    above ``ref``: the volume of the box between ``ref`` and the point, less the part of it the front dominates
    already (the front clipped to the box)."""
    box = np.prod(np.maximum(Y - ref, 0.0), axis=-1)
    if len(front) == 0:
        return box
    clipped = np.minimum(front, Y[..., None, :])  # (..., m, k)
    if front.shape[1] == 1:
        return box - np.maximum(clipped[..., 0] - ref[0], 0.0).max(axis=-1)
    if front.shape[1] == 2:
        return box - staircase_volume(clipped, ref)
    from pymoo.indicators.hv import HV

    volume = HV(ref_point=-ref)
    flat = clipped.reshape(-1, *front.shape)
    covered = np.array([volume.do(-c) for c in flat]).reshape(box.shape)
    return box - covered


class ValueMap:
    """Maps a target's model scores back to its values: through the observed (score, value) pairs, monotone; beyond
    them, straight on with the slope of the outer tenth of the data. Improvements are measured on the values because
    the front is scored on them, not on their ranks.

    A best value that several archs share is taken as the target's bound (the smallest size of a space, reached by
    every arch without a weighted layer): nothing is predicted beyond it, where a model's spread would otherwise
    promise improvements no arch can make."""

    def __init__(self, scores: np.ndarray, values: np.ndarray):
        self.scores, first = np.unique(scores, return_index=True)
        self.values = values[first]
        tail = max(1, len(self.scores) // 10) if len(self.scores) > 1 else 0
        run = self.scores[tail] - self.scores[0], self.scores[-1] - self.scores[-1 - tail]
        rise = self.values[tail] - self.values[0], self.values[-1] - self.values[-1 - tail]
        self.slopes = [r / d if d > 0 else 0.0 for r, d in zip(rise, run)]
        if np.sum(values == values.max()) > 1:
            self.slopes[1] = 0.0

    def __call__(self, y: np.ndarray) -> np.ndarray:
        s, v = self.scores, self.values
        out = np.interp(y, s, v)
        out = np.where(y < s[0], v[0] + self.slopes[0] * (y - s[0]), out)
        return np.where(y > s[-1], v[-1] + self.slopes[1] * (y - s[-1]), out)


class TargetModel:
    """One target's model: a linear trend on the encoding (ridge regression, its penalty chosen among ``ALPHAS`` by
    generalised cross-validation) plus a ``GaussianProcess`` on what the trend leaves. The GP's product kernel needs
    many points to learn effects that add up over decisions (a size is a sum over layers; an accuracy mostly so);
    the trend takes those from the first few."""

    def __init__(self, gp: GaussianProcess):
        self.gp = gp

    def fit(self, x: np.ndarray, y: np.ndarray, keep: np.ndarray, rows: np.ndarray) -> TargetModel:
        """The trend from every row of ``x``, ``y`` (its cost grows linearly with the rows); the GP conditioned on
        rows ``keep``, its hyper-parameters fitted on ``rows`` (both bounded in size)."""
        centre, level = x.mean(axis=0), y.mean()
        u, s, vt = np.linalg.svd(x - centre, full_matrices=False)
        uy = u.T @ (y - level)
        shrink = s**2 / (s**2 + ALPHAS[:, None])  # (alphas, components)
        residual = ((y - level) ** 2).sum() - ((2 * shrink - shrink**2) * uy**2).sum(axis=1)
        gcv = residual / (len(y) - shrink.sum(axis=1)).clip(min=1e-9) ** 2
        a = ALPHAS[int(np.argmin(gcv))]
        self.coef = vt.T @ (s / (s**2 + a) * uy)
        self.intercept = level - centre @ self.coef
        self.gp.fit(x, y - self.trend(x), rows, keep)
        return self

    def trend(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, var = self.gp.predict(z)
        return mean + self.trend(z), var


def pareto_front(Y: np.ndarray) -> np.ndarray:
    """The non-dominated rows of ``Y (n, k)`` (maximised), ordered by the first target descending (then the second
    ascending: the order ``staircase_volume`` needs)."""
    if Y.shape[1] == 2:  # one sort, by the first target descending: keep each point above every one before it
        Y = Y[np.lexsort((-Y[:, 1], -Y[:, 0]))]
        return Y[Y[:, 1] > np.maximum.accumulate(np.concatenate([[-np.inf], Y[:-1, 1]]))]
    from nas_lab.core.fronts import non_dominated

    front = np.unique(Y[non_dominated(-Y)], axis=0)
    return front[np.lexsort((front[:, -1], -front[:, 0]))]


def pareto_order(F: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Rows of ``F (n, k)`` (maximised) best first: feasible ones (violation 0) by non-dominated rank, then the
    infeasible ones by violation."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    ok = np.flatnonzero(violation <= 0)
    ranked = [ok[np.asarray(f, dtype=np.int64)] for f in NonDominatedSorting().do(-F[ok])] if len(ok) else []
    bad = np.flatnonzero(violation > 0)
    return np.concatenate([*ranked, bad[np.argsort(violation[bad], kind="stable")]]).astype(np.int64)


class MultiObjectiveGP(GPSearch):
    """One GP per target, Monte-Carlo expected hypervolume improvement, batches by the kriging believer."""

    name = "mobo"
    title = "MOBO (GP, EHVI)"
    multi_objective = True

    def __init__(
        self,
        initial: Annotated[int, Setting(ge=2, le="space.cardinality",
                                        help="random archs before the first fit (a GP needs two)")] = 10,
        batch: Annotated[int, Setting(ge=1, le=10_000, help="archs proposed per fit")] = 10,
        pool: Annotated[int, Setting(ge=1, le=1_000_000,
                                     help="candidates scored by expected hypervolume improvement per fit")] = 400,
        parents: Annotated[int, Setting(ge=1, le=10_000,
                                        help="best archs (by non-dominated rank) whose mutations fill the pool")] = 20,
        mutations: Annotated[int, Setting(ge=1, le="space.dim", help="decisions changed per mutated candidate")] = 3,
        random: Annotated[int, Setting(ge=0, le=1_000_000, help="random candidates added to the pool")] = 100,
        samples: Annotated[int, Setting(
            ge=1, le=10_000, help="Monte-Carlo draws estimating each candidate's expected improvement")] = 16,
        margin: Annotated[float, Setting(
            ge=0, le=100,
            help="reference point's distance below the worst value seen, per target (share of its range)")] = 0.5,
        transform: Annotated[str, Setting(choices=tuple(OUTPUT_MAPS),
                                          help="map of each target's values before its fit")] = "power",
        prior: Annotated[float, Setting(ge=0, le=1e6, help="weight of the prior pulling length scales to 1")] = 0.1,
        kernel: Annotated[str, Setting(choices=KERNELS,
                                       help="kernel shape over per-decision Hamming distances")] = "exp",
        max_points: Annotated[int, Setting(
            ge=2, le=100_000, help="most evaluated archs each GP conditions on (those nearest the parents)")] = 200,
        fit_points: Annotated[int, Setting(ge=2, le=100_000,
                                           help="most points (a random subset) a hyper-parameter fit uses")] = 200,
        max_iter: Annotated[int, Setting(
            ge=1, le=100_000,
            help="L-BFGS iterations per hyper-parameter fit (warm-started from the last round's)")] = 5,
    ):
        self.initial, self.batch, self.pool, self.parents = initial, batch, pool, parents
        self.mutations, self.random, self.prior, self.kernel = mutations, random, prior, kernel
        self.transform, self.max_points, self.fit_points, self.max_iter = transform, max_points, fit_points, max_iter
        self.samples = samples
        self.margin = margin

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        groups = groups_of(space)
        k = len(objective.targets)
        self._sign = np.array([1.0 if d == "max" else -1.0 for d in objective.directions])
        self._models = [TargetModel(GaussianProcess(groups, self.kernel, self.prior, self.max_iter)) for _ in range(k)]
        self._feasibility = GaussianProcess(groups, self.kernel, self.prior, self.max_iter)
        self._bounds = cheap_bounds(space, objective)
        self._values: list[np.ndarray] = []  # (m, k) maximised, NaN where failed
        self._violation: list[np.ndarray] = []  # (m,) 0 when feasible, inf when infeasible without a measure

    def _ask(self, n: int) -> np.ndarray:
        told = sum(len(a) for a in self._archs)
        if told < self.initial:
            return self._draw(min(n, self.initial - told))
        archs = np.concatenate(self._archs)
        values = np.concatenate(self._values)
        violation = np.concatenate(self._violation)
        finite = np.isfinite(values)
        if (finite.sum(axis=0) < 2).any():  # a target with fewer than two values: nothing to learn from yet
            return self._draw(min(n, self.batch))
        worst = np.where(finite, values, np.inf).min(axis=0)
        values = np.where(finite, values, worst)
        Y = np.column_stack([OUTPUT_MAPS[self.transform](v) for v in values.T])
        maps = [ValueMap(y, v) for y, v in zip(Y.T, values.T)]
        x = self.space.encode(archs).astype(np.float64)
        order = pareto_order(Y, violation)
        rank = np.empty(len(order))
        rank[order] = -np.arange(len(order))  # higher is better: ties in distance go to the better rank
        keep = training_subset(x, rank, x[order[: self.parents]], self.max_points)  # bounded: O(max_points^3)
        rows = keep
        if len(keep) > self.fit_points:  # hyper-parameters from a random subset: each likelihood costs O(rows^3)
            rows = np.sort(self.rng.choice(keep, self.fit_points, replace=False))
        for model, y in zip(self._models, Y.T):
            model.fit(x, y, keep, rows)
        infeasible = violation > 0
        threshold = None
        if infeasible.any():  # model the violation, negated, so feasible archs tie at the top
            scores = copula(-np.nan_to_num(violation, posinf=np.finfo(float).max))
            self._feasibility.fit(x, scores, rows, keep)
            # feasible: above the midpoint between the feasible archs' score and the best infeasible one's; before
            # any feasible arch, better than the best infeasible one
            best_infeasible = scores[infeasible].max()
            threshold = 0.5 * (scores[~infeasible].min() + best_infeasible) if (~infeasible).any() else best_infeasible
        candidates = self._candidates(archs[order[: self.parents]])
        if self._bounds and len(candidates):
            candidates = candidates[within(self._bounds, candidates)]
        if len(candidates) == 0:  # every candidate proposed or out of bounds: a random draw, as at the start
            return self._draw(min(n, self.batch))
        chosen = candidates[self._pick(candidates, maps, values, ~infeasible, threshold, min(n, self.batch))]
        self._proposed.update(self.space.index(chosen).tolist())
        return chosen

    def _pick(self, candidates: np.ndarray, maps: list[ValueMap], values: np.ndarray, feasible: np.ndarray,
              threshold: float | None, q: int) -> np.ndarray:
        """Positions of ``q`` candidates picked greedily by expected hypervolume improvement over the front of the
        ``feasible`` rows of ``values`` (maximised), weighted by the probability that the violation model scores them
        above ``threshold`` (none: no constraint has been violated yet); each pick is then believed observed at its
        posterior mean. Values are rescaled to the range seen (0 the worst, 1 the best, per target); the reference
        point is ``margin`` below the worst."""
        z = self.space.encode(candidates).astype(np.float64)
        predictions = [model.predict(z) for model in self._models]
        draws = self.rng.standard_normal((self.samples, len(maps)))
        worst = values.min(axis=0)
        span = np.where(values.max(axis=0) > worst, values.max(axis=0) - worst, 1.0)
        front = pareto_front((values[feasible] - worst) / span) if feasible.any() else np.empty((0, len(maps)))
        # (candidates, samples, targets) on that scale, and the posterior means
        Y = np.stack([(m(mu[:, None] + np.sqrt(var)[:, None] * draws[None, :, j]) - worst[j]) / span[j]
                      for j, (m, (mu, var)) in enumerate(zip(maps, predictions))], axis=-1)
        mean = np.column_stack([(m(mu) - lo) / d for m, (mu, _), lo, d in zip(maps, predictions, worst, span)])
        ref = np.full(len(maps), -self.margin)
        weight = np.ones(len(candidates))
        if threshold is not None:
            m, v = self._feasibility.predict(z)
            weight = ndtr((m - threshold) / np.sqrt(v))
        score = weight * improvement(front, Y, ref).mean(axis=1)
        q = min(q, len(candidates))
        picks: list[int] = []
        fresh = np.ones(len(candidates), dtype=bool)  # scored against the current front
        while len(picks) < q:
            top = np.argsort(-score, kind="stable")[:RESCORED]
            if fresh[top[0]]:
                c = int(top[0])
                picks.append(c)
                score[c] = -np.inf
                front = pareto_front(np.vstack([front, mean[c]]))
                fresh[:] = False
                fresh[picks] = True  # taken: never re-scored
                continue
            stale = top[~fresh[top]]  # re-scored against the front with the picks so far: they can only drop
            score[stale] = weight[stale] * improvement(front, Y[stale], ref).mean(axis=1)
            fresh[stale] = True
        return np.array(picks, dtype=np.int64)

    def _draw(self, n: int) -> np.ndarray:
        """Up to ``n`` random archs never proposed, within the free bounds where a few draws find enough."""
        if not self._bounds:
            return sample_distinct(self.space, self.rng, n, self._proposed)
        out = np.empty((0, self.space.dim), dtype=np.int64)
        for _ in range(10):  # the bounds may leave only a small share of the space: draw more each time
            drawn = sample_distinct(self.space, self.rng, 4 * n, set(self._proposed))
            out = np.concatenate([out, drawn[within(self._bounds, drawn)]])[:n]
            if len(out) == n or len(drawn) == 0:
                break
        if len(out) < n:  # too few within the bounds: random archs fill up (the run finds them infeasible)
            out = np.concatenate([out, sample_distinct(self.space, self.rng, n - len(out),
                                                       self._proposed | set(self.space.index(out).tolist()))])
        self._proposed.update(self.space.index(out).tolist())
        return out

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        new = evaluation.source == EVALUATED  # archs cut by the budget were never evaluated
        self._archs.append(np.array(archs, dtype=np.int64)[new])
        self._values.append(np.asarray(evaluation.values, dtype=float)[new] * self._sign)
        violation = np.where(evaluation.feasible, 0.0, np.asarray(evaluation.violation, dtype=float))
        self._violation.append(np.where(~evaluation.feasible & ~(violation > 0), np.inf, violation)[new])
