"""``nas-lab plot``: the figure of one run record (HyViTas, its simulated table: always here), the decision
importance of a study (fANOVA, checked on a made-up target that one decision drives), and bad input refused in one
sentence with exit status 2."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_study_report import run_grid

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.record import config_of, read
from nas_lab.core.registry import create
from nas_lab.core.runner import run
from nas_lab.study.config import StudyConfig
from nas_lab.study.importance import decision_importance, importance_figure, study_importance
from nas_lab.study.report import read_study
from nas_lab.study.run_plots import incumbent_curve, run_figure

TREES = 8  # a small forest: seconds, and the made-up target's decision still explains nearly all of it


def _record(tmp_path, objective: str, searcher: str = "random", budget: int = 40, constraints=()) -> str:
    cfg = RunConfig().apply([f"objective={objective}", f"searcher={searcher}", f"budget={budget}", "seed=3",
                             *(f"constraint={c}" for c in constraints)])
    space, objective_, searcher_ = build(cfg)
    result = run(space, objective_, searcher_, budget=cfg.budget, seed=cfg.seed)
    result.config = config_of(cfg)
    return str(result.save(tmp_path / f"{searcher}_{objective}.json"))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("runs"), "id", "rea", constraints=("latency.rpi4<=70",))


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("runs"), "id,latency.rpi4", "nsga2")


def test_incumbent_curve_is_the_best_feasible_value_so_far():
    values = np.array([3.0, 1.0, np.nan, 5.0, 9.0, 4.0])
    feasible = np.array([False, True, True, True, False, True])
    assert np.allclose(incumbent_curve(values, feasible, "max"), [np.nan, 1, 1, 5, 5, 5], equal_nan=True)
    assert np.allclose(incumbent_curve(values, feasible, "min"), [np.nan, 1, 1, 1, 1, 1], equal_nan=True)


def test_one_target_shows_every_evaluation_under_the_incumbent_curve(single):
    result = read(single)
    fig = run_figure(result)
    ax = fig.axes[0]
    values = result.history["value"][:, 0]
    feasible = result.history["feasible"]
    assert (~feasible).any() and feasible.any()  # the constraint cut some: both kinds are drawn
    steps = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    assert len(steps) == 1 and np.allclose(steps[0].get_ydata(), incumbent_curve(values, feasible, "max"))
    assert steps[0].get_ydata()[-1] == pytest.approx(result.best_metrics["id"], abs=1e-9)  # what the run reported
    drawn = sum(len(c.get_offsets()) for c in ax.collections)
    assert drawn == len(values)  # every evaluated arch, once
    assert ax.get_xlabel() == "architectures evaluated" and "higher is better" in ax.get_ylabel()
    optimum = result.metrics["id"]["max"]
    assert any(np.allclose(line.get_ydata(), optimum) for line in ax.get_lines())  # the table's optimum


def test_several_targets_show_evaluated_archs_front_and_hypervolume(multi):
    result = read(multi)
    fig = run_figure(result)
    front_ax, hv_ax = fig.axes
    assert "lower is better" in front_ax.get_ylabel() and "ms" in front_ax.get_ylabel()
    front = np.array(result.front["values"])
    offsets = np.vstack([c.get_offsets() for c in front_ax.collections])
    for point in front:  # every front arch is drawn (inside the view or at its edge)
        assert np.isclose(offsets, point).all(axis=1).any() or not np.isfinite(point).all()
    assert hv_ax.get_xlabel() == "architectures evaluated" and "hypervolume" in hv_ax.get_ylabel()
    curve = np.array(result.front["curve"])
    assert np.allclose(hv_ax.get_lines()[0].get_ydata(), curve[:, 1])


@pytest.mark.parametrize("suffix", ["png", "pdf", "svg"])
def test_the_command_writes_the_format_its_out_names(single, tmp_path, capsys, suffix):
    out = tmp_path / f"figure.{suffix}"
    assert main(["plot", single, f"out={out}", "dpi=50"]) == 0
    head = out.read_bytes()[:8]
    assert head.startswith({"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}[suffix])
    assert f"written: {out}" in capsys.readouterr().out


def test_the_default_out_is_next_to_the_record(single, capsys):
    assert main(["plot", single, "dpi=50"]) == 0
    assert Path(single).with_suffix(".png").exists()


def _refused(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas-lab: error:") and "\n" not in err and "Traceback" not in err
    for word in words:
        assert word in err
    return err


def test_bad_input_is_one_sentence_and_exit_2(single, tmp_path, capsys):
    _refused(capsys, ["plot", str(tmp_path / "missing.json")], "cannot read run record")
    not_a_record = tmp_path / "other.json"
    not_a_record.write_text(json.dumps({"hello": 1}))
    _refused(capsys, ["plot", str(not_a_record)], "not a nas_lab run record")
    damaged = tmp_path / "damaged.json"
    record = json.loads(Path(single).read_text())
    del record["history"]
    damaged.write_text(json.dumps(record))
    _refused(capsys, ["plot", str(damaged)], "history")
    torn = tmp_path / "torn.json"
    torn.write_text(Path(single).read_text()[:500])
    _refused(capsys, ["plot", str(torn)], "not JSON")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    _refused(capsys, ["plot", single, f"out={blocker / 'figure.png'}"], "cannot write the figure")
    _refused(capsys, ["plot", single, f"out={tmp_path / 'figure.txt'}"], ".png, .pdf, .svg")
    _refused(capsys, ["plot", single, "kind=bars"], "kind")
    _refused(capsys, ["plot", str(tmp_path)], "not a study folder")  # a folder means kind=importance
    _refused(capsys, ["plot", str(tmp_path), "kind=run"], "is a folder, not a run record")


def test_importance_ranks_the_decision_that_drives_the_target_first():
    space = create("space", "nb201", {})
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 120)
    values = 10.0 * archs[:, 3] + rng.normal(0, 1, len(archs))  # node3.in0 drives it; noise from nothing else
    shares = decision_importance(space, archs, values, seed=0, trees=TREES)
    assert next(iter(shares)) == "node3.in0" and shares["node3.in0"] > 0.8
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)  # normalised shares
    assert set(shares) == {d.name for d in space.decisions}


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    config = StudyConfig.from_dict(yaml.safe_load("""
        name: imp
        space: hyvitas
        budget: 30
        repeats: 2
        seed: 0
        objectives: [id]
        searchers: {random: {}, rea: {population: 10, tournament: 3}}
    """), {})
    return run_grid(tmp_path_factory.mktemp("imp") / "study", config)


def test_importance_of_a_study_counts_each_distinct_arch_once_and_plots_bars(small_study, tmp_path, capsys):
    study = read_study(small_study)
    result = study_importance(study, None, None, seed=0, trees=TREES)
    distinct = {int(i) for r in study.records for i, ok in zip(r.history["index"], r.history["feasible"]) if ok}
    assert result.archs == len(distinct) and result.searchers == ["Random search", "REA"]
    assert set(result.shares) == {d.name for d in create("space", "hyvitas", {}).decisions}
    fig = importance_figure(result)
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert sorted(bars) == pytest.approx(sorted(result.shares.values()))
    out = tmp_path / "imp.png"
    assert main(["plot", str(small_study), f"out={out}", f"trees={TREES}", "dpi=50"]) == 0 and out.exists()
    _refused(capsys, ["plot", str(small_study), "metric=latency.nowhere", f"trees={TREES}"], "valid: id")
    _refused(capsys, ["plot", str(small_study), "objective=ood", f"trees={TREES}"], "no objective 'ood'")
