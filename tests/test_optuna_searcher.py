"""searcher=optuna: any Optuna sampler as a searcher, one trial per ask (simulated HyViTas table, no shared data)."""

import warnings

import numpy as np
import optuna
import pytest
from conftest import Counting

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.core.settings import parse_mapping
from nas_lab.searchers.optuna_sampler import OptunaSearch
from nas_lab.searchers.random import RandomSearch


@pytest.fixture(scope="module")
def single():
    space, objective, _ = build(RunConfig(objective="id"))
    return space, objective


@pytest.fixture(scope="module")
def two_targets():
    space, objective, _ = build(RunConfig(objective="id,params"))
    return space, objective


def drive_directly(space, sampler, directions, value_of, budget):
    """Optuna as a user drives it: suggest_categorical per decision, tell every trial, stop at ``budget`` distinct
    archs. Returns the arch index of every trial, in order."""
    study = optuna.create_study(sampler=sampler, directions=directions)
    trials, seen = [], set()
    while len(seen) < budget:
        trial = study.ask()
        arch = np.array([trial.suggest_categorical(n, list(range(int(k)))) for n, k in zip(space.names, space.sizes)])
        index = int(space.index(arch[None])[0])
        trials.append(index)
        seen.add(index)
        values = value_of[index]
        study.tell(trial, values if len(values) > 1 else values[0])
    return trials


class Recording(OptunaSearch):
    """The adapter, keeping the arch index of every trial it asked."""

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.asked = []

    def ask(self, n):
        archs = super().ask(n)
        self.asked.append(int(self.space.index(archs)[0]))
        return archs


@pytest.mark.parametrize("sampler, fixture, directions, budget", [
    ("tpe", "single", ["maximize"], 40),
    ("nsga2", "two_targets", ["maximize", "minimize"], 70),
])
def test_the_adapter_replays_the_sampler_driven_directly(request, sampler, fixture, directions, budget):
    """Same sampler, same seed: the adapter asks exactly the trials Optuna alone would, repeats included."""
    space, objective = request.getfixturevalue(fixture)
    searcher = Recording(sampler=sampler)
    result = run(space, objective, searcher, budget=budget, seed=7)
    value_of = dict(zip(result.history["index"].tolist(), result.history["value"].tolist()))
    seed = result.searcher_report["sampler_seed"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        direct_sampler = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler}[sampler](seed=seed)
    direct = drive_directly(space, direct_sampler, directions, value_of, budget)
    assert searcher.asked == direct
    assert result.searcher_report["trials"] == len(direct) > budget  # some trials repeated an arch


def test_same_seed_same_run_and_another_seed_another(single):
    space, objective = single
    a, b, c = (run(space, objective, OptunaSearch(), budget=30, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.history["index"], b.history["index"]) and a.best_index == b.best_index
    assert not np.array_equal(a.history["index"], c.history["index"])


def test_budget_counts_distinct_archs_while_every_trial_is_told(single):
    space, objective = single
    counting = Counting(objective)
    searcher = OptunaSearch(n_startup_trials=5)
    result = run(space, counting, searcher, budget=60, seed=0)
    assert len(counting.evaluated) == 60 == len(set(counting.evaluated))
    trials = searcher._study.trials
    assert len(trials) == result.searcher_report["trials"] > 60
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # a repeated arch is told the value recorded for it
    recorded = dict(zip(result.history["index"].tolist(), result.history["value"][:, 0].tolist()))
    for t in trials:
        arch = np.array([[t.params[n] for n in space.names]])
        assert t.value == recorded[int(space.index(arch)[0])]


def test_sampler_options_reach_the_sampler(single):
    space, objective = single
    tpe = OptunaSearch(n_ei_candidates=30, options="n_startup_trials=7,constant_liar=false")
    run(space, objective, tpe, budget=3, seed=0)
    assert tpe._study.sampler._n_startup_trials == 7 and tpe._study.sampler._n_ei_candidates == 30
    assert tpe._study.sampler._constant_liar is False
    nsga = OptunaSearch(sampler="nsga2", population_size=12, crossover_prob=0.5)
    run(space, objective, nsga, budget=3, seed=0)
    assert nsga._study.sampler._population_size == 12
    assert parse_mapping("{a: 1, b: sobol}") == {"a": 1, "b": "sobol"}
    assert parse_mapping("a=1,b=true,c=0.5,d=halton") == {"a": 1, "b": True, "c": 0.5, "d": "halton"}


def test_constraints_reach_the_sampler_and_the_front_respects_them():
    space, objective, _ = build(RunConfig(objective="id,latency.agx_orin", constraints=["params<=1e6"]))
    searcher = OptunaSearch(sampler="nsga2", population_size=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Experimental- or FutureWarning escapes
        result = run(space, objective, searcher, budget=150, seed=0)
    index = np.asarray(result.front["index"])
    assert len(index) > 0 and (objective.measure("params", space.arch(index)) <= 1e6).all()
    # every trial carries its violation as Optuna's constraint (<= 0 feasible)
    for t in searcher._study.trials:
        arch = space.arch(int(space.index(np.array([[t.params[n] for n in space.names]]))[0]))
        params = objective.measure("params", arch[None])[0]
        assert (t.constraints["violation"] <= 0) == (params <= 1e6)
    # the sampler uses them: later generations are feasible far more often than random draws (about 15 %)
    feasible = result.history["feasible"]
    rand = run(space, objective, RandomSearch(), budget=150, seed=0).history["feasible"]
    assert feasible[75:].mean() > 2 * rand.mean() > 0, (feasible[75:].mean(), rand.mean())


def test_failed_evaluations_are_failed_trials(space, sum_objective):
    sum_objective.nan_at = set(range(0, space.cardinality, 4))
    searcher = OptunaSearch(sampler="random")
    result = run(space, sum_objective, searcher, budget=40, seed=0)
    states = [t.state for t in searcher._study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == np.isnan(result.history["value"][:, 0]).sum() > 0
    assert np.isfinite(result.best_metrics["sum"])


@pytest.mark.parametrize("sampler, params", [
    ("tpe", {}), ("random", {}), ("nsga2", {"population_size": 6}), ("nsga3", {"population_size": 6}), ("qmc", {}),
])
def test_every_sampler_searches_several_targets_silently(two_targets, sampler, params):
    space, objective = two_targets
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(space, objective, OptunaSearch(sampler=sampler, **params), budget=20, seed=0)
    assert len(result.history["index"]) == 20
    assert result.front["hypervolume"] > 0 and len(result.front["index"]) >= 1


def test_the_gp_sampler_searches_categorical_decisions_silently(single):
    """GP fits a model per trial (seconds for several targets), so one model-based step on one target shows it."""
    space, objective = single
    searcher = OptunaSearch(sampler="gp", n_startup_trials=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(space, objective, searcher, budget=7, seed=0)
    assert len(result.history["index"]) == 7 and np.isfinite(result.best_metrics["id"])
    assert type(searcher._study.sampler).__name__ == "GPSampler"


@pytest.mark.parametrize("args, message", [
    (["searcher.sampler=hyperband"],
     "searcher.sampler must be one of tpe, random, gp, nsga2, nsga3, qmc, got 'hyperband'"),
    (["searcher.sampler=cmaes"], "searcher.sampler must be one of tpe, random, gp, nsga2, nsga3, qmc, got 'cmaes'"),
    (["searcher.population_size=10"],
     "Optuna's TPESampler (searcher.sampler=tpe) takes no option 'population_size'; valid:"),
    (["searcher.options=gamma_x=1"], "takes no option 'gamma_x'"),
    (["searcher.options=seed=3"], "searcher.options cannot set 'seed'"),
    (["searcher.options=n_startup_trials=1e9"], "searcher.options.n_startup_trials must lie in 0..1,000,000"),
    (["searcher.options=constant_liar=maybe"], "searcher.options.constant_liar must be true or false, got 'maybe'"),
    (["searcher.options=n_startup_trials"], "searcher.options=n_startup_trials: not key=value,key=value"),
    (["searcher.n_startup_trials=5", "searcher.options=n_startup_trials=6"],
     "searcher.n_startup_trials is given twice"),
    (["searcher.sampler=nsga2", "searcher.population_size=1"],
     "searcher.population_size must lie in 2..1,000,000, got 1"),
    (["searcher.sampler=qmc", "searcher.qmc_type=lattice"],
     "searcher.qmc_type must be one of sobol, halton, got 'lattice'"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, args, message):
    code = main(["run", "searcher=optuna", *args, "budget=5", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_single_objective_searcher_with_several_metrics_is_refused(capsys):
    code = main(["run", "searcher=rea", "objective=id,params", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "optimises 2 metrics but searcher 'rea' is single-objective" in err
