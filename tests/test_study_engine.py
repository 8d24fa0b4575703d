"""The study engine: same results whatever the executor, durable records, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from conftest import SumObjective, untimed

from nas_lab.cli.main import main
from nas_lab.core.errors import UserError
from nas_lab.core.parallel import parallel_map, threads_per_worker
from nas_lab.core.runner import run
from nas_lab.searchers.random import RandomSearch
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import chunks, run_study
from nas_lab.study.store import Store, key_of

SMALL = {
    "name": "small",
    "budget": 20,
    "repeats": 6,
    "seed": 4,
    "objectives": ["id", "id+ood"],
    "searchers": {"random": {}, "rea": {"population": 10, "tournament": 3}},
}


def results(directory):
    """Everything a run recorded, keyed by run, without timings."""
    return {key_of(r): untimed(r.to_record()) for r in Store(directory).records()}


def test_workers_and_ray_give_identical_runs(tmp_path):
    study = StudyConfig.from_dict(SMALL, {})
    one = run_study(study, tmp_path / "one", workers=1)
    two = run_study(study, tmp_path / "two", workers=2)
    ray = run_study(study, tmp_path / "ray", workers=2, executor="ray")
    assert one.ran == two.ran == ray.ran == 24
    # exact across processes: random and REA only index the table and compare its values (no BLAS, no threads)
    assert results(tmp_path / "one") == results(tmp_path / "two") == results(tmp_path / "ray")
    assert len(results(tmp_path / "one")) == 24


def test_store_is_one_pandas_call_with_config_beside_each_result(tmp_path):
    pd = pytest.importorskip("pandas")
    run_study(StudyConfig.from_dict(SMALL, {}), tmp_path, workers=1)
    frame = pd.read_json(tmp_path / "runs.jsonl", lines=True)
    assert len(frame) == 24
    row = frame.iloc[0]
    study = row["config"]["study"]
    assert row["config"]["budget"] == 20 and row["config"]["seed"] == [4, study["repeat"]]
    assert study["key"] == f"{study['label']}|{row['config']['objective']}|20|{study['repeat']}"
    assert set(row["best"]["metrics"]) >= {"id", "ood.c1", "ood.c5", "ood.sketch", "ood.stylized"}


def test_resume_runs_only_what_is_missing(tmp_path):
    first = run_study(StudyConfig.from_dict({**SMALL, "repeats": 3}, {}), tmp_path, workers=1)
    assert (first.ran, first.skipped) == (12, 0)
    more = run_study(StudyConfig.from_dict(SMALL, {}), tmp_path, workers=2)
    assert (more.ran, more.skipped, more.total) == (12, 12, 24)
    again = run_study(StudyConfig.from_dict(SMALL, {}), tmp_path, workers=2)
    assert again.ran == 0
    assert results(tmp_path) == results(_fresh(tmp_path.parent / "fresh"))


def _fresh(directory):
    run_study(StudyConfig.from_dict(SMALL, {}), directory, workers=1)
    return directory


def test_an_interrupt_while_a_result_is_stored_closes_the_map_before_it_leaves_the_study(tmp_path, monkeypatch):
    """The map must end with the study, not at interpreter exit: a suspended map kept by the interrupt's traceback
    ran every remaining run before a SIGTERMed study could exit."""
    import nas_lab.study.engine as engine

    closed = []

    def tracked(*args, **kwargs):
        try:
            yield from parallel_map(*args, **kwargs)
        finally:
            closed.append(True)

    def interrupt(_):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "parallel_map", tracked)
    with pytest.raises(KeyboardInterrupt) as caught:
        run_study(StudyConfig.from_dict({**SMALL, "repeats": 1}, {}), tmp_path, workers=1, on_records=interrupt)
    assert caught.traceback and closed == [True]


def test_a_different_study_in_the_same_folder_is_refused(tmp_path):
    run_study(StudyConfig.from_dict({**SMALL, "repeats": 1}, {}), tmp_path, workers=1)
    with pytest.raises(UserError, match="holds a different study"):
        run_study(StudyConfig.from_dict({**SMALL, "budget": 30}, {}), tmp_path, workers=1)


def test_chunks_stay_within_one_cell_and_cover_every_run():
    specs = StudyConfig.from_dict({**SMALL, "repeats": 40}, {}).runs()
    parts = chunks(specs, workers=2)
    assert sum(len(c) for c in parts) == len(specs)
    assert all(len({(s.searcher, s.objective) for s in c}) == 1 for c in parts)


def test_runs_that_train_get_a_chunk_each_and_go_first():
    config = {**SMALL, "searchers": {**SMALL["searchers"], "spos": {"repeats": 2, "objectives": ["id"]}}}
    parts = chunks(StudyConfig.from_dict(config, {}).runs(), workers=2)
    assert [[s.searcher for s in c] for c in parts[:2]] == [["spos"], ["spos"]]
    assert all(s.searcher != "spos" for c in parts[2:] for s in c)


def _thread_limits(_):
    """What a pool worker's thread pools are limited to (run through ``parallel_map``)."""
    import torch
    from threadpoolctl import threadpool_info

    return os.getpid(), [(p["user_api"], p["num_threads"]) for p in threadpool_info()], torch.get_num_threads()


def test_pool_workers_limit_blas_openmp_and_torch_threads_to_their_share_of_the_cores():
    import numpy  # noqa: F401 - loaded before the fork, as in a study: its BLAS pool is sized already
    from threadpoolctl import threadpool_info

    share = threads_per_worker(2)
    assert share == max(1, len(os.sched_getaffinity(0)) // 2)
    assert any(p["user_api"] == "blas" for p in threadpool_info())
    seen = list(parallel_map(_thread_limits, list(range(4)), workers=2))
    assert all(pid != os.getpid() for pid, _, _ in seen)  # run in workers, not here
    for _, pools, torch_threads in seen:
        assert any(api == "blas" for api, _ in pools), pools
        assert all(n <= share for _, n in pools), pools
        assert torch_threads == share


def test_kill_9_loses_only_runs_in_flight_and_the_same_command_finishes(tmp_path):
    config = tmp_path / "big.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "budget": 10, "repeats": 1000}))
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "nas_lab.cli.main", "study", str(config), f"out={out}", "workers=1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out / "runs.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not runs.exists() or runs.read_text().count("\n") < 100):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    kept = runs.read_text().count("\n")
    assert 100 <= kept < 4000
    with open(runs, "a") as fh:  # what a kill in the middle of a write leaves behind
        fh.write('{"key": "rea|id|10|17", "searcher')
    finished = subprocess.run(cmd, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(records) == 4000 and len({r["config"]["study"]["key"] for r in records}) == 4000
    assert f"{4000 - kept} runs now, {kept} already recorded" in finished.stdout


@pytest.mark.parametrize("text, overrides, message", [
    (None, [], "does not exist"),
    ("name: [unclosed", [], "is not valid YAML"),
    (yaml.safe_dump({**SMALL, "budgte": 3}), [], "unknown key 'budgte'"),
    (yaml.safe_dump({**SMALL, "searchers": {"rae": {}}}), [], "unknown searcher 'rae'"),
    (yaml.safe_dump({**SMALL, "searchers": {"rea": {"population": "x"}}}), [],
     "searcher.population must be a whole number"),
    (yaml.safe_dump(SMALL), ["repeats=0"], "repeats must lie in 1..1,000,000, got 0"),
    (yaml.safe_dump(SMALL), ["objectives=acc"], "has no metric 'acc'"),
    (yaml.safe_dump(SMALL), ["searchers=bananas"], "bananas not in the study; valid: random, rea"),
    (yaml.safe_dump(SMALL), ["executor=slurm"], "executor must be one of local, ray"),
    (yaml.safe_dump(SMALL), ["workers=two"], "workers must be a whole number"),
])
def test_bad_study_input_is_one_sentence_and_exit_2(tmp_path, capsys, text, overrides, message):
    config = tmp_path / "study.yaml"
    if text is not None:
        config.write_text(text)
    code = main(["study", str(config), f"out={tmp_path / 'out'}", "--no-progress", *overrides])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_budgets_are_a_grid_axis_and_constraints_apply_to_every_run(tmp_path):
    from nas_lab.study.report import write_report

    study = StudyConfig.from_dict({**SMALL, "budget": [10, 25], "repeats": 3, "objectives": ["id"],
                                   "constraints": ["latency.rtx4090<=1.0"]}, {})
    assert study.settings() == [("id", 10), ("id", 25)]
    assert run_study(study, tmp_path, workers=1).ran == 2 * 2 * 3
    records = list(Store(tmp_path).records())
    assert sorted({r.budget for r in records}) == [10, 25]
    assert all(r.evaluations == r.budget for r in records)
    found = [r.best_metrics for r in records if r.best_metrics is not None]  # a short run may find no feasible arch
    assert len(found) >= 10 and all(b["latency.rtx4090"] <= 1.0 for b in found)
    assert all(r.config["constraints"] == ["latency.rtx4090<=1.0"] for r in records)
    report = write_report(tmp_path)
    assert ("| REA (ID top-1, 25 evals) |" in report.markdown
            and "budget 10 or 25 evaluations, subject to latency" in report.markdown)
    assert {p.name for p in report.paths} >= {"anytime.png", "id_vs_ood.png"}


def test_a_searcher_may_run_fewer_repeats_and_fewer_objectives(tmp_path):
    from nas_lab.study.report import write_report

    study = StudyConfig.from_dict({**SMALL, "searchers": {"random": {}, "rea": {"repeats": 2, "objectives": ["id"]}}},
                                  {})
    assert run_study(study, tmp_path, workers=1).ran == 6 * 2 + 2
    report = write_report(tmp_path)
    assert "| REA (ID top-1) |" in report.markdown and "REA (ID+OoD)" not in report.markdown
    assert "partial" not in report.markdown


def test_store_lines_are_strict_json_even_with_nan_metrics(tmp_path, space):
    result = run(space, SumObjective(space), RandomSearch(), budget=3, seed=0)
    result.config = {"objective": "sum", "budget": 3, "study": {"key": "a", "label": "random", "repeat": 0}}
    result.best_metrics = {"id": float("nan"), "params": float("inf")}
    result.history["value"][:, 0] = np.nan
    with Store(tmp_path) as store:
        store.append(result.to_record())
    text = (tmp_path / "runs.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = next(Store(tmp_path).records())
    assert np.isnan(list(back.best_metrics.values())).all() and np.isnan(back.history["value"]).all()  # null: NaN


def test_a_row_may_set_its_own_space_and_objective_params_and_seed_by_repeat():
    rows = {"shared": {"searcher": "random", "space_params": {"setting": "cpu", "private_class_token": False}},
            "private": {"searcher": "random", "objective_params": {"seed": "${repeat}"}}}
    study = StudyConfig.from_dict({"name": "ablation", "space": "vitas", "space_params": {"setting": "cpu"},
                                   "objective_params": {"seed": 7}, "objectives": ["zc.params"], "budget": 5,
                                   "repeats": 3, "searchers": rows}, {})
    specs = {(s.searcher, s.repeat): s.run_config() for s in study.runs()}
    assert specs["shared", 2].params["space"] == {"setting": "cpu", "private_class_token": False}
    assert specs["shared", 2].params["objective"] == {"seed": 7}
    assert [specs["private", r].params["objective"]["seed"] for r in range(3)] == [0, 1, 2]
    assert specs["private", 1].params["space"] == {"setting": "cpu"}
    assert specs["shared", 0].params["searcher"] == {}  # the row's own params are not the searcher's
    bad = {**rows, "broken": {"searcher": "random", "space_params": {"setting": "tiny"}}}
    with pytest.raises(UserError, match="space.setting"):
        StudyConfig.from_dict({"name": "ablation", "space": "vitas", "objectives": ["zc.params"], "budget": 5,
                               "searchers": bad}, {})
    with pytest.raises(UserError, match="space_params"):
        StudyConfig.from_dict({"name": "ablation", "space": "vitas", "objectives": ["zc.params"], "budget": 5,
                               "searchers": {"random": {"space_params": [1]}}}, {})
