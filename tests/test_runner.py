"""The runner loop: budget, de-duplication, determinism, best selection, refusals."""

import numpy as np
import pytest
from conftest import SumObjective

from nas_lab.core.errors import UserError
from nas_lab.core.runner import MAX_IDLE_ASKS, run
from nas_lab.core.searcher import Searcher
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.rea import RegularizedEvolution


class Repeater(Searcher):
    """Asks the same two archs over and over, plus one new arch every third ask."""

    name = "repeater"

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.asks = 0
        self.told = []

    def ask(self, n):
        self.asks += 1
        base = np.zeros((2, 8), dtype=np.int64)
        base[1, 0] = 1
        if self.asks % 3 == 0:
            return np.concatenate([base, self.space.arch([100 + self.asks])])
        return base

    def tell(self, archs, evaluation):
        self.told.append((archs.copy(), evaluation.cost.copy()))


def test_budget_counts_distinct_archs_and_repeats_are_free(space, sum_objective):
    s = Repeater()
    result = run(space, sum_objective, s, budget=10, seed=0)
    assert result.evaluations == 10
    assert len(np.unique(result.history["index"])) == 10
    assert sum_objective.calls == 10  # the objective never saw a repeated arch
    assert result.total_cost == 10.0
    # a repeated arch is told to the searcher with zero cost
    archs, cost = s.told[1]
    assert len(archs) == 2 and cost.tolist() == [0.0, 0.0]


def test_batch_larger_than_the_budget_left_is_truncated(space, sum_objective):
    class Greedy(RandomSearch):
        def ask(self, n):
            return super().ask(n + 5)

    result = run(space, sum_objective, Greedy(), budget=7, seed=1)
    assert result.evaluations == 7 and sum_objective.calls == 7


def test_same_seed_same_run_other_seed_other_run(space, sum_objective):
    a = run(space, sum_objective, RegularizedEvolution(), budget=100, seed=5)
    b = run(space, sum_objective, RegularizedEvolution(), budget=100, seed=5)
    c = run(space, sum_objective, RegularizedEvolution(), budget=100, seed=6)
    assert np.array_equal(a.history["index"], b.history["index"])
    assert not np.array_equal(a.history["index"], c.history["index"])


def test_nan_and_infeasible_archs_are_never_best(space):
    best = space.index(np.full(8, 2))
    runner_up = space.index(np.array([2, 2, 2, 2, 2, 2, 2, 1]))
    objective = SumObjective(space, nan_at=[best], infeasible_at=[runner_up])
    result = run(space, objective, RandomSearch(), budget=6561, seed=0)
    assert result.evaluations == 6561
    assert result.best_index not in (best, runner_up)
    assert result.best_metrics["sum"] == 15.0


def test_no_feasible_arch_gives_no_best(space):
    objective = SumObjective(space, infeasible_at=range(6561))
    result = run(space, objective, RandomSearch(), budget=20, seed=0)
    assert result.best_index is None and result.best_arch is None


@pytest.mark.parametrize("budget, message", [
    (0, r"budget must lie in 1..6,561 \(space.cardinality\), got 0"),
    (-3, "budget must lie in 1..6,561"),
    (6562, "budget must lie in 1..6,561"),
    (2.5, "budget must be a whole number, got 2.5"),
])
def test_bad_budgets_are_refused(space, sum_objective, budget, message):
    with pytest.raises(UserError, match=message):
        run(space, sum_objective, RandomSearch(), budget=budget)
    assert sum_objective.calls == 0


def test_incompatible_searcher_is_refused_before_anything_is_spent():
    from nas_lab.spaces.nb201 import NB201Space

    class NeedsSupernet(RandomSearch):
        name = "oneshot"
        needs = ("supernet",)

    nb201 = NB201Space()
    objective = SumObjective(nb201)
    with pytest.raises(UserError, match="needs a space that offers supernet, but space 'nb201' offers only"):
        run(nb201, objective, NeedsSupernet(), budget=5)
    assert objective.calls == 0


def test_multi_target_objective_needs_a_multi_objective_searcher(space, sum_objective):
    from nas_lab.searchers.rea import RegularizedEvolution

    sum_objective.targets = ("sum", "sum2")
    sum_objective.directions = ("max", "min")
    with pytest.raises(UserError, match="single-objective"):
        run(space, sum_objective, RegularizedEvolution(population=4, tournament=2), budget=5)
    assert sum_objective.calls == 0


def test_a_searcher_stuck_on_evaluated_archs_is_stopped(space, sum_objective):
    class Stuck(Repeater):
        def ask(self, n):
            return np.zeros((1, 8), dtype=np.int64)

    result = run(space, sum_objective, Stuck(), budget=10)
    assert result.evaluations == 1
    assert f"{MAX_IDLE_ASKS} times" in result.note


def test_rea_finds_the_optimum_of_an_easy_objective(space, sum_objective):
    result = run(space, sum_objective, RegularizedEvolution(), budget=300, seed=0)
    assert result.best_metrics["sum"] == 16.0


def test_rea_population_ages_out_the_oldest(space, sum_objective):
    class Recording(RegularizedEvolution):
        def tell(self, archs, evaluation):
            self.log.extend(self.space.index(archs).tolist())
            super().tell(archs, evaluation)

    rea = Recording(population=5, tournament=2)
    rea.log = []
    run(space, sum_objective, rea, budget=12, seed=0)
    # the population holds the 5 most recently told members, whatever their fitness
    assert sorted(space.index(rea._archs).tolist()) == sorted(rea.log[-5:])
    assert len(rea.log) >= 12


def test_best_so_far_is_monotone(space, sum_objective):
    result = run(space, sum_objective, RegularizedEvolution(), budget=100, seed=2)
    curve = result.best_so_far()
    assert (np.diff(curve) >= 0).all() and curve[-1] == result.best_metrics["sum"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(population=0), "population must lie in 1..space.cardinality"),
    (dict(population=5, tournament=6), r"tournament must lie in 1..5 \(population\)"),
    (dict(mutations=0), "mutations must lie in 1..space.dim"),
])
def test_rea_rejects_bad_parameters(kwargs, message):
    with pytest.raises(UserError, match=message):
        RegularizedEvolution(**kwargs)


def test_a_searcher_that_is_done_ends_the_run_and_its_report_is_recorded(space, sum_objective):
    class OneShot(RandomSearch):
        name = "oneshot"

        def reset(self, space, objective, rng):
            super().reset(space, objective, rng)
            self.proposed = False

        def ask(self, n):
            if self.proposed:
                return np.empty((0, 8), dtype=np.int64)
            self.proposed = True
            return np.full((1, 8), 2)

        def report(self):
            return {"supernet.val": 0.5}

    result = run(space, sum_objective, OneShot(), budget=100, seed=0)
    assert result.evaluations == 1 and result.best_metrics["sum"] == 16.0
    assert result.note == "searcher finished after 1 of 100 evaluations"
    assert result.to_record()["searcher_report"] == {"supernet.val": 0.5}
