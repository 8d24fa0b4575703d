"""Constraints wrap any objective: infeasible archs cost their evaluation but are never best."""

import numpy as np
import pytest
from test_cli_bad_input import refused

from nas_lab.cli.main import main
from nas_lab.core import registry
from nas_lab.core.config import RunConfig, build, split_objective
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


@pytest.mark.parametrize("text", ["latency.rtx4090", "params<=big", "<=5", "params=<5", "params<=nan"])
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


# -- bounds no architecture meets: refused before anything is evaluated ---------------------------------------------


@pytest.mark.parametrize("space, bounds, sentence", [
    ("nb201", "params<=1e3", "constraint params<=1000 leaves no architecture of space 'nb201': params runs from "
                             "7.331e+04 to 1.532e+06; choose a bound within that range"),
    ("nb201", "params>=1e7", "constraint params>=1e+07 leaves no architecture of space 'nb201': params runs from "
                             "7.331e+04 to 1.532e+06; choose a bound within that range"),
    ("nb201", "test.cifar10>=101", "constraint test.cifar10>=101 leaves no architecture of space 'nb201': "
                                   "test.cifar10 runs from 10 to 94.37; choose a bound within that range"),
    ("nb201", "params<=2e5,params>=1e6", "constraints params>=1e+06 and params<=200000 exclude each other, so no "
                                         "architecture of space 'nb201' meets both; params runs from 7.331e+04 to "
                                         "1.532e+06"),
    ("nb201", "params<1e6,params>1e6", "constraints params>1e+06 and params<1e+06 exclude each other"),
    ("nb201", "latency.pixel3<=1,latency.pixel3>=2", "constraints latency.pixel3>=2 and latency.pixel3<=1 exclude each "
                                                     "other, so no architecture of space 'nb201' meets both; "
                                                     "latency.pixel3 runs from 0.003277 to 36.77"),
    ("hyvitas", "params<=1e3", "constraint params<=1000 leaves no architecture of space 'hyvitas': params runs from "
                               "4.989e+05 to 4.037e+06; choose a bound within that range"),
    ("hyvitas", "flops>=1e10", "constraint flops>=1e+10 leaves no architecture of space 'hyvitas': flops runs from"),
])
def test_a_bound_no_architecture_meets_is_refused_before_the_run(capsys, shared_data, space, bounds, sentence):
    """Each metric's bounds together, against the space's reach (a table's min and max, closed-form sizes
    enumerated): exit 2, one sentence naming the reachable range, nothing evaluated."""
    table = [f"table={shared_data}", "objective=test.cifar10"] if space == "nb201" else []
    refused(capsys, "run", f"space={space}", *table, f"constraint={bounds}", "--no-save", valid=(sentence,))


def test_closed_form_extents_of_large_spaces(capsys):
    """Past enumeration: the space's exact lowest (poolvit) or its bound on the largest (autovit)."""
    refused(capsys, "run", "space=poolvit", "objective=zc.params", "constraint=params>=1e12", "--no-save",
            valid=("constraint params>=1e+12 leaves no architecture of space 'poolvit': params runs from 1120 to",))
    refused(capsys, "run", "space=autovit", "objective=zc.params", "constraint=params>=1e12", "--no-save",
            valid=("constraint params>=1e+12 leaves no architecture of space 'autovit-xxs': the largest has at most "
                   "params 4.31439e+06; give a bound below it",))


def test_a_study_with_an_unreachable_bound_runs_nothing(capsys, study, tmp_path):
    out = tmp_path / "out"
    refused(capsys, "study", study("constraints: [params<=1e6, params>=2e6]"), f"out={out}", "--no-progress",
            valid=("constraints params>=2e+06 and params<=1e+06 exclude each other, so no architecture of space "
                   "'hyvitas' meets both; params runs from 4.989e+05 to 4.037e+06",))
    assert not list(out.rglob("runs.jsonl"))


def test_a_bound_only_evaluation_can_check_is_named_when_nothing_was_feasible(capsys):
    """A zero-cost proxy's reach is unknown before the run: the summary says the bound could not be checked."""
    assert main(["run", "space=nb201", "objective=zc.params", "budget=3", "constraint=zc.params>=1e12",
                 "--no-save", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ("best       none: no evaluated architecture was feasible with a finite value; bound zc.params>=1e+12 "
            "could not be checked before the run (only evaluating tells which values the space reaches)") in out
