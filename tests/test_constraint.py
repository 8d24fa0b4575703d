"""Constraints wrap any objective: infeasible archs cost their evaluation but are never best."""

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.constraint import Constraint
from nas_lab.core.errors import UserError
from nas_lab.core.runner import run


def constrained(*overrides):
    return build(RunConfig().apply(list(overrides)))


def test_parse_and_hold():
    c = Constraint.parse("latency.rtx4090 <= 0.95")
    assert (c.metric, c.op, c.bound) == ("latency.rtx4090", "<=", 0.95)
    assert c.holds(np.array([0.9, 0.95, 1.0, np.nan])).tolist() == [True, True, False, False]
    assert Constraint.parse("params>1e6").holds(np.array([2e6, 1e6])).tolist() == [True, False]


@pytest.mark.parametrize("text", ["latency.rtx4090", "params<=big", "<=5", "params=<5"])
def test_malformed_constraints_are_refused(text):
    with pytest.raises(UserError, match="is not METRIC<=NUMBER"):
        Constraint.parse(text)


def test_exhaustive_search_finds_the_best_feasible_arch_and_pays_for_infeasible_ones():
    space, objective, searcher = constrained("searcher=random", "constraint=latency.rtx4090<=0.95,params<=2e6")
    result = run(space, objective, searcher, budget=space.cardinality, seed=0)
    latency = objective.measure("latency.rtx4090", space.all_archs())
    params = objective.measure("params", space.all_archs())
    ids = objective.measure("id", space.all_archs())
    feasible = (latency <= 0.95) & (params <= 2e6)
    assert 0 < feasible.sum() < space.cardinality
    assert result.best_metrics["id"] == pytest.approx(ids[feasible].max())
    assert result.best_metrics["latency.rtx4090"] <= 0.95 and result.best_metrics["params"] <= 2e6
    assert ids.max() > ids[feasible].max()  # the constraint really bites
    assert result.evaluations == space.cardinality
    assert result.history["feasible"].sum() == feasible.sum()
    assert result.total_cost == pytest.approx(objective.inner.table.columns["train.hours"].sum())


def test_rea_under_a_constraint_reports_only_feasible_bests():
    space, objective, searcher = constrained("constraint=latency.rtx4090<=0.95")
    for seed in range(20):
        result = run(space, objective, searcher, budget=100, seed=seed)
        assert result.best_metrics["latency.rtx4090"] <= 0.95


@pytest.mark.parametrize("value, message", [
    ("latency.nowhere<=3", "has no metric 'latency.nowhere'"),
    ("latency.rtx4090", "is not METRIC<=NUMBER"),
])
def test_bad_constraints_on_the_command_line(capsys, value, message):
    assert main(["run", f"constraint={value}", "--no-save"]) == 2
    assert message in capsys.readouterr().err
