"""Several targets through the core: tell-back with sources, violation sizes, several metrics in one objective,
fronts and their quality, the study store and report, and the bad inputs of multi-objective runs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SumObjective, untimed
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.constraint import Constrained, Constraint
from nas_lab.core.errors import UserError
from nas_lab.core.fronts import minimisation, true_front
from nas_lab.core.joint import Joint, SpaceMetrics
from nas_lab.core.objective import CACHED, CUT, EVALUATED
from nas_lab.core.runner import run
from nas_lab.core.searcher import Searcher
from nas_lab.searchers.random import RandomSearch
from nas_lab.study.config import StudyConfig, objective_list


class Recorder(Searcher):
    """Asks a fixed list of batches (arch indices) and records every tell."""

    name = "recorder"
    multi_objective = True

    def __init__(self, batches=()):
        self.batches = [list(b) for b in batches]

    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self.told = []
        self.asked = 0

    def ask(self, n):
        batch = self.batches[self.asked % len(self.batches)]
        self.asked += 1
        return self.space.arch(np.array(batch))

    def tell(self, archs, evaluation):
        self.told.append((self.space.index(archs).tolist(), evaluation))


def test_every_asked_arch_is_told_back_in_order_with_its_source(space, sum_objective):
    searcher = Recorder([[1, 2, 1], [2, 3, 4, 5]])
    result = run(space, sum_objective, searcher, budget=4, seed=0)
    assert result.evaluations == 4
    (first, ev1), (second, ev2) = searcher.told
    assert first == [1, 2, 1] and second == [2, 3, 4, 5]
    assert ev1.source.tolist() == [EVALUATED, EVALUATED, CACHED]  # a repeat inside the batch is charged once
    assert ev1.cost.tolist() == [1.0, 1.0, 0.0]
    assert ev2.source.tolist() == [CACHED, EVALUATED, EVALUATED, CUT]  # the budget ran out before arch 5
    assert np.isnan(ev2.values[3]).all() and not ev2.feasible[3]
    assert ev2.values[0, 0] == ev1.values[1, 0]  # the cached answer is the recorded value (exact: a copy)


def test_constraint_violation_is_sized_relative_to_each_bound(space):
    c = Constraint.parse("params<=2e6")
    assert c.violation(np.array([1e6, 2e6, 3e6, np.nan])).tolist() == [0.0, 0.0, 0.5, np.inf]
    # two bounds in different units add up as relative gaps
    objective = build(RunConfig(objective="id", constraints=["params<=2e6", "latency.rpi4<=70"]))[1]
    archs = space.sample(np.random.default_rng(0), 200)
    ev = objective.evaluate(archs, np.random.default_rng(0))
    params, latency = objective.measure("params", archs), objective.measure("latency.rpi4", archs)
    expected = np.maximum(params - 2e6, 0) / 2e6 + np.maximum(latency - 70, 0) / 70
    np.testing.assert_allclose(ev.violation, expected, rtol=1e-12)  # same arithmetic, rounding only
    assert ((ev.violation == 0) == ev.feasible).all()


def test_several_metrics_make_a_joint_objective_with_default_and_given_directions():
    cfg = RunConfig(space="hyvitas", objective="id+ood,latency.agx_orin,params")
    space, objective, _ = build(cfg)
    assert isinstance(objective, Joint)
    assert objective.targets == ("id+ood", "latency.agx_orin", "params")
    assert objective.directions == ("max", "min", "min")
    cfg.params["objective"]["directions"] = "max,max,min"
    assert build(cfg)[1].directions == ("max", "max", "min")
    archs = space.sample(np.random.default_rng(1), 5)
    ev = objective.evaluate(archs, np.random.default_rng(0))
    assert ev.values.shape == (5, 3)
    np.testing.assert_allclose(ev.values[:, 2], space.params(archs))  # the table's params are the closed form


class NoSizes(SumObjective):
    """An objective that knows only its own metric, as a zero-cost or supernet objective without a table."""

    cheap = True

    def measure(self, metric, archs):
        if metric == "sum":
            return archs.sum(axis=1).astype(float)
        raise UserError(f"cannot measure {metric!r}")

    def exhaustive(self):
        archs = self.space.all_archs()
        return archs.sum(axis=1).astype(float)[:, None], np.ones(len(archs), dtype=bool)


def test_closed_form_sizes_are_measured_under_any_objective(space):
    objective = Joint(NoSizes(space), [("flops", SpaceMetrics(space))], ("max", "min"))
    archs = space.sample(np.random.default_rng(2), 4)
    ev = objective.evaluate(archs, np.random.default_rng(0))
    assert ev.values[:, 1].tolist() == space.flops(archs).astype(float).tolist()  # integers, exact
    bounded = Constrained(NoSizes(space), [Constraint.parse("params<=1e6")], {"params": SpaceMetrics(space)})
    ev = bounded.evaluate(archs, np.random.default_rng(0))
    assert ev.feasible.tolist() == (space.params(archs) <= 1e6).tolist()
    with pytest.raises(UserError, match="no closed-form 'latency"):
        SpaceMetrics(space).measure("latency.cpu", archs)


def test_true_front_is_every_feasible_non_dominated_arch(space):
    objective = build(RunConfig(objective="id,params", constraints=["flops<=6e8"]))[1]
    front = true_front(objective)
    values = np.column_stack([objective.measure("id", space.all_archs()), space.params(space.all_archs())])
    feasible = space.flops(space.all_archs()) <= 6e8
    F = minimisation(values[feasible], ("max", "min"))
    expected = np.flatnonzero(feasible)[NonDominatedSorting().do(F, only_non_dominated_front=True)]
    assert sorted(front.index.tolist()) == sorted(expected.tolist())
    ideal, nadir = F[NonDominatedSorting().do(F, only_non_dominated_front=True)].min(0), front.scale.nadir
    norm = (minimisation(values[np.sort(expected)], ("max", "min")) - ideal) / (nadir - ideal)
    assert front.hypervolume == pytest.approx(HV(ref_point=np.ones(2)).do(norm), rel=1e-9)  # same points, same HV


def test_a_random_run_reports_its_front_and_quality(space):
    objective = build(RunConfig(objective="id,params"))[1]
    result = run(space, objective, RandomSearch(), budget=300, seed=3)
    f = result.front
    assert result.best_index is None and f is not None
    F = minimisation(result.history["value"], objective.directions)
    assert sorted(f["index"]) == sorted(
        result.history["index"][NonDominatedSorting().do(F, only_non_dominated_front=True)].tolist())
    first = [v[0] for v in f["values"]]
    assert first == sorted(first, reverse=True)  # best first target first
    assert 0 < f["hypervolume"] <= f["true_hypervolume"]
    assert 0 <= f["recovered"] <= 1 and f["igd"] >= 0
    curve = np.array(f["curve"])
    assert curve[-1, 0] == 300 and curve[-1, 1] == pytest.approx(f["hypervolume"], rel=1e-12)
    assert (np.diff(curve[:, 1]) >= -1e-12).all()  # a front only improves as archs are added
    again = run(space, objective, RandomSearch(), budget=300, seed=3)
    assert untimed(again.to_record()) == untimed(result.to_record())


def test_run_json_carries_front_hypervolume_and_reference(capsys):
    assert main(["run", "objective=id+ood,latency.agx_orin", "searcher=random", "budget=200", "--json",
                 "--no-save"]) == 0
    front = json.loads(capsys.readouterr().out)["front"]
    assert {"index", "archs", "values", "hypervolume", "igd", "scale", "true_front"} <= set(front)
    assert len(front["index"]) == len(front["archs"]) == len(front["values"]) and len(front["values"][0]) == 2
    assert front["scale"]["source"] == "true front" and len(front["scale"]["reference"]) == 2
    assert len(front["true_front"]) == front["true_size"] and front["hypervolume"] <= front["true_hypervolume"]


def test_run_summary_prints_the_front_shortened(capsys):
    assert main(["run", "objective=id,params", "searcher=random", "budget=500", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "non-dominated architectures" in out and "hypervolume" in out and "true front" in out
    assert "more ..." in out or out.count("  [") <= 12


def test_given_reference_point_is_used_and_must_be_beaten():
    cfg = RunConfig(objective="id,params")
    cfg.params["objective"]["reference"] = "60,3e6"
    objective = build(cfg)[1]
    assert true_front(objective).scale.describe(objective.directions)["reference"] == pytest.approx([60, 3e6])
    cfg.params["objective"]["reference"] = "80,1e5"  # no arch is above 80 % ID with fewer than 0.1 M params
    with pytest.raises(UserError, match="beaten by no feasible"):
        true_front(build(cfg)[1])


@pytest.mark.parametrize("overrides, valid", [
    (["objective=id,nope"], "valid:"),
    (["objective=id,id"], "each metric may appear once"),
    (["objective=id,params", "objective.directions=max"], "one entry per metric (2)"),
    (["objective=id,params", "objective.directions=max,up"], "objective.directions must be one of max, min, got 'up'"),
    (["objective=id,params", "objective.reference=1,2,3"], "one entry per metric (2)"),
    (["objective=id,params", "objective.reference=a,b"], "objective.reference must be a number, got 'a'"),
    (["objective=id,params", "objective.reference=99,1"], "choose a worse point"),
    (["objective=id,params", "searcher=rea"], "single-objective"),
    (["objective=id", "objective.reference=1"], "for several metrics"),
])
def test_bad_multi_objective_input_is_one_sentence_and_exit_2(overrides, valid, capsys):
    assert main(["run", "searcher=random", "budget=20", "--no-save", *overrides]) == 2
    err = capsys.readouterr().err
    assert valid in err and "Traceback" not in err and err.count("\n") == 1


def test_study_objectives_with_several_metrics_are_lists():
    assert objective_list("[a,b],[c, d ,e]", "test") == ["a,b", "c,d,e"]
    assert objective_list("[a,b]", "test") == ["a,b"]
    assert objective_list("id,id+ood", "test") == ["id", "id+ood"]
    for bad in ("[a,b", "a]", "[a,[b]]", "[a]x"):
        with pytest.raises(UserError, match="is not a list|each objective is a metric name or a list"):
            objective_list(bad, "test")
    base = {"name": "t", "searchers": {"random": {}}, "repeats": 2, "budget": 10}
    study = StudyConfig.from_dict({**base, "objectives": [["id", "params"]]}, {})
    assert study.objectives == ["id,params"] and study.to_dict()["objectives"] == [["id", "params"]]
    with pytest.raises(UserError, match="ambiguous"):
        StudyConfig.from_dict({**base, "objectives": ["id,params"]}, {})
    with pytest.raises(UserError, match="mix single metrics"):
        StudyConfig.from_dict({**base, "objectives": ["id", ["id", "params"]]}, {})
    overridden = StudyConfig.from_dict({**base, "objectives": ["id"]}, {"objectives": "[id,params],[id+ood,flops]"})
    assert overridden.objectives == ["id,params", "id+ood,flops"]


def test_multi_objective_study_stores_every_target_and_reports_front_quality(tmp_path):
    config = tmp_path / "mo.yaml"
    config.write_text(yaml.safe_dump({"name": "mo", "space": "hyvitas", "budget": 60, "repeats": 3, "seed": 0,
                                      "objectives": [["id", "latency.rpi4"]], "searchers": {"random": {}}}))
    out = tmp_path / "study"
    done = subprocess.run([sys.executable, "-m", "nas_lab.cli.main", "study", str(config), f"out={out}",
                           "workers=1", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(records) == 3
    r = records[0]
    assert len(r["history"]["value"][0]) == 2 and r["targets"] == ["id", "latency.rpi4"]
    assert (r["front"]["scale"]["source"] == "true front"
            and 0 < r["front"]["hypervolume"] <= r["front"]["true_hypervolume"])
    report = (out / "report.md").read_text()
    assert "Hypervolume" in report and "True front" in report and "| 3 |" in report
    hv = np.mean([x["front"]["hypervolume"] for x in records])
    assert f"{hv:.4f}" in report  # the table's mean is the runs' mean
    assert (out / "hypervolume.png").stat().st_size > 0 and (out / "fronts_1.png").stat().st_size > 0


def test_untabulated_runs_share_one_reference_in_the_report(space):
    from nas_lab.study.pareto import _shared_hypervolumes

    def run_of(key, values):  # the fields _shared_hypervolumes reads of a recorded run
        return type("Run", (), {"config": {"objective": "sum,params", "budget": 9, "study": {"key": key, "label": "s"}},
                                "directions": ("max", "min"),
                                "front": {"hypervolume": 9.0, "scale": {"source": "run"}, "values": values}})

    class Study:
        class config:
            objectives = ["sum,params"]
        records = [run_of("a", [[10.0, 1.0], [5.0, 0.5]]), run_of("b", [[8.0, 2.0]])]
    hv = _shared_hypervolumes(Study)
    # shared reference (-5, 2) in minimisation form: run a covers (-10..-5)x(1..2) and (-5..)x.. = 5*1 + 0; run b 0
    assert hv == {"a": pytest.approx(5.0, rel=1e-12), "b": pytest.approx(0.0, abs=1e-12)}


def test_zero_cost_objective_takes_more_metrics_and_closed_form_sizes(tmp_path):
    from nas_lab.spaces.nb201 import NB201Space

    cfg = RunConfig(space="nb201", objective="zc.params,params,zc.naswot")
    cfg.params["objective"].update(cache=str(tmp_path / "zc.sqlite"), batch_size=8)
    space, objective, _ = build(cfg)
    assert isinstance(objective.extras[0][1], SpaceMetrics)  # no table here: the space's closed form
    assert objective.directions == ("max", "min", "max")
    archs = NB201Space().sample(np.random.default_rng(0), 3)
    values = objective.evaluate(archs, np.random.default_rng(0)).values
    # the params proxy counts the built network's parameters: it ranks archs as the closed form does
    assert np.argsort(values[:, 0]).tolist() == np.argsort(values[:, 1]).tolist()
    assert np.isfinite(values[:, 2]).all()


def test_supernet_objective_says_what_it_measures_without_training(space):
    from nas_lab.objectives.supernet import SupernetObjective

    objective = SupernetObjective(space, "id")
    assert objective.can_measure("supernet.ood") and objective.can_measure("params")  # own metric; table's params
    assert not objective.can_measure("latency.nowhere")
    assert objective._ready is None  # nothing was trained to answer



def test_a_searcher_may_run_at_some_budgets_only():
    study = StudyConfig.from_dict({"name": "t", "budget": [10, 20], "repeats": 2, "objectives": ["id"],
                                   "searchers": {"random": {}, "rea": {"budgets": [20], "repeats": 1}}}, {})
    cells = [(s.searcher, s.budget) for s in study.runs()]
    assert cells.count(("random", 10)) == cells.count(("random", 20)) == 2 and cells.count(("rea", 20)) == 1
    assert ("rea", 10) not in cells and study.size() == len(cells) == 5
    assert all("budgets" not in dict(s.searcher_params) for s in study.runs())
    with pytest.raises(UserError, match="whole number"):
        StudyConfig.from_dict({"name": "t", "objectives": ["id"], "searchers": {"rea": {"budgets": ["x"]}}}, {})


@pytest.mark.parametrize("space, objective", [("nb201", "test.cifar10,params"), ("hyvitas", "id,params"),
                                              ("vitas", "zc.params,params")])
def test_a_reference_whose_hypervolume_would_overflow_is_refused_before_the_search(capsys, monkeypatch, space,
                                                                                    objective):
    """It printed "hypervolume inf of the true front's inf (nan%)" after the whole search."""
    from nas_lab.core import runner

    table = ["table=/work/shared/data"] if space == "nb201" else []
    if table and not Path("/work/shared/data").is_dir():
        pytest.skip("the NB201 data is not here")
    monkeypatch.setattr(runner.History, "__init__", lambda *a, **k: pytest.fail("the search started"))
    assert main(["run", f"space={space}", *table, "searcher=nsga2", f"objective={objective}",
                 "objective.reference=-1e308,1e308", "budget=5", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "objective.reference=-1e+308,1e+308 spans a hypervolume too large for a floating-point number" in err
