"""The Python API: the guide's example runs as written; nas_lab.run validates as `nas-lab run` does and makes
the same run; frames and load_study hold what the records hold."""

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import untimed

import nas_lab
from nas_lab.cli.main import main
from nas_lab.core.errors import UserError
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.searchers.random import RandomSearch
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import run_study
from nas_lab.study.store import Store

REPO = Path(__file__).resolve().parents[1]


def guide_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the Python API guide (docs/guide/python-api.md)."""
    text = (REPO / "docs" / "guide" / "python-api.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_guide_example_runs_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "experiments").mkdir()
    shutil.copy(REPO / "experiments" / "hyvitas_table4.yaml", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    (commands,), (example,) = guide_blocks("bash"), guide_blocks("python")
    for line in commands.strip().splitlines():
        assert main(shlex.split(line)[1:]) == 0, capsys.readouterr().err
    exec(compile(example, "docs/guide/python-api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "ID top-1" in out and "rea" in out  # the study's frame, grouped


@pytest.mark.parametrize("overrides, kwargs", [
    (["searcher=nope"], {"searcher": "nope"}),
    (["objective=id", "searcher.population=0"], {"searcher_params": {"population": 0}}),
    (["budget=0"], {"budget": 0}),
    (["objective=id,params"], {"objective": "id,params"}),  # REA is single-objective
    (["constraint=params<<1"], {"constraints": ["params<<1"]}),
    (["table=/no/such/table.npz"], {"table": "/no/such/table.npz"}),
])
def test_run_refuses_what_the_command_refuses_with_its_sentence(overrides, kwargs, capsys):
    assert main(["run", "--no-save", *overrides]) == 2
    sentence = capsys.readouterr().err.removeprefix("nas-lab: error: ").strip()
    with pytest.raises(UserError) as err:
        nas_lab.run(**kwargs)
    assert str(err.value) == sentence


def test_run_makes_the_run_the_command_makes(capsys):
    assert main(["run", "searcher=rea", "objective=id+ood", "seed=4", "budget=60", "searcher.population=20",
                 "constraint=latency.rtx4090<=1.1", "--json", "--no-save"]) == 0
    command = json.loads(capsys.readouterr().out)
    result = nas_lab.run(searcher="rea", objective="id+ood", seed=4, budget=60, searcher_params={"population": 20},
                         constraints=["latency.rtx4090<=1.1"])
    record = untimed(result.to_record())
    assert record["config"]["params"]["searcher"] == {"population": 20}  # a Python value, where the command has "20"
    assert {**record, "config": None} == {**untimed(command), "config": None}


def test_objects_replace_names_and_refuse_what_does_not_fit():
    objective = TabularObjective(HyViTasSpace(), "id")
    result = nas_lab.run(objective=objective, searcher=RandomSearch(), budget=30, seed=2)
    named = nas_lab.run(searcher="random", objective="id", budget=30, seed=2)
    assert (result.space, result.objective, result.searcher) == ("hyvitas", "id", "random")
    assert untimed(result.to_record()) == untimed(named.to_record())  # the same run, and the same record
    assert nas_lab.run(space=HyViTasSpace(), budget=10).space == "hyvitas"
    with pytest.raises(UserError, match="the objective object searches space 'hyvitas', not 'nb201'"):
        nas_lab.run(space="nb201", objective=objective)
    with pytest.raises(UserError, match="the objective object searches space 'hyvitas', not <space nb201"):
        nas_lab.run(space=NB201Space(), objective=objective)
    with pytest.raises(UserError, match="searcher_params apply to a searcher given by name"):
        nas_lab.run(searcher=RandomSearch(), searcher_params={"batch": 3})
    with pytest.raises(UserError, match="table= applies to an objective given by name"):
        nas_lab.run(objective=objective, table="hyvitas-sim")
    with pytest.raises(UserError, match="space must be a registered name or a Space, got 3"):
        nas_lab.run(space=3)


def test_frames_hold_the_history_and_the_front():
    result = nas_lab.run(objective="id,params", searcher="random", budget=80, seed=3)
    history = result.history_frame()
    assert len(history) == 80 and history["evaluation"].tolist() == list(range(1, 81))
    assert history["index"].tolist() == result.history["index"].tolist()
    np.testing.assert_array_equal(history[["ID top-1", "params"]].to_numpy(), result.history["value"])
    space = HyViTasSpace()
    for j, d in enumerate(space.decisions):  # each decision's option value, arch by arch
        assert history[d.name].tolist() == [d.options[i] for i in space.arch(result.history["index"])[:, j]]
    front = result.front_frame()
    assert front["index"].tolist() == result.front["index"] and len(front) >= 2
    assert front["ID top-1"].is_monotonic_decreasing and front["params"].is_monotonic_decreasing
    assert set(front.columns) == {"index", *space.names, "ID top-1", "params"}
    single = nas_lab.run(objective="id", budget=20).front_frame()
    assert single["index"].tolist() == [nas_lab.run(objective="id", budget=20).best_index]


def test_load_study_is_one_row_per_run_and_the_history_one_row_per_evaluation(tmp_path):
    study = StudyConfig.from_dict({"name": "s", "budget": 15, "repeats": 3, "seed": 2, "objectives": ["id", "id+ood"],
                                   "searchers": {"random": {},
                                                 "fast": {"searcher": "rea", "population": 5, "tournament": 2}}}, {})
    run_study(study, tmp_path, workers=1)
    runs = nas_lab.load_study(tmp_path)
    records = {r.config["study"]["key"]: r for r in Store(tmp_path).records()}
    assert len(runs) == 12 and set(runs["key"]) == set(records)
    assert list(runs.columns[:7]) == ["key", "searcher", "searcher_name", "objective", "budget", "repeat", "seed"]
    assert list(runs[["objective", "searcher", "repeat"]].itertuples(index=False, name=None))[:4] == [
        ("id", "fast", 0), ("id", "fast", 1), ("id", "fast", 2), ("id", "random", 0)]
    for key, row in runs.set_index("key").iterrows():
        r = records[key]
        assert (row["searcher_name"], row["seed"], row["best_index"]) == (r.searcher, 2, r.best_index)
        assert row["ID top-1"] == r.best_metrics["id"] and row["RedIN-Sketch"] == r.best_metrics["ood.sketch"]
    history = nas_lab.load_study(tmp_path, history=True)
    assert len(history) == 12 * 15 and list(history.columns[:6]) == ["key", "searcher", "objective", "budget",
                                                                      "repeat", "evaluation"]
    one = history[history["key"] == "random|id+ood|15|1"]
    assert one["index"].tolist() == records["random|id+ood|15|1"].history["index"].tolist()
    with pytest.raises(UserError, match="does not exist"):
        nas_lab.load_study(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no finished runs"):
        nas_lab.load_study(tmp_path / "empty")
