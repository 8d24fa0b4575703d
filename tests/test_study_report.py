"""Study report and plots, on a small real study (random and REA, ID and ID+OoD, 5 repeats of 30 evaluations);
reports from run records alone (the benchmark table moved away); records of an older nas_lab refused."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.registry import create
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import run_chunk, run_study
from nas_lab.study.plots import incumbent_curves
from nas_lab.study.report import write_report
from nas_lab.study.results import cell_of
from nas_lab.study.store import RUNS_FILE, Store, key_of

COLUMNS = ("id", "ood.c1", "ood.c5", "ood.sketch", "ood.stylized")
LABELS = ("ID top-1", "RedIN-C 1", "RedIN-C 5", "RedIN-Sketch", "RedStylized-IN")


def make_study(directory, repeats=5):
    return run_grid(directory, StudyConfig.from_dict({
        "name": "mini", "space": "hyvitas", "budget": 30, "repeats": repeats, "seed": 7,
        "objectives": ["id", "id+ood"],
        "searchers": {"random": {}, "rea": {"population": 10, "tournament": 3}},
    }, {}))


def run_grid(directory, config):
    """Every run of ``config``, recorded in the study folder ``directory`` as ``nas-lab study`` would (in one
    process)."""
    directory.mkdir(parents=True)
    (directory / "study.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    with Store(directory) as store:
        for spec in config.runs():
            store.append(*run_chunk([spec]))
    return directory


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    directory = make_study(tmp_path_factory.mktemp("study") / "mini")
    return directory, write_report(directory)


@pytest.fixture(scope="module")
def every_arch():
    space = create("space", "hyvitas", {})
    return TabularObjective(space, "id").report(space.all_archs())


def test_rows_are_mean_and_std_over_repeats_of_the_found_archs(study, every_arch):
    directory, report = study
    records = list(Store(directory).records())
    csv = pd.read_csv(directory / "report.csv")
    cells = csv[csv["objective"].notna()]
    assert list(zip(cells["objective"], cells["searcher"])) == [
        ("id", "random"), ("id", "rea"), ("id+ood", "random"), ("id+ood", "rea")]
    assert list(cells["row"]) == ["Random search (ID top-1)", "REA (ID top-1)", "Random search (ID+OoD)",
                                  "REA (ID+OoD)"]
    assert list(cells["runs"]) == [5, 5, 5, 5]
    for _, row in cells.iterrows():
        runs = [r for r in records if cell_of(r) == (row["objective"], row["budget"], row["searcher"])]
        for m in COLUMNS:
            found = np.array([r.best_metrics[m] for r in runs])
            assert row[f"{m}_mean"] == pytest.approx(np.mean(found), abs=1e-9)
            assert row[f"{m}_std"] == pytest.approx(np.std(found, ddof=1), abs=1e-9)
            assert f"{np.mean(found):.2f} ± {np.std(found, ddof=1):.2f}" in report.markdown
    assert (cells["id_mean"] > every_arch["id"].mean() + 2).all()  # searching beats the average arch


def test_optimum_and_space_mean_rows_come_from_the_whole_table(study, every_arch):
    directory, report = study
    csv = pd.read_csv(directory / "report.csv").set_index("row")
    for m in COLUMNS:
        assert csv.loc["Optimum", f"{m}_mean"] == pytest.approx(every_arch[m].max())
        assert np.isnan(csv.loc["Optimum", f"{m}_std"])
        assert csv.loc["Search space mean", f"{m}_mean"] == pytest.approx(every_arch[m].mean())
        assert csv.loc["Search space mean", f"{m}_std"] == pytest.approx(every_arch[m].std())
    # each column's own optimum: the best-ID arch is not the best on every OoD set
    best_id = np.argmax(every_arch["id"])
    assert any(every_arch[m][best_id] < every_arch[m].max() for m in COLUMNS[1:])
    assert "| Optimum | 73.66 |" in report.markdown


def test_report_files_header_and_formats(study):
    directory, report = study
    names = ["report.md", "report.csv", "report.tex", "anytime.png", "anytime.pdf", "id_vs_ood.png", "id_vs_ood.pdf"]
    assert sorted(p.name for p in report.paths) == sorted(names)
    for name in names:
        assert (directory / name).stat().st_size > 0
    assert (directory / "anytime.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (directory / "id_vs_ood.pdf").read_bytes()[:5] == b"%PDF-"
    md = (directory / "report.md").read_text()
    assert md == report.markdown
    assert "# Study mini" in md
    assert "space hyvitas, table hyvitas-sim (SIMULATED" in md and "budget 30 evaluations, 5 repeats" in md
    assert "| Method | " + " | ".join(LABELS) + " | runs |" in md
    assert "partial" not in md
    assert md.count("\n| ") == 2 + 4 + 2  # header, rule, 4 searcher rows, Optimum, Search space mean
    assert "Plots: anytime.png, anytime.pdf, id_vs_ood.png, id_vs_ood.pdf" in md
    tex = (directory / "report.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and tex.count(r"\midrule") == 3
    assert r"REA (ID+OoD) & " in tex and r" $\pm$ " in tex and "SIMULATED" in tex
    assert len(pd.read_csv(directory / "report.csv")) == 6


def test_partial_study_says_how_many_runs_finished(study, tmp_path):
    directory, _ = study
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(directory / "study.yaml", partial / "study.yaml")
    records = list(Store(directory).records())
    kept = [r for r in records if key_of(r) != "random|id+ood|30|3" and not key_of(r).startswith("rea|id+ood|30|")]
    (partial / RUNS_FILE).write_text("".join(json.dumps(r.to_record()) + "\n" for r in kept))
    report = write_report(partial)
    assert "**partial: 14 of 20 runs finished" in report.markdown
    assert "partial: 14 of 20 runs finished" in (partial / "report.tex").read_text()
    assert "| REA (ID+OoD) | — | — | — | — | — | 0 |" in report.markdown
    assert list(pd.read_csv(partial / "report.csv")["runs"].iloc[:4]) == [5, 5, 4, 0]


@pytest.mark.parametrize("case", ["missing", "not a study", "no runs file", "empty runs file"])
def test_nothing_to_report_is_a_user_error(study, tmp_path, case):
    directory, _ = study
    target = tmp_path / "s"
    if case != "missing":
        target.mkdir()
    if case in ("no runs file", "empty runs file"):
        shutil.copy(directory / "study.yaml", target / "study.yaml")
    if case == "empty runs file":
        (target / RUNS_FILE).write_text("")
    with pytest.raises(UserError, match="does not exist|not a study folder|no finished runs"):
        write_report(target)


def test_incumbent_curves_follow_the_runs_own_objective(study, every_arch):
    directory, _ = study
    records = list(Store(directory).records())
    for objective in ("id", "id+ood"):
        runs = [r for r in records if cell_of(r)[0] == objective]
        curves = incumbent_curves(runs, "id", 30)
        assert curves.shape == (10, 30)
        assert curves[:, -1] == pytest.approx([r.best_metrics["id"] for r in runs])
        for r, curve in zip(runs, curves):  # the recorded incumbents' ID is the table's, after every evaluation
            best = np.maximum.accumulate(r.history["value"][:, 0])
            first = [int(np.flatnonzero(r.history["value"][:, 0] == b)[0]) for b in best]
            assert curve == pytest.approx(every_arch["id"][r.history["index"][first]])
        if objective == "id":
            assert (np.diff(curves, axis=1) >= 0).all()
    # under ID+OoD the incumbent's ID can drop: a better ID+OoD arch with lower ID takes over
    assert (np.diff(incumbent_curves([r for r in records if cell_of(r)[0] == "id+ood"], "id", 30)) < 0).any()


def test_incumbent_is_the_first_to_reach_the_best_value(space, sum_objective):
    result = run(space, sum_objective, create("searcher", "random", {}), budget=5, seed=0)
    result.history["value"][:, 0] = [np.nan, 1.0, 3.0, 3.0, 2.0]
    assert result.incumbent_rows().tolist() == [1, 2]
    result.history["feasible"][2] = False  # never the incumbent: the equal value after it is
    assert result.incumbent_rows().tolist() == [1, 3]
    result.directions = ("min",)
    assert result.incumbent_rows().tolist() == [1] and result.best_so_far()[-1] == 1.0
    runs = [type("R", (), {"incumbents": {"evaluation": [2, 3], "metrics": {"id": [11.0, 12.0]}}}),
            type("R", (), {"incumbents": {"evaluation": [1, 5], "metrics": {"id": [20.0, 24.0]}}})]
    curves = incumbent_curves(runs, "id", 6)  # budget 6: a run that stopped early keeps its incumbent
    np.testing.assert_array_equal(curves, [[np.nan, 11, 12, 12, 12, 12], [20, 20, 20, 20, 24, 24]])


def _small_study(directory, data):
    """Run a small study config (a dict) into ``directory`` and report it."""
    config = StudyConfig.from_dict({"name": "cols", "space": "hyvitas", "budget": 8, "repeats": 2, "seed": 3, **data},
                                   {})
    return write_report(run_grid(directory, config))


def test_report_key_chooses_the_columns_and_their_order(tmp_path, every_arch):
    space = create("space", "hyvitas", {})
    report = _small_study(tmp_path / "s", {"objectives": ["id"], "searchers": {"random": {}},
                                           "constraints": ["params<=3e6"], "report": ["ood.c5", "params", "id"]})
    csv = pd.read_csv(tmp_path / "s" / "report.csv").set_index("row")
    assert [c for c in csv.columns if c.endswith("_mean")] == ["ood.c5_mean", "params_mean", "id_mean"]
    assert "| Method | RedIN-C 5 | params | ID top-1 | runs |" in report.markdown
    records = list(Store(tmp_path / "s").records())
    assert csv.loc["Random search (ID top-1)", "params_mean"] == pytest.approx(
        np.mean([r.best_metrics["params"] for r in records]), rel=1e-12)  # the recorded values, averaged
    found = [r.best_metrics["params"] for r in records]
    assert f"| {np.mean(found):,.0f} ± {np.std(found, ddof=1):,.0f} |" in report.markdown  # counts, not decimals
    assert csv.loc["Optimum", "id_mean"] == pytest.approx(every_arch["id"].max())
    all_params = TabularObjective(space, "params").values()
    assert csv.loc["Optimum", "params_mean"] == pytest.approx(all_params.min())  # a metric to minimise: its least


def test_report_column_the_runs_lack_is_measured_by_their_objective_as_they_run(tmp_path):
    cache = str(tmp_path / "zc.sqlite")
    params = {"cache": cache, "resolution": 32, "batch_size": 2}
    report = _small_study(tmp_path / "s", {"budget": 3, "repeats": 1, "objectives": ["zc.params"],
                                           "searchers": {"random": {}}, "objective_params": params,
                                           "report": ["zc.params", "zc.synflow"]})
    (record,) = Store(tmp_path / "s").records()
    assert record.targets == ("zc.params",)  # the run searched zc.params only, and recorded zc.synflow too
    cfg = RunConfig(space="hyvitas", objective="zc.synflow")
    for key, value in params.items():
        cfg.set(f"objective.{key}", str(value))
    space, objective, _ = build(cfg)
    expected = objective.measure("zc.synflow", space.from_values(record.best_arch)[None])[0]
    assert record.best_metrics["zc.synflow"] == pytest.approx(expected, rel=1e-9)  # read back from the same cache
    csv = pd.read_csv(tmp_path / "s" / "report.csv")
    assert csv.loc[0, "zc.synflow_mean"] == pytest.approx(expected, rel=1e-9)
    assert "no benchmark table holds the reported columns" in report.markdown


def test_report_column_no_one_gives_is_refused_before_any_run(tmp_path, study):
    """Refused when the config is read, not after a long study; a finished study's edited study.yaml too."""
    data = {"name": "x", "objectives": ["id"], "searchers": {"random": {}}, "report": ["id", "test.cifar10"]}
    with pytest.raises(UserError, match=r"^report column 'test.cifar10' cannot be given for the random runs: objective "
                                        r"'id' neither records nor measures it"):
        StudyConfig.from_dict(data, {})
    directory, _ = study
    edited = tmp_path / "edited"
    shutil.copytree(directory, edited)
    config = yaml.safe_load((edited / "study.yaml").read_text())
    (edited / "study.yaml").write_text(yaml.safe_dump({**config, "report": ["test.cifar10"]}))
    with pytest.raises(UserError, match="report column 'test.cifar10' cannot be given for the random runs"):
        write_report(edited)


@pytest.mark.parametrize("value, match", [(7, "report column '7' cannot be given"),
                                          ([], "'report' must list at least one value"),
                                          (["id", "id"], "lists id more than once")])
def test_bad_report_key_is_refused(value, match):
    with pytest.raises(UserError, match=match):
        StudyConfig.from_dict({"name": "x", "objectives": ["id"], "searchers": {"random": {}}, "report": value}, {})


def test_report_key_does_not_change_the_grid():
    base = {"name": "x", "objectives": ["id"], "searchers": {"random": {}}}
    assert StudyConfig.from_dict(base, {}).same_grid(StudyConfig.from_dict({**base, "report": ["id"]}, {}))
    assert StudyConfig.from_dict(base, {"report": "id,ood.c1"}).report == ["id", "ood.c1"]


def test_report_works_from_records_alone_with_the_table_gone(tmp_path, shared_data, monkeypatch):
    """Run two small NB201 studies on a copy of the table, move the table away: the report is the same."""
    data = tmp_path / "nb201"
    data.mkdir()
    shutil.copy(shared_data / "nats_bench.csv", data)
    shutil.copytree(shared_data / "help_nasbench201_latency", data / "help_nasbench201_latency")
    base = {"space": "nb201", "table": str(data), "budget": 30, "repeats": 2, "seed": 5}
    studies = {
        "one": {"objectives": ["test.cifar10", "test.cifar100"], "constraints": ["latency.pixel3<=15"],
                "searchers": {"random": {}, "rea": {"population": 10, "tournament": 3}}},
        "several": {"objectives": [["test.cifar10", "latency.pixel3"]], "searchers": {"random": {}}},
    }
    written = {}
    for name, grid in studies.items():
        directory = run_grid(tmp_path / name, StudyConfig.from_dict({"name": name, **base, **grid}, {}))
        report = write_report(directory)
        written[name] = {p.name: p.read_bytes() for p in report.paths if p.suffix in (".md", ".csv", ".tex")}
    assert "| Optimum | 94.37 |" in written["one"]["report.md"].decode()  # from the table, recorded by the runs
    assert "True front (CIFAR-10 test, latency.pixel3)" in written["several"]["report.md"].decode()

    data.rename(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="is neither a built-in table"):  # a new run does need the table
        StudyConfig.from_dict({"name": "x", **base, **studies["one"]}, {})
    monkeypatch.setattr("nas_lab.study.config.build", None)  # a report builds no objective: this would fail
    for name in studies:
        report = write_report(tmp_path / name)
        assert {p.name: p.read_bytes() for p in report.paths if p.suffix in (".md", ".csv", ".tex")} == written[name]
        assert all(p.stat().st_size > 0 for p in report.paths)


def test_records_of_an_older_nas_lab_are_refused_in_one_sentence(study, tmp_path):
    directory, _ = study
    old = tmp_path / "old"
    shutil.copytree(directory, old)
    line = {"key": "random|id|30|0", "searcher": "random", "objective": "id", "budget": 30, "repeat": 0,
            "best": {"id": 70.0}, "history_index": [1, 2], "history_value": [69.0, 70.0]}
    with open(old / RUNS_FILE, "a") as fh:
        fh.write(json.dumps(line) + "\n")
    for attempt in (lambda: write_report(old), lambda: run_study(StudyConfig.load(old / "study.yaml"), old, workers=1)):
        with pytest.raises(UserError, match=r"line 21 of .*runs.jsonl was written by an older nas_lab, before runs "
                                            r"had one record shape; .* run it again \(a study: into a new folder"):
            attempt()
    (tmp_path / "run.json").write_text(json.dumps({"space": "hyvitas", "history": [{"index": 1, "value": 70.0}]}))
    with pytest.raises(UserError, match="run record .*run.json was written by an older nas_lab"):
        RunResult.load(tmp_path / "run.json")
