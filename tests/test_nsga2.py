"""searcher=nsga2: pymoo's NSGA-II through ask/tell, on the simulated HyViTas table (no shared data needed)."""

import json
import warnings

import numpy as np
import pytest
from conftest import Counting, SumObjective
from test_gp_searcher import Tiny

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.fronts import minimisation, non_dominated
from nas_lab.core.objective import CACHED, CUT, EVALUATED
from nas_lab.core.runner import run
from nas_lab.searchers.nsga2 import NSGA2
from nas_lab.searchers.random import RandomSearch


@pytest.fixture(scope="module")
def two_targets():
    space, objective, _ = build(RunConfig(objective="id,params"))
    return space, objective


@pytest.fixture(scope="module")
def constrained():
    space, objective, _ = build(RunConfig(objective="id,latency.agx_orin", constraints=["params<=1e6"]))
    return space, objective


class Recording(NSGA2):
    """NSGA-II that keeps what it was told (sources per batch)."""

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.sources = []

    def tell(self, archs, evaluation):
        self.sources.append(evaluation.source.copy())
        super().tell(archs, evaluation)


def test_same_seed_same_run_and_another_seed_another(two_targets):
    space, objective = two_targets
    a, b, c = (run(space, objective, NSGA2(), budget=150, seed=s) for s in (4, 4, 5))
    assert np.array_equal(a.history["index"], b.history["index"])
    assert a.front["index"] == b.front["index"] and a.front["hypervolume"] == b.front["hypervolume"]
    assert not np.array_equal(a.history["index"], c.history["index"])


def test_budget_counts_distinct_archs_and_repeats_are_answered_from_the_cache(two_targets):
    space, objective = two_targets
    counting = Counting(objective)
    searcher = Recording()
    result = run(space, counting, searcher, budget=400, seed=1)
    # every arch the objective evaluated is distinct, exactly the budget of them, recorded in that order
    assert len(counting.evaluated) == 400 == len(set(counting.evaluated))
    assert counting.evaluated == result.history["index"].tolist()
    told = np.concatenate(searcher.sources)
    # pymoo offered more archs than it was charged for: its repeats were answered from the run's cache
    assert (told == CACHED).sum() > 0 and (told == EVALUATED).sum() == 400
    assert len(searcher.sources) == searcher.report()["generations"]
    # a population, then 50 offspring at most per generation
    assert all(1 <= len(batch) <= 50 for batch in searcher.sources)


def test_the_last_generation_is_cut_by_the_budget_and_told_back_whole(two_targets):
    space, objective = two_targets
    searcher = Recording()
    result = run(space, objective, searcher, budget=75, seed=2)
    assert len(result.history["index"]) == 75
    first, last = searcher.sources[0], searcher.sources[-1]
    assert len(searcher.sources) == 2 and (first == EVALUATED).all()  # pymoo's first population (duplicates removed)
    assert (last == CUT).sum() >= 1 and (last == EVALUATED).sum() == 75 - len(first)
    assert (np.flatnonzero(last == CUT) > np.flatnonzero(last == EVALUATED).max()).all()  # the tail was cut


def test_pymoo_own_loop_with_the_same_seed_proposes_the_same_archs(two_targets):
    """The adapter changes nothing in pymoo's NSGA-II: ``minimize`` seeded alike evaluates the same archs in order."""
    from pymoo.core.problem import Problem
    from pymoo.optimize import minimize

    space, objective = two_targets
    result = run(space, objective, NSGA2(), budget=300, seed=3)
    gens = result.searcher_report["generations"]
    values, _ = objective.exhaustive()
    F_all = minimisation(values, objective.directions)
    order: list[int] = []

    class Table(Problem):
        def __init__(self):
            super().__init__(n_var=space.dim, n_obj=2, xl=np.zeros(space.dim), xu=(space.sizes - 1).astype(float),
                             vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):
            idx = space.index(np.rint(X).astype(np.int64))
            order.extend(i for i in idx.tolist() if i not in order)
            out["F"] = F_all[idx]

    algorithm = NSGA2().pymoo_algorithm(space, result.searcher_report["pymoo_seed"])
    minimize(Table(), algorithm, ("n_gen", gens), seed=result.searcher_report["pymoo_seed"])
    assert order[:300] == result.history["index"].tolist()


def test_single_objective_runs_and_reports_the_best(space):
    space, objective, _ = build(RunConfig(objective="id"))
    result = run(space, objective, NSGA2(population=20), budget=200, seed=0)
    assert result.front is None and result.best_index is not None
    value = result.history["value"][:, 0]
    assert result.best_metrics["id"] == pytest.approx(value.max())
    # evolution climbs: the last 100 evaluations are better on average than the first 20 (random) ones
    assert value[100:].mean() > value[:20].mean()


def test_failed_evaluations_are_ranked_last_without_warnings(space, sum_objective):
    nan_at = set(range(0, space.cardinality, 3))
    sum_objective.nan_at = nan_at
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(space, sum_objective, NSGA2(population=20), budget=150, seed=0)
    assert len(result.history["index"]) == 150
    failed = np.isnan(result.history["value"][:, 0])
    # failures were met and told back, and ranked last: far fewer than the third random draws would hit
    assert 5 <= failed.sum() < 30 and failed[:20].sum() >= 3
    assert result.best_index not in nan_at and np.isfinite(result.best_metrics["sum"])


def test_a_converged_population_ends_the_search_with_a_note(space, sum_objective):
    """On one smooth target the population converges and pymoo re-proposes evaluated archs only: after
    ``patience`` such generations the searcher stops instead of idling towards the runner's limit."""
    result = run(space, sum_objective, NSGA2(population=10, patience=2), budget=2000, seed=0)
    assert len(result.history["index"]) < 200
    assert result.note == f"searcher finished after {len(result.history['index'])} of 2000 evaluations"
    assert "after 2 generations in a row proposed only evaluated archs" in result.searcher_report["converged"]
    assert result.best_metrics["sum"] >= 14  # near the optimum 16 (all-last arch) when it stopped


def test_constraints_are_respected_in_the_front_and_steer_the_search(constrained):
    space, objective = constrained
    result = run(space, objective, NSGA2(), budget=300, seed=0)
    index = np.asarray(result.front["index"])
    assert len(index) > 0
    assert (objective.measure("params", space.arch(index)) <= 1e6).all()
    # pymoo's constraint-domination pushes the population into the feasible region (random: about 15 %)
    feasible = result.history["feasible"]
    rand = run(space, objective, RandomSearch(), budget=300, seed=0).history["feasible"]
    assert feasible[150:].mean() > 2 * rand.mean() > 0, (feasible[150:].mean(), rand.mean())
    # the front is the non-dominated set of the feasible evaluations
    F = minimisation(result.history["value"], objective.directions)
    rows = np.flatnonzero(feasible)
    assert sorted(index.tolist()) == sorted(result.history["index"][rows[non_dominated(F[rows])]].tolist())


def test_population_larger_than_a_generation_or_the_space_is_refused(capsys):
    code = main(["run", "searcher=nsga2", "searcher.population=7000", "objective=id,params", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2
    assert "searcher.population must lie in 2..5,000, got 7,000" in err  # MAX_GENERATION binds on HyViTas
    assert len(err.strip().splitlines()) == 1
    tiny = Tiny()  # 27 archs: there the space binds
    with pytest.raises(UserError, match=r"searcher.population must lie in 2..27 \(space.cardinality\), got 30"):
        run(tiny, SumObjective(tiny), NSGA2(population=30), budget=5)


@pytest.mark.parametrize("override, message", [
    ("searcher.population=1", "searcher.population must lie in 2..5,000, got 1"),
    ("searcher.crossover=pmx", "searcher.crossover must be one of sbx, ux, got 'pmx'"),
    ("searcher.mutation=flip", "searcher.mutation must be one of pm, reset, got 'flip'"),
    ("searcher.crossover_prob=1.5", "searcher.crossover_prob must lie in [0, 1]"),
    ("searcher.mutation_rate=0", "searcher.mutation_rate must lie in (0, 1]"),
    ("searcher.duplicates=all", "searcher.duplicates must be one of population, run, got 'all'"),
    ("searcher.patience=0", "searcher.patience must lie in 1..1,000,000"),
])
def test_bad_parameters_are_one_sentence_and_exit_2(capsys, override, message):
    code = main(["run", "searcher=nsga2", override, "objective=id,params", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_run_wide_duplicate_elimination_proposes_only_new_archs(two_targets):
    space, objective = two_targets
    searcher = Recording(duplicates="run")
    run(space, objective, searcher, budget=400, seed=1)
    told = np.concatenate(searcher.sources)
    assert (told == CACHED).sum() == 0 and (told == EVALUATED).sum() == 400


def test_cli_run_reports_a_front_in_json(capsys):
    code = main(["run", "searcher=nsga2", "objective=id,params", "budget=120", "searcher.crossover=ux",
                 "searcher.mutation=reset", "--json", "--no-save"])
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)
    assert record["searcher"] == "nsga2" and record["evaluations"] == 120
    assert 0 < record["front"]["hypervolume"] <= record["front"]["true_hypervolume"]
