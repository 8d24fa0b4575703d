"""Gaussian-process Bayesian optimisation over a space's encoding (``searcher=gp``).

Model: a GP with a constant mean on the space's one-hot encoding and the kernel
``k(a, b) = s2 * exp(-sum_j theta_j * h_j(a, b))``, where ``h_j`` is half the
squared distance between the encodings of decision ``j``: 1 when the two archs
take different options of decision ``j``, 0 when the same (a decision inactive
in one arch only counts 1/2). It is an exponentiated Hamming distance with one
relevance ``theta_j`` per decision, the usual kernel for categorical decisions
(options have no order). ``kernel=matern`` puts the same weighted distance in a
Matern 5/2 instead. The relevances and the noise share ``g`` of the variance
are fitted each round by maximising the marginal likelihood (``s2`` profiled out
in closed form) with scipy's L-BFGS-B on the exact gradient, warm-started from
the previous round. ``prior`` adds ``prior * (theta_j + 1/theta_j)`` per
decision to the negative log likelihood, which keeps each relevance near 1
(correlation e^-1 across one changed decision): without it a few dozen points
let the fit push some relevances to their bound, the model then treats every
change of those decisions as a jump into the unknown, and the search sticks in
a local basin.

Targets are normal scores of the fitness ranks (a Gaussian copula, ties sharing
their mean rank; infeasible or failed archs get the worst finite fitness):
tabular accuracies are heavily skewed by a few broken cells near chance, which
would otherwise dominate a stationary kernel.

Each round proposes ``batch`` unseen archs. Candidates: mutants of the
``parents`` best archs (``pool`` of them, 1..``mutations`` decisions changed)
plus ``random`` uniform samples, minus every arch already proposed (the budget
counts distinct archs, so a repeat would be wasted: it is never proposed). The
batch is picked greedily by expected improvement over the best score plus
``xi`` under the *kriging believer*: after each pick the candidates' posterior
variances shrink as if the pick had been observed at its predicted mean (a
rank-one update of all candidates at once).

Linear cost: a GP fit costs O(n^3) and a prediction O(n^2) per candidate in the
number ``n`` of archs it conditions on, so conditioning on the whole history
makes a run's cost grow faster than its budget (``benchmarks/bench_gp_cost.py
--unbounded`` measures both). Once
more than ``max_points`` archs are evaluated, the GP conditions on the
``max_points`` nearest the ``parents`` (``training_subset``: a trust region
around the archs whose mutants are the candidates; the parents themselves
first, the better arch first among archs as near), and its hyper-parameters are
fitted on those same archs. Two things stay global: the targets are ranked
among *all* evaluated archs (the copula is taken before the subset) and the
GP's constant mean is the mean of all of them (with the trust region's own,
higher mean, runs found the optimum less often: docs/searchers/gp.md). A round then costs the same however
long the history, so a run's cost grows linearly with the budget; runs that
never evaluate more than ``max_points`` archs are exactly the runs without the
bound (every budget-100 run with the default of 100).

Single-objective: with several targets the runner refuses it (no ParEGO).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import ndtr, ndtri

from nas_lab.core.objective import EVALUATED, Evaluation
from nas_lab.core.parallel import limit_threads
from nas_lab.core.searcher import Searcher, sample_distinct
from nas_lab.core.settings import Setting

#: bounds of the fitted hyper-parameters: per-decision relevance theta and noise share g
THETA_BOUNDS = (1e-3, 20.0)
NOISE_BOUNDS = (1e-6, 1.0)
KERNELS = ("exp", "matern")
_SQRT5 = np.sqrt(5.0)
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def kernel_shape(kernel: str, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation as a function of the weighted distance ``r2 = sum_j theta_j h_j``, and its derivative in ``r2``."""
    if kernel == "matern":  # Matern 5/2 of r = sqrt(r2)
        r = np.sqrt(r2)
        e = np.exp(-_SQRT5 * r)
        return (1.0 + _SQRT5 * r + 5.0 / 3.0 * r2) * e, -5.0 / 6.0 * (1.0 + _SQRT5 * r) * e
    c = np.exp(-r2)
    return c, -c


def groups_of(space) -> np.ndarray:
    """Decision of each feature of ``space.encode`` (one-hot: ``sizes[j]`` features for decision ``j``);
    one group per feature for an encoding laid out otherwise."""
    width = space.encode(space.sample(np.random.default_rng(0), 1)).shape[1]
    if width == int(np.sum(space.sizes)):
        return np.repeat(np.arange(space.dim), space.sizes)
    return np.arange(width)


def half_sq_distances(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``(n_groups, n * n)``: half the squared distance between the rows of ``x`` within each feature group."""
    out = np.empty((n_groups, len(x), len(x)))
    for j in range(n_groups):  # a loop over decisions, each step one matmul over all pairs
        a = x[:, groups == j]
        sq = 0.5 * (a * a).sum(1)
        out[j] = sq[:, None] + sq[None, :] - a @ a.T
    return np.maximum(out, 0.0).reshape(n_groups, -1)


def training_subset(x: np.ndarray, y: np.ndarray, focus: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted rows of ``x (n, f)`` a GP conditions on: all of them while ``n <= max_points``, else the
    ``max_points`` nearest (half squared distance: on a one-hot encoding, the number of differing decisions) to any
    row of ``focus (k, f)``, the archs around which a searcher draws its candidates (a trust region); among rows
    as near, those with the higher ``y``. Pass all rows to ``GaussianProcess.fit`` with these as its
    ``condition_rows``: a round then costs the same however long the history grows, and the constant mean is
    still that of every row."""
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    distance = (0.5 * (x * x).sum(1)[:, None] + 0.5 * (focus * focus).sum(1)[None, :] - x @ focus.T).min(1)
    return np.sort(np.lexsort((-y, np.round(distance, 6)))[:max_points])  # rounded: float error breaks no tie


class GaussianProcess:
    """GP regression with the kernel ``s2 * k(sum_j theta_j h_j)`` on features grouped by decision.

    ``fit(x, y)`` fits ``theta`` and the noise share ``noise`` by maximum marginal
    likelihood (``s2`` in closed form) and conditions on the data; ``predict(z)``
    gives the posterior mean and variance of the latent function.
    """

    def __init__(self, groups: np.ndarray, kernel: str = "exp", prior: float = 0.0, max_iter: int = 30):
        self.groups = np.asarray(groups)
        self.n_groups = int(self.groups.max()) + 1
        self.kernel = kernel
        self.prior = prior
        self.max_iter = max_iter
        self.log_theta = np.zeros(self.n_groups)
        self.log_noise = np.log(1e-3)

    def nll(self, phi: np.ndarray, h: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log marginal likelihood (``s2`` profiled out, plus the prior) and its gradient in
        ``phi = (log theta, log noise)``; ``h`` from ``half_sq_distances``, ``y`` centred."""
        theta, g = np.exp(phi[:-1]), np.exp(phi[-1])
        n = len(y)
        c, dc = kernel_shape(self.kernel, (theta @ h).reshape(n, n))
        a = c.copy()
        a.flat[:: n + 1] += g
        try:
            chol = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(phi)
        inv_chol = solve_triangular(chol, np.eye(n), lower=True, check_finite=False)
        inv = inv_chol.T @ inv_chol
        alpha = inv @ y
        s2 = max(float(y @ alpha) / n, 1e-300)
        value = 0.5 * n * np.log(s2) + np.log(np.diag(chol)).sum() + self.prior * (theta + 1.0 / theta).sum()
        w = inv - np.outer(alpha, alpha) / s2  # d(value)/dA = w / 2
        grad = np.empty_like(phi)
        grad[:-1] = 0.5 * theta * (h @ (w * dc).ravel()) + self.prior * (theta - 1.0 / theta)
        grad[-1] = 0.5 * g * np.trace(w)
        return value, grad

    def fit(self, x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray | None = None,
            condition_rows: np.ndarray | None = None) -> GaussianProcess:
        """Fit the hyper-parameters on rows ``fit_rows`` of features ``x (n, f)`` and targets ``y (n,)``, starting
        from the last fit, then condition on rows ``condition_rows`` (both all rows by default; a bounded
        ``training_subset`` keeps a fit's cost bounded). The constant mean is that of every row of ``y``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self._mean = float(y.mean())
        yc = y - self._mean
        rows = slice(None) if fit_rows is None else fit_rows
        h = half_sq_distances(x[rows], self.groups, self.n_groups)
        bounds = [tuple(np.log(THETA_BOUNDS))] * self.n_groups + [tuple(np.log(NOISE_BOUNDS))]
        start = np.clip(np.append(self.log_theta, self.log_noise), *np.array(bounds).T)
        res = minimize(self.nll, start, args=(h, yc[rows]), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": self.max_iter, "ftol": 1e-6})
        self.log_theta, self.log_noise = res.x[:-1].copy(), float(res.x[-1])
        self.theta, self.noise = np.exp(self.log_theta), float(np.exp(self.log_noise))
        self._weights = self.theta[self.groups]
        if condition_rows is not None:
            x, yc = x[condition_rows], yc[condition_rows]
        self._x = x
        a = self.correlation(x)
        a.flat[:: len(x) + 1] += self.noise
        self._chol = np.linalg.cholesky(a)
        self._alpha = cho_solve((self._chol, True), yc, check_finite=False)
        self.s2 = float(yc @ self._alpha) / len(yc)
        return self

    def correlation(self, z: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """Kernel correlations ``(len(x), len(z))`` between rows of ``x`` (the training rows) and of ``z``."""
        x = self._x if x is None else x
        w = self._weights
        r2 = 0.5 * ((x * x) @ w)[:, None] + 0.5 * ((z * z) @ w)[None, :] - (x * w) @ z.T
        return kernel_shape(self.kernel, np.maximum(r2, 0.0))[0]

    def predict(self, z: np.ndarray, return_v: bool = False):
        """Posterior mean and variance ``(m,)`` of the latent function at features ``z (m, f)`` (and, with
        ``return_v``, ``v = L^-1 k(X, z)``, whose columns give posterior covariances)."""
        z = np.asarray(z, dtype=np.float64)
        k = self.correlation(z)
        mean = self._mean + k.T @ self._alpha
        v = solve_triangular(self._chol, k, lower=True, check_finite=False)
        var = self.s2 * np.maximum(1.0 - (v * v).sum(0), 1e-12)
        return (mean, var, v) if return_v else (mean, var)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` (maximising) of Gaussian predictions."""
    z = (mean - best) / sd
    return sd * (z * ndtr(z) + np.exp(-0.5 * z * z) / _SQRT_2PI)


def copula(y: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of ``y`` (ties share their mean rank): a monotone map onto N(0, 1)."""
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - 0.5 * counts  # mean rank of each distinct value, in (0, n)
    return ndtri(mid_rank[inverse] / len(y))


def standardise(y: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance."""
    return (y - y.mean()) / (y.std() or 1.0)


TRANSFORMS = {"copula": copula, "standard": standardise}


class GPSearch(Searcher):
    """Gaussian-process BO: per-decision Hamming kernel fitted by marginal likelihood, batched expected improvement."""

    name = "gp"
    title = "GP-BO"
    needs = ("sample", "mutate", "encode")

    def __init__(
        self,
        initial: Annotated[int, Setting(ge=2, le="space.cardinality",
                                        help="random archs before the first fit (a GP needs two)")] = 10,
        batch: Annotated[int, Setting(ge=1, le=10_000, help="archs proposed per fit")] = 10,
        pool: Annotated[int, Setting(ge=1, le=1_000_000,
                                     help="candidates scored by expected improvement per fit")] = 500,
        parents: Annotated[int, Setting(ge=1, le=10_000, help="best archs whose mutations fill the pool")] = 10,
        mutations: Annotated[int, Setting(ge=1, le="space.dim", help="decisions changed per mutated candidate")] = 3,
        random: Annotated[int, Setting(ge=0, le=1_000_000, help="random candidates added to the pool")] = 100,
        xi: Annotated[float, Setting(ge=0, le=100, help="exploration margin of expected improvement (in sd)")] = 0.5,
        prior: Annotated[float, Setting(ge=0, le=1e6, help="weight of the prior pulling length scales to 1")] = 0.1,
        kernel: Annotated[str, Setting(choices=KERNELS,
                                       help="kernel shape over per-decision Hamming distances")] = "exp",
        transform: Annotated[str, Setting(choices=tuple(TRANSFORMS), help="map of values before the fit")] = "copula",
        max_points: Annotated[int, Setting(ge=2, le=100_000,
                                           help="most evaluated archs the GP conditions on (those nearest the "
                                                "parents)")] = 100,
        fit_points: Annotated[int, Setting(ge=2, le=100_000,
                                           help="most points (a random subset) a hyper-parameter fit uses")] = 200,
        max_iter: Annotated[int, Setting(ge=1, le=100_000, help="L-BFGS iterations per hyper-parameter fit")] = 30,
    ):
        self.initial = initial
        self.batch = batch
        self.pool = pool
        self.parents = parents
        self.mutations = mutations
        self.random = random
        self.xi = xi
        self.prior = prior
        self.kernel = kernel
        self.transform = transform
        self.max_points = max_points
        self.fit_points = fit_points
        self.max_iter = max_iter

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self._proposed: set[int] = set()
        self._archs: list[np.ndarray] = []
        self._fitness: list[np.ndarray] = []
        self._gp = GaussianProcess(groups_of(space), self.kernel, self.prior, self.max_iter)

    def ask(self, n: int) -> np.ndarray:
        with limit_threads(1):  # small matrices: more threads only slow a round down
            return self._ask(n)

    def _ask(self, n: int) -> np.ndarray:
        told = sum(len(a) for a in self._archs)
        if told < self.initial:
            return sample_distinct(self.space, self.rng, min(n, self.initial - told), self._proposed)
        archs = np.concatenate(self._archs)
        fitness = np.concatenate(self._fitness)
        finite = np.isfinite(fitness)
        if finite.sum() < 2:  # nothing to learn from yet
            return sample_distinct(self.space, self.rng, min(n, self.batch), self._proposed)
        fitness = np.where(finite, fitness, fitness[finite].min())
        y = TRANSFORMS[self.transform](fitness)  # ranks among every evaluated arch, before any subset
        order = np.argsort(-fitness, kind="stable")[: self.parents]
        x = self.space.encode(archs).astype(np.float64)
        keep = training_subset(x, y, x[order], self.max_points)  # bounded: a round costs O(max_points^3)
        rows = keep
        if len(keep) > self.fit_points:  # hyper-parameters from a random subset: each likelihood costs O(rows^3)
            rows = np.sort(self.rng.choice(keep, self.fit_points, replace=False))
        self._gp.fit(x, y, rows, keep)
        candidates = self._candidates(archs[order])
        if len(candidates) == 0:  # the whole space has been proposed
            return candidates
        best = candidates[self._select(candidates, float(y.max()) + self.xi, min(n, self.batch))]
        self._proposed.update(self.space.index(best).tolist())
        return best

    def _select(self, candidates: np.ndarray, target: float, q: int) -> np.ndarray:
        """Positions of ``q`` candidates picked one by one by expected improvement over ``target``, each pick
        then believed observed at its posterior mean (variances shrink, means stay)."""
        gp = self._gp
        z = self.space.encode(candidates).astype(np.float64)
        mean, var, v = gp.predict(z, return_v=True)
        q = min(q, len(candidates))
        picks = np.empty(q, dtype=np.int64)
        updates = np.empty((q, len(z)))  # rank-one covariance updates of the picks so far
        noise = gp.s2 * gp.noise
        for t in range(q):  # one step per pick of the batch; each step covers every candidate at once
            ei = expected_improvement(mean, np.sqrt(var), target)
            ei[picks[:t]] = -np.inf
            c = int(np.argmax(ei))
            picks[t] = c
            if t + 1 == q:
                break
            cov = gp.s2 * (gp.correlation(z, z[c : c + 1])[0] - v[:, c] @ v) - updates[:t, c] @ updates[:t]
            updates[t] = cov / np.sqrt(var[c] + noise)
            var = np.maximum(var - updates[t] ** 2, 1e-12 * gp.s2)
            target = max(target, float(mean[c]) + self.xi)
        return picks

    def _candidates(self, parents: np.ndarray) -> np.ndarray:
        """Distinct never-proposed archs: up to ``pool`` mutants of ``parents`` and up to ``random`` samples."""
        size = min(self.pool, self.space.cardinality)
        copies = -(-2 * size // (len(parents) * self.mutations))  # oversample 2x: duplicates and seen archs drop out
        base = np.repeat(parents, copies, axis=0)
        mutants = np.concatenate([self.space.mutate(base, self.rng, k) for k in range(1, self.mutations + 1)])
        drawn = self.space.sample(self.rng, self.random)
        both = np.concatenate([mutants, drawn])
        idx = self.space.index(both)
        _, first = np.unique(idx, return_index=True)
        seen = np.array(list(self._proposed), dtype=idx.dtype)
        first = first[~np.isin(idx[first], seen)]
        mutant = first < len(mutants)
        keep = np.concatenate([self.rng.permutation(first[mutant])[:size], first[~mutant]])
        pool = both[np.sort(keep)]
        if len(pool) == 0 and len(self._proposed) < self.space.cardinality:  # mutants and draws all seen: enumerate
            left = min(size, self.space.cardinality - len(self._proposed))
            pool = sample_distinct(self.space, self.rng, left, set(self._proposed))
        return pool

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        new = evaluation.source == EVALUATED  # archs cut by the budget were never evaluated
        self._archs.append(np.array(archs, dtype=np.int64)[new])
        self._fitness.append(evaluation.fitness[new, 0].copy())
