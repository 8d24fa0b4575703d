"""Searchers whose cost grows linearly with the budget: BANANAS' warm-started ensemble and REA's batches of
tournaments keep their semantics (aging, tournament size, same seed same run)."""

import numpy as np
import pytest
from conftest import SumObjective

from nas_lab.core.errors import UserError
from nas_lab.core.objective import CUT, Evaluation
from nas_lab.core.runner import run
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.searchers.bananas import Bananas
from nas_lab.searchers.gp import GaussianProcess, GPSearch, groups_of, training_subset
from nas_lab.searchers.predictors import MLPEnsemble
from nas_lab.searchers.rea import RegularizedEvolution

# -- BANANAS: warm start ----------------------------------------------------------------


@pytest.fixture(scope="module")
def id_objective(space):
    return TabularObjective(space, "id")


def test_warm_started_bananas_gives_the_same_run_for_the_same_seed(space, id_objective):
    runs = [run(space, id_objective, Bananas(), budget=60, seed=s) for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0].history["index"], runs[1].history["index"])
    np.testing.assert_array_equal(runs[0].history["value"], runs[1].history["value"])
    assert not np.array_equal(runs[0].history["index"], runs[2].history["index"])


class CountingEnsemble(MLPEnsemble):
    log: list

    def fit(self, x, y, rng):
        self.log.append(("fit", len(x)))
        return super().fit(x, y, rng)

    def partial_fit(self, x, y, steps, mean, std):
        self.log.append(("warm", len(x), steps))
        return super().partial_fit(x, y, steps, mean, std)


class Counting(Bananas):
    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self._model.__class__ = CountingEnsemble
        self._model.log = self.log = []


def test_bananas_trains_from_scratch_once_then_a_fixed_amount_per_round(space, id_objective):
    b = Counting(replay=20)
    run(space, id_objective, b, budget=200, seed=0)
    assert b.log[0] == ("fit", 10)
    warm = b.log[1:]
    assert len(warm) == 18 and all(kind == "warm" and steps == 30 for kind, _, steps in warm)
    # each round trains on the 10 archs told since plus 20 replayed: the same at round 3 as at round 19
    assert [rows for _, rows, _ in warm] == [20] + [30] * 17


def test_bananas_warm_steps_0_refits_from_scratch_every_round(space, id_objective):
    b = Counting(warm_steps=0)
    run(space, id_objective, b, budget=50, seed=0)
    assert b.log == [("fit", n) for n in (10, 20, 30, 40)]


def test_partial_fit_rescales_targets_without_changing_the_function(space):
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 50)
    x = space.encode(archs)
    y = archs.sum(axis=1).astype(float)
    model = MLPEnsemble(steps=50).fit(x, y, rng)
    before = model.predict(x)
    model.partial_fit(x, y, 0, mean=y.mean() + 3.0, std=2.5 * y.std())  # new scale, no training step
    np.testing.assert_allclose(model.predict(x), before, rtol=1e-4, atol=1e-4)
    model.partial_fit(x, y, 50, mean=y.mean(), std=y.std())  # and training goes on from there
    assert np.mean((model.predict(x).mean(0) - y) ** 2) < np.mean((before.mean(0) - y) ** 2)


def test_renew_reinitialises_one_member_only(space):
    rng = np.random.default_rng(1)
    x = space.encode(space.sample(rng, 40))
    y = rng.standard_normal(40)
    model = MLPEnsemble(members=4, steps=30).fit(x, y, rng)
    before = model.predict(x)
    model.renew(2, rng)
    after = model.predict(x)
    changed = ~np.isclose(after, before).all(axis=1)
    assert changed.tolist() == [False, False, True, False]


@pytest.mark.parametrize("params, message", [
    ({"warm_steps": -1}, "searcher.warm_steps must lie in 0..100,000"),
    ({"replay": -5}, "searcher.replay must lie in 0..1,000,000"),
    ({"renew": 6}, r"searcher.renew must lie in 0..5 \(ensemble\), got 6"),
])
def test_bananas_refuses_bad_warm_start_parameters(params, message):
    with pytest.raises(UserError, match=message):
        Bananas(**params)


# -- REA: batches of tournaments ---------------------------------------------------------


class Spy(RegularizedEvolution):
    """Records, per ask on a full population, the population it saw, the tournaments drawn and the children."""

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.asks, self.told = [], []
        real = rng
        spy = self

        class Recorder:  # the searcher's own generator, with its integer draws (the tournaments) recorded
            def integers(self, *args, **kwargs):
                out = real.integers(*args, **kwargs)
                spy._draws = out
                return out

            def __getattr__(self, name):
                return getattr(real, name)

        self.rng = Recorder()

    def ask(self, n):
        full = self._size >= self.population
        population, fitness = self._archs.copy(), self._fitness.copy()
        self._draws = None
        children = super().ask(n)
        if full:
            self.asks.append((population, fitness, self._draws, children))
        return children

    def tell(self, archs, evaluation):
        self.told.append(np.array(archs)[evaluation.source != CUT])  # cut archs were never evaluated
        super().tell(archs, evaluation)
        pop = self.space.index(self._archs[: self._size])
        recent = self.space.index(np.concatenate(self.told)[-self.population:])
        assert sorted(pop.tolist()) == sorted(recent.tolist())  # the population is the last members told


@pytest.fixture(scope="module")
def converged(space):
    """REA 20/5 at budget 1,000 on the sum objective: the population converges, children repeat, batches grow.
    Spy.tell checks aging after every tell."""
    rea = Spy(population=20, tournament=5, mutations=1)
    result = run(space, SumObjective(space), rea, budget=1000, seed=1)
    return rea, result


def test_batched_rea_ages_out_the_oldest_member(converged):
    rea, result = converged
    sizes = [len(c) for *_, c in rea.asks]
    assert result.evaluations == 1000
    assert sizes[0] == 1 and max(sizes) == rea.batch  # batches did form (seen up to 64), and aging held across them


def test_each_child_is_a_mutant_of_the_fittest_of_its_tournament(converged):
    rea, _ = converged
    for population, fitness, members, children in rea.asks:
        assert members.shape == (len(children), 5)  # one tournament of 5 per child, on the current population
        parents = population[members[np.arange(len(members)), np.argmax(fitness[members], axis=1)]]
        assert ((children != parents).sum(axis=1) == 1).all()


def test_large_budgets_take_many_children_per_ask(converged):
    rea, _ = converged
    children = sum(len(c) for *_, c in rea.asks)
    assert children > 10 * len(rea.asks)  # seen: ~28,000 children in ~980 asks; sequential REA asks once per child


def test_batch_1_is_sequential_rea(space):
    rea = Spy(population=8, tournament=3, batch=1)
    run(space, SumObjective(space), rea, budget=120, seed=3)
    assert {len(c) for *_, c in rea.asks} == {1}


def test_archs_cut_by_the_budget_join_no_population(space):
    rea = RegularizedEvolution(population=3, tournament=2)
    rea.reset(space, SumObjective(space), np.random.default_rng(0))
    archs = space.sample(np.random.default_rng(1), 5)
    ev = Evaluation(values=archs.sum(1, keepdims=True).astype(float), directions=("max",), cost=np.ones(5),
                    feasible=np.ones(5, bool), source=np.array([0, 0, 0, 0, CUT], dtype=np.int8))
    rea.tell(archs, ev)
    # 3 fill the population, the 4th replaces the oldest, the cut 5th is dropped
    assert sorted(space.index(rea._archs).tolist()) == sorted(space.index(archs[[1, 2, 3]]).tolist())


def test_rea_refuses_a_batch_below_1():
    with pytest.raises(UserError, match="searcher.batch must lie in 1..100,000, got 0"):
        RegularizedEvolution(batch=0)


# -- gp: a bounded training set ------------------------------------------------------------


def hamming_to_nearest(archs: np.ndarray, focus: np.ndarray) -> np.ndarray:
    return (archs[:, None, :] != focus[None, :, :]).sum(axis=2).min(axis=1)


def test_training_subset_keeps_every_row_up_to_its_bound(space):
    x = space.encode(space.sample(np.random.default_rng(0), 30)).astype(float)
    y = np.random.default_rng(1).standard_normal(30)
    np.testing.assert_array_equal(training_subset(x, y, x[:3], 30), np.arange(30))


def test_training_subset_keeps_the_archs_nearest_the_focus_the_better_first_among_equals(space):
    """On HyViTas (no conditional decisions) the encoding's half squared distance is the Hamming distance."""
    rng = np.random.default_rng(2)
    focus = space.sample(rng, 3)
    archs = np.concatenate([focus] + [space.mutate(np.repeat(focus, 40, axis=0), rng, k) for k in (1, 2, 4)]
                           + [space.sample(rng, 200)])
    y = rng.standard_normal(len(archs))
    rows = training_subset(space.encode(archs).astype(float), y, space.encode(focus).astype(float), 100)
    assert len(rows) == 100 and np.all(np.diff(rows) > 0)  # distinct, sorted
    left_out = np.setdiff1d(np.arange(len(archs)), rows)
    distance = hamming_to_nearest(archs, focus)
    assert set(range(3)) <= set(rows.tolist())  # the focus archs themselves (distance 0)
    edge = distance[rows].max()
    assert edge <= distance[left_out].min() and edge < distance[left_out].max()  # none left out is nearer
    tied_in, tied_out = rows[distance[rows] == edge], left_out[distance[left_out] == edge]
    assert len(tied_out) > 0 and y[tied_in].min() >= y[tied_out].max()  # among archs as near, the better are kept


class Bounded(GPSearch):
    """Records how many archs the GP conditioned on in each round and every arch it was told."""

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.conditioned, self.told = [], []

    def _select(self, candidates, target, q):
        self.conditioned.append(len(self._gp._x))
        return super()._select(candidates, target, q)

    def tell(self, archs, evaluation):
        self.told.extend(self.space.index(archs).tolist())
        super().tell(archs, evaluation)


def test_gp_conditions_on_at_most_max_points_and_never_repeats_a_proposal(space):
    gp = Bounded(max_points=40, fit_points=30)
    result = run(space, SumObjective(space), gp, budget=200, seed=0)
    assert result.evaluations == 200 and len(set(gp.told)) == len(gp.told) == 200
    assert max(gp.conditioned) == 40 and gp.conditioned[-1] == 40  # the bound is reached and held
    assert gp.conditioned[:3] == [10, 20, 30]  # below it: every arch told so far
    assert result.best_metrics["sum"] == 16.0  # and the optimum is still found


def test_the_bound_changes_nothing_until_the_history_outgrows_it(space):
    """Budget 60: the last round fits on 50 archs, within a bound of 50; budget 100 outgrows it."""
    def history(max_points, budget):
        return run(space, SumObjective(space), GPSearch(max_points=max_points), budget=budget, seed=3).history["index"]

    np.testing.assert_array_equal(history(50, 60), history(100_000, 60))
    assert not np.array_equal(history(50, 100), history(100_000, 100))


def test_gp_conditions_on_the_given_rows_and_keeps_the_mean_of_all(space):
    rng = np.random.default_rng(5)
    archs = np.unique(space.sample(rng, 80), axis=0)
    x, y = space.encode(archs).astype(float), archs.sum(axis=1).astype(float)
    rows = np.arange(0, len(archs), 2)
    gp = GaussianProcess(groups_of(space), prior=0.1).fit(x, y, fit_rows=rows, condition_rows=rows)
    assert len(gp._x) == len(rows) and gp._mean == pytest.approx(y.mean(), abs=1e-12)  # float sums only
    mean, var = gp.predict(x[rows])
    assert np.abs(mean - y[rows]).max() < 1e-2 * y.std()  # interpolates the rows it conditions on
    far = np.setdiff1d(np.arange(len(archs)), rows)
    assert gp.predict(x[far])[1].min() > 10 * var.max()  # and is unsure about the others


def test_the_bound_holds_on_a_huge_conditional_space():
    """ViTAS (10^43 archs, inactive decisions encoded as zeros): distances still rank the history, runs stay
    distinct."""
    from nas_lab.core import registry

    vitas = registry.create("space", "vitas", {})
    gp = Bounded(max_points=25)
    result = run(vitas, SumObjective(vitas), gp, budget=60, seed=1)
    assert result.evaluations == 60 and len(set(gp.told)) == 60
    assert gp.conditioned == [10, 20, 25, 25, 25]
