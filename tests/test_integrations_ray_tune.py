"""nas_lab's searchers inside Ray Tune: NasLabSearch over tune.choice entries, in a small local Tuner.

Skipped only when ray[tune] is not installed (it is the ``tune`` extra).
"""

import numpy as np
import pytest

tune = pytest.importorskip("ray.tune", reason="ray[tune] is not installed (pip install nas-lab[tune])")

from nas_lab.core.errors import UserError  # noqa: E402
from nas_lab.core.objective import CACHED, EVALUATED  # noqa: E402
from nas_lab.integrations.ray_tune import NasLabSearch  # noqa: E402

SPACE = {"width": tune.choice([16, 32, 64, 128]), "depth": tune.choice([1, 2, 3]),
         "head": {"dropout": tune.choice([0.0, 0.5])}, "epochs": 3}


def trainable_of():
    """The trainable, made inside a function so that Ray's workers get it by value (they cannot import tests/)."""

    def trainable(config):
        # a made-up accuracy, best (80) at width 64, depth 2, dropout 0.5
        accuracy = (80.0 - 4 * abs(np.log2(config["width"]) - 6) - 6 * abs(config["depth"] - 2)
                    - 3 * (config["head"]["dropout"] == 0.0))
        tune.report({"accuracy": accuracy, "epochs": config["epochs"]})

    return trainable


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_a_local_tuner_with_gp_searches_the_choices_without_repeats(ray_session, tmp_path):
    search = NasLabSearch("gp", seed=0, initial=6, batch=3)
    tuner = tune.Tuner(trainable_of(), param_space=SPACE,
                       tune_config=tune.TuneConfig(search_alg=search, num_samples=20, metric="accuracy", mode="max",
                                                   reuse_actors=True, max_concurrent_trials=1),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    frame = results.get_dataframe()
    assert not results.errors, results.errors
    assert len(frame) == 20
    configs = frame[["config/width", "config/depth", "config/head/dropout"]].apply(tuple, axis=1)
    assert configs.nunique() == 20  # 24 configurations: no trial spent twice on one
    assert (frame["config/epochs"] == 3).all()  # entries that are not searched pass through
    assert results.get_best_result().metrics["accuracy"] == 80.0
    gp = search.nas_lab_searcher
    assert gp.space.names == ("width", "depth", "head/dropout")
    assert sum(len(a) for a in gp._archs) >= 18  # told every finished batch: 6 random, then batches of 3


def test_suggest_and_complete_answer_repeats_and_failures_and_survive_save_and_restore(tmp_path):
    """The search algorithm driven by hand, as Tune drives it: a trial that errors is a failed evaluation."""
    search = NasLabSearch("random", space={"a": tune.choice(["x", "y"]), "b": tune.choice([1, 2]), "c": 5},
                          metric="loss", mode="min", seed=0)
    first = search.suggest("t1")
    assert set(first) == {"a", "b"}  # Tune adds the entries that are not searched (c) itself
    assert first["a"] in ("x", "y") and first["b"] in (1, 2)
    search.on_trial_complete("t1", error=True)
    second = search.suggest("t2")
    path = tmp_path / "search.pkl"
    search.save(str(path))
    restored = NasLabSearch("random", seed=99)
    restored.restore(str(path))
    for s in (search, restored):
        s.on_trial_complete("t2", {"loss": 0.5})
    rest = [[s.suggest(f"t{i}") for i in (3, 4)] for s in (search, restored)]
    assert rest[0] == rest[1]  # the restored state proposes exactly what the original does
    seen = [first, second, *rest[0]]
    assert len({(c["a"], c["b"]) for c in seen}) == 4  # the whole space, each configuration once
    search.on_trial_complete("t3", {"loss": 0.1})
    search.on_trial_complete("t4", {"loss": 0.2})
    assert search.suggest("t5") == NasLabSearch.FINISHED  # random search has proposed every configuration


@pytest.mark.parametrize("entry, kind", [(tune.uniform(0, 1), "Float"), (tune.randint(1, 9), "Integer"),
                                         (tune.grid_search([1, 2]), "grid_search")])
def test_other_entries_are_refused_in_one_sentence(entry, kind):
    with pytest.raises(UserError, match=f"entry 'lr' is not a tune.choice \\((tune.)?{kind}.*NasLabSearch "
                                        "searches tune.choice entries only"):
        NasLabSearch("gp", space={"lr": entry, "a": tune.choice([1, 2])}, metric="loss", mode="min")


def test_a_multi_objective_search_needs_a_multi_objective_searcher():
    space = {"a": tune.choice([1, 2, 3]), "b": tune.choice([1, 2, 3]), "c": tune.choice([1, 2])}
    with pytest.raises(UserError, match="optimises 2 metrics but searcher 'gp' is single-objective"):
        NasLabSearch("gp", space=space, metric=["acc", "size"], mode=["max", "min"]).suggest("t1")
    search = NasLabSearch("nsga2", space=space, metric=["acc", "size"], mode=["max", "min"], population=4, seed=0)
    config = search.suggest("t1")
    assert set(config) == {"a", "b", "c"} and search.nas_lab_searcher.objective.directions == ("max", "min")


def test_a_repeat_in_a_batch_is_evaluated_once_and_an_errored_trial_is_a_failure():
    from nas_lab.core.searcher import Searcher

    class Twice(Searcher):
        """Asks for one batch, [q, q, p], and keeps what it is told."""

        name = "twice"

        def reset(self, space, objective, rng):
            super().reset(space, objective, rng)
            self.told = []

        def ask(self, n):
            return np.array([[1], [1], [0]]) if not self.told else np.empty((0, 1), dtype=np.int64)

        def tell(self, archs, evaluation):
            self.told.append((archs[:, 0].tolist(), evaluation.values[:, 0].tolist(), evaluation.source.tolist()))

    twice = Twice()
    search = NasLabSearch(twice, space={"a": tune.choice(["p", "q"])}, metric="m", mode="max")
    assert search.suggest("t1") == {"a": "q"}
    assert search.suggest("t2") == {"a": "p"}  # the second q waits on t1's result instead of taking a trial
    assert search.suggest("t3") is None  # the whole batch is out in running trials: Tune asks again later
    search.on_trial_complete("t2", error=True)
    search.on_trial_complete("t1", {"m": 3.0})
    nan = pytest.approx(float("nan"), nan_ok=True)
    assert twice.told == [([1, 1, 0], [3.0, 3.0, nan], [EVALUATED, CACHED, EVALUATED])]
    assert search.suggest("t3") == NasLabSearch.FINISHED
