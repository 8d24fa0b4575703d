"""nas_lab's searchers inside Optuna: NasLabSampler over a study's categorical parameters.

The NAS-Bench-201 comparison reads the real table from ../shared/data (skipped with the reason when it is absent);
the other tests use small spaces of their own.
"""

import itertools
import subprocess
import sys

import numpy as np
import optuna
import pytest

from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.objective import CACHED, EVALUATED
from nas_lab.core.runner import run
from nas_lab.core.searcher import Searcher
from nas_lab.integrations.optuna import NasLabSampler
from nas_lab.searchers.gp import GPSearch

optuna.logging.set_verbosity(optuna.logging.WARNING)

SEEDS = range(30)
TRIALS = 100


def study_of(sampler, objective, n_trials, directions=("maximize",)):
    study = optuna.create_study(sampler=sampler, directions=list(directions))
    study.optimize(objective, n_trials=n_trials)
    return study


def mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x))


# -- NAS-Bench-201 as six categorical parameters ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb201(shared_data):
    space, objective, _ = build(RunConfig(space="nb201", objective="test.cifar10").apply([f"table={shared_data}"]))
    return space, objective


def test_gp_sampler_matches_nas_labs_own_gp_and_beats_tpe_on_nb201(nb201):
    space, objective = nb201
    # the objective an Optuna user writes: the six edges as categorical parameters, the accuracy an array lookup
    # (NB201's index of the ops' mixed-radix code)
    codes = np.array(list(itertools.product(range(5), repeat=space.dim)))
    accuracy = np.empty(len(codes))
    accuracy[codes @ 5 ** np.arange(space.dim - 1, -1, -1)] = objective.values()[space.index(codes)]
    edges = [(d.name, list(d.options), {op: i for i, op in enumerate(d.options)}) for d in space.decisions]

    def cell_accuracy(trial):
        code = 0
        for name, ops, position in edges:
            code = 5 * code + position[trial.suggest_categorical(name, ops)]
        return float(accuracy[code])

    ours = [run(space, objective, GPSearch(), budget=TRIALS, seed=s).best_metrics["test.cifar10"] for s in SEEDS]
    sampler = [study_of(NasLabSampler("gp", seed=s), cell_accuracy, TRIALS).best_value for s in SEEDS]
    tpe = [study_of(optuna.samplers.TPESampler(seed=s), cell_accuracy, TRIALS).best_value for s in SEEDS]
    (m_ours, se_ours), (m_sampler, se_sampler), (m_tpe, se_tpe) = map(mean_se, (ours, sampler, tpe))
    print(f"mean best test accuracy at {TRIALS} trials over {len(SEEDS)} seeds: NasLabSampler('gp') "
          f"{m_sampler:.3f} ± {se_sampler:.3f}, nas_lab gp {m_ours:.3f} ± {se_ours:.3f}, "
          f"TPE {m_tpe:.3f} ± {se_tpe:.3f}")
    # the same mean best: the two means differ by less than two standard errors of their difference (independent
    # runs, so the difference's SE is the root of the summed squares; two SEs: a two-sided test at about 5 %)
    assert abs(m_sampler - m_ours) <= 2 * np.hypot(se_sampler, se_ours), (m_sampler, m_ours)
    # better than TPE by more than two standard errors of the difference
    assert m_sampler - m_tpe > 2 * np.hypot(se_sampler, se_tpe), (m_sampler, m_tpe)
    assert max(sampler) <= np.nanmax(objective.values())


# -- small studies of a user's own space ------------------------------------------------------------------------------
SPACE = {"optimizer": ["sgd", "adam", "adamw"], "depth": [2, 4, 8, 16], "dropout": [0.0, 0.1, 0.3],
         "norm": [None, "batch", "layer"], "activation": ["relu", "gelu"]}


def score(trial):
    """A made-up validation accuracy with one best configuration (adamw, 8, 0.1, layer, gelu): 100."""
    p = {name: trial.suggest_categorical(name, choices) for name, choices in SPACE.items()}
    return (100.0 - 5 * abs(np.log2(p["depth"]) - 3) - 40 * abs(p["dropout"] - 0.1)
            - {"sgd": 6, "adam": 2, "adamw": 0}[p["optimizer"]] - {None: 4, "batch": 1, "layer": 0}[p["norm"]]
            - 3 * (p["activation"] == "relu"))


def distinct(study):
    return len({tuple(sorted(t.params.items(), key=str)) for t in study.trials})


def test_a_users_own_categorical_space_is_searched_without_wasting_a_trial():
    study = study_of(NasLabSampler("rea", seed=0, population=10), score, 60)
    assert distinct(study) == 60  # 216 configurations: no trial spent on one evaluated already
    assert study.best_value == 100.0
    assert study.best_params == {"optimizer": "adamw", "depth": 8, "dropout": 0.1, "norm": "layer",
                                 "activation": "gelu"}
    searcher = study.sampler.nas_lab_searcher
    assert searcher.space.names == tuple(sorted(SPACE))  # Optuna's relative space is sorted by name
    assert searcher.space.decisions[searcher.space.names.index("norm")].options == (None, "batch", "layer")


def test_the_same_seed_gives_the_same_trials_and_another_seed_others():
    def params(seed):
        return [t.params for t in study_of(NasLabSampler("gp", seed=seed, initial=5, batch=3), score, 20).trials]

    assert params(1) == params(1)
    assert params(1) != params(2)


class Scripted(Searcher):
    """Proposes the batches it is given, one per ask, and keeps what it is told."""

    name = "scripted"
    batches: list = []

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.told = []
        self._left = list(self.batches)

    def ask(self, n):
        return np.array(self._left.pop(0), dtype=np.int64) if self._left else np.empty((0, self.space.dim), np.int64)

    def tell(self, archs, evaluation):
        self.told.append((archs.tolist(), evaluation.values[:, 0].tolist(), evaluation.source.tolist()))


def test_repeats_are_answered_from_the_studys_trials_and_failures_told_as_such():
    searcher = Scripted()
    # options are indices into each parameter's choices; (0, 0) is the enqueued first trial
    searcher.batches = [[[0, 0], [1, 1], [1, 1]], [[2, 2], [0, 0]], [[2, 2], [1, 2]]]
    evaluated = []

    def objective(trial):
        a, b = trial.suggest_categorical("a", [10, 20, 30]), trial.suggest_categorical("b", ["x", "y", "z"])
        evaluated.append((a, b))
        if (a, b) == (30, "z"):
            raise optuna.TrialPruned()
        return a + "xyz".index(b)

    study = optuna.create_study(sampler=NasLabSampler(searcher, seed=0), direction="maximize")
    study.enqueue_trial({"a": 10, "b": "x"})
    with pytest.warns(UserWarning, match="searcher 'scripted' has nothing more to propose"):
        study.optimize(objective, n_trials=5)
    # one trial per distinct arch the searcher asked for; the fifth trial, past its script, is drawn at random
    assert evaluated[:4] == [(10, "x"), (20, "y"), (30, "z"), (20, "z")]
    nan = pytest.approx(float("nan"), nan_ok=True)
    assert searcher.told == [
        ([[0, 0], [1, 1], [1, 1]], [10, 21, 21], [CACHED, EVALUATED, CACHED]),  # (0, 0): the enqueued trial's value
        ([[2, 2], [0, 0]], [nan, 10], [EVALUATED, CACHED]),  # the pruned trial, told as a failed evaluation
        ([[2, 2], [1, 2]], [nan, 22], [CACHED, EVALUATED]),  # asking for it again: the same failure, no trial
    ]


def test_a_multi_objective_study_with_a_multi_objective_searcher():
    def two(trial):
        x = [trial.suggest_categorical(f"x{i}", [0, 1, 2, 3]) for i in range(4)]
        return float(sum(x)), float(sum(v * v for v in x))  # maximise the first, minimise the second

    study = study_of(NasLabSampler("nsga2", seed=0, population=8, offspring=8), two, 40, ("maximize", "minimize"))
    assert distinct(study) == 40
    searcher = study.sampler.nas_lab_searcher
    assert searcher.objective.directions == ("max", "min") and searcher.objective.targets == ("values_0", "values_1")
    assert searcher.report()["generations"] >= 3  # nsga2 was told whole generations, each of two values
    front = {tuple(t.values) for t in study.best_trials}
    assert len(front) >= 3  # several trade-offs, e.g. (s, s*s/4) with the options spread evenly


def test_a_single_objective_searcher_is_refused_on_a_multi_objective_study():
    study = optuna.create_study(sampler=NasLabSampler("gp"), directions=["maximize", "minimize"])
    with pytest.raises(UserError, match="searcher .gp. is single-objective, but the study has 2 objectives"):
        study.optimize(lambda t: (t.suggest_categorical("a", [1, 2]), 0.0), n_trials=1)


@pytest.mark.parametrize("suggest", [lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True),
                                     lambda t: t.suggest_int("lr", 1, 8)])
def test_a_non_categorical_parameter_is_refused_in_one_sentence(suggest):
    study = optuna.create_study(sampler=NasLabSampler("gp"))
    with pytest.raises(UserError, match=r"^parameter 'lr' is not categorical \((Float|Int)Distribution\), but "
                                        r"NasLabSampler searches categorical parameters only"):
        study.optimize(lambda t: suggest(t), n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


def test_searcher_settings_are_checked_by_their_declarations():
    with pytest.raises(UserError, match="searcher.batch must lie in 1..10,000, got 0"):
        NasLabSampler("gp", batch=0)
    with pytest.raises(UserError, match="unknown searcher 'nope'"):
        NasLabSampler("nope")
    with pytest.raises(UserError, match="has no parameter colour"):
        NasLabSampler("rea", colour=3)
    with pytest.raises(UserError, match="searcher 'darts' needs a space that offers supernet, which a space of "
                                        "categorical parameters does not"):
        NasLabSampler("darts")
    # bounds on the space are checked once the study's parameters are known: gp changes up to 3 decisions
    study = optuna.create_study(sampler=NasLabSampler("gp", mutations=3, initial=2), direction="maximize")
    with pytest.raises(UserError, match="searcher.mutations must lie in 1..2"):
        study.optimize(lambda t: t.suggest_categorical("a", [1, 2]) + t.suggest_categorical("b", [1, 2]), n_trials=3)


def test_importing_nas_lab_imports_neither_optuna_nor_ray_and_the_sampler_no_torch():
    code = ("import sys, nas_lab, nas_lab.integrations\n"
            "assert not {'optuna', 'ray'} & set(sys.modules), 'import nas_lab imported a tool'\n"
            "import nas_lab.integrations.optuna\n"
            "assert 'torch' not in sys.modules, 'the sampler imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
