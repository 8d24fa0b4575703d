"""A searcher that tries to learn the target without being charged: every public route through the objective the
runner hands it is closed (``core.charged``), while free, non-target metrics stay readable, on NB201's real table
under ``test.cifar10>=94.2`` (the bound on the target that once leaked through coarse-to-fine)."""

import numpy as np
import pytest

from nas_lab.core.charged import Uncharged
from nas_lab.core.config import RunConfig, build_problem
from nas_lab.core.runner import run
from nas_lab.core.searcher import Searcher, cheap_bounds, within


class Cheater(Searcher):
    """Tries, at ``reset`` and after each ``tell``, every way to read an arch's target or a charged metric for free;
    records what it was refused and what it could read. Proposes random archs."""

    name = "cheater"

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.refused, self.read = [], {}
        some = space.sample(rng, 50)
        attempts = {
            "evaluate": lambda: objective.evaluate(some, rng),
            "measure target": lambda: objective.measure("test.cifar10", some),
            "measurer of target": lambda: objective.measurer("test.cifar10").measure("test.cifar10", some),
            "target through the params measurer": lambda: objective.measurer("params").measure("test.cifar10", some),
            "charged non-target": lambda: objective.measure("test.cifar100", some),
            "table": lambda: objective.table_values("test.cifar10"),
            "exhaustive": lambda: objective.exhaustive(),
            "report": lambda: objective.report(some),
            "extent of target": lambda: objective.extent("test.cifar10"),
        }
        for what, attempt in attempts.items():
            with pytest.raises(Uncharged, match="searchers propose archs with ask and learn their values from tell"):
                attempt()
            self.refused.append(what)
        self.bounds = [str(c) for c, _ in cheap_bounds(space, objective)]
        self.read["params"] = objective.measure("params", some)  # free and not a target
        self.read["within"] = within(cheap_bounds(space, objective), some)
        self.told = np.empty((0, space.dim), dtype=np.int64)

    def ask(self, n):
        return self.space.sample(self.rng, min(n, 10))

    def tell(self, archs, evaluation):
        self.told = np.concatenate([self.told, archs])
        self.read["cifar100 of evaluated"] = self.objective.measure("test.cifar100", self.told)  # charged already
        with pytest.raises(Uncharged):
            self.objective.measure("test.cifar100", np.concatenate([self.told, self.space.sample(self.rng, 20)]))


def test_a_cheating_searcher_learns_nothing_uncharged(shared_data):
    cfg = RunConfig(space="nb201", objective="test.cifar10", constraints=["test.cifar10>=94.2", "params<=1e6"])
    cfg.params["objective"]["table"] = str(shared_data)
    space, objective = build_problem(cfg)
    cheater = Cheater()
    result = run(space, objective, cheater, budget=30, seed=3)
    assert len(cheater.refused) == 9
    assert cheater.bounds == ["params<=1e+06"]  # the bound on the target is checked after evaluation, never before
    some = space.sample(np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0]), 50)
    np.testing.assert_array_equal(cheater.read["params"], space.params(some))
    np.testing.assert_array_equal(cheater.read["within"], space.params(some) <= 1e6)
    archs = space.arch(result.history["index"])
    np.testing.assert_array_equal(cheater.read["cifar100 of evaluated"], objective.measure("test.cifar100", archs))
    assert result.evaluations == 30
