"""Constraints wrap any objective: infeasible archs cost their evaluation but are never best."""

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core import registry
from nas_lab.core.config import split_objective
from nas_lab.core.constraint import Constraint
from nas_lab.core.errors import UserError
from nas_lab.core.joint import SpaceMetrics
from nas_lab.core.runner import run
from nas_lab.core.searcher import cheap_bounds


def constrained(*overrides):
    return build(RunConfig().apply(list(overrides)))


def test_parse_and_hold():
    c = Constraint.parse("latency.rtx4090 <= 0.95")
    assert (c.metric, c.op, c.bound) == ("latency.rtx4090", "<=", 0.95)
    assert c.holds(np.array([0.9, 0.95, 1.0, np.nan])).tolist() == [True, True, False, False]
    assert Constraint.parse("params>1e6").holds(np.array([2e6, 1e6])).tolist() == [True, False]


@pytest.mark.parametrize("text", ["latency.rtx4090", "params<=big", "<=5", "params=<5", "params<=nan", "params<=inf",
                                  "params>=-inf"])
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


def test_free_bounds_are_the_non_target_metrics_that_cost_nothing():
    """Of a run's bounds, a searcher may check for free only those on a metric that is not a target and costs nothing
    to measure: closed-form ``params`` and a table's measured ``latency.<device>``; never a target (even a free one),
    never an accuracy (``ood``: what a training would tell), never a component of the target."""
    space, objective, _ = constrained("objective=id+ood,latency.rtx4090", "constraint=latency.rtx4090<=1.1,"
                                      "latency.rpi5<=60,params<=2e6,ood>=20,id>=50")
    assert [str(c) for c in objective.constraints] == ["latency.rtx4090<=1.1", "latency.rpi5<=60", "params<=2e+06",
                                                       "ood>=20", "id>=50"]
    free = cheap_bounds(space, objective)
    assert [str(c) for c, _ in free] == ["latency.rpi5<=60", "params<=2e+06"]
    assert isinstance(free[1][1], SpaceMetrics) and free[0][1].family == "tabular"
    assert objective.family == "tabular"
    _, plain, _ = constrained("objective=id")
    assert plain.constraints == () and cheap_bounds(space, plain) == []


def test_each_family_names_itself_and_claims_its_metrics():
    """A registered objective's ``family`` is its registered name; ``claims`` splits ``latency.lut`` (the latency
    family's) from ``latency.pixel3`` (a benchmark table's column)."""
    for name in registry.names("objective"):
        assert registry.load("objective", name).family == name
    assert split_objective("latency.lut") == ("latency", "lut")
    assert split_objective("latency.pixel3") == ("tabular", "latency.pixel3")
    assert split_objective("zc.naswot") == ("zc", "naswot") and split_objective("id") == ("tabular", "id")
