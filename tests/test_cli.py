"""The ``nas-lab`` command: the main job, --json, list, and every bad-input path (exit 2)."""

import json
import subprocess
import sys

import pytest
from conftest import untimed

from nas_lab.cli.main import main
from nas_lab.core.results import RunResult


def nas_lab(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_main_job_prints_a_readable_summary(capsys, tmp_path):
    code, out, err = nas_lab(capsys, "run", "searcher=rea", "objective=id+ood", "--out", str(tmp_path))
    assert code == 0, err
    assert "space      hyvitas (6,561 architectures)" in out
    assert "table      hyvitas-sim: simulated" in out
    assert "searcher   rea (population=50, tournament=10, mutations=1, batch=64)" in out
    for needle in ("conv.kernel=", "stage4.dim=", "ID top-1", "RedIN-C 1", "RedIN-C 5", "RedIN-Sketch",
                   "RedStylized-IN", "params", "GPU-hours of simulated training"):
        assert needle in out
    assert len(out.splitlines()) <= 20
    saved = next(tmp_path.glob("*.json"))
    record = json.loads(saved.read_text())
    assert record["searcher"] == "rea" and record["evaluations"] == 100
    assert record["config"]["objective"] == "id+ood" and record["config"]["params"]["searcher"] == {}
    assert RunResult.load(saved).best_index == record["best"]["index"]  # the one loader reads what `run` wrote


def test_json_output_has_the_promised_fields(capsys):
    code, out, _ = nas_lab(capsys, "run", "searcher=rea", "objective=id+ood", "seed=3", "--json", "--no-save")
    assert code == 0
    d = json.loads(out)
    assert (d["space"], d["searcher"], d["objective"], d["seed"], d["budget"], d["evaluations"]) == (
        "hyvitas", "rea", "id+ood", 3, 100, 100)
    assert d["best"]["arch"].keys() == {"conv.kernel", "conv.expansion", "attn.kernel", "attn.expansion",
                                        "stage1.dim", "stage2.dim", "stage3.dim", "stage4.dim"}
    assert {"id", "ood.c1", "ood.c5", "ood.sketch", "ood.stylized", "ood", "params"} <= d["best"]["metrics"].keys()
    assert len(d["history"]["index"]) == len(d["history"]["value"]) == 100 and d["targets"] == ["id+ood"]
    assert max(v for v, in d["history"]["value"]) == pytest.approx(d["best"]["metrics"]["id+ood"])
    assert d["metrics"]["id+ood"]["label"] == "ID+OoD" and d["metrics"]["id"]["unit"] == "%"
    assert d["metrics"]["id"]["max"] == pytest.approx(73.66, abs=0.01)  # the table's optimum, recorded with the run


def test_same_seed_gives_identical_json(capsys):
    args = ("run", "searcher=rea", "objective=id+ood", "seed=9", "searcher.population=20", "--json", "--no-save")
    first, second = (untimed(json.loads(nas_lab(capsys, *args)[1])) for _ in range(2))
    assert first == second  # all but the wall-clock timings
    assert first != untimed(json.loads(nas_lab(capsys, *args[:3], "seed=10", *args[4:])[1]))


def test_list_shows_every_registered_name_with_parameters(capsys):
    code, out, _ = nas_lab(capsys, "list")
    assert code == 0
    for needle in ("spaces:", "hyvitas", "objectives:", "tabular", "default metric id", "seeds=mean", "searchers:",
                   "rea", "population=50 tournament=10", "random", "tables:", "hyvitas-sim"):
        assert needle in out


@pytest.mark.parametrize("args, message", [
    (["searcher=nope"], "unknown searcher 'nope'; valid: "),
    (["space=nope"], "unknown space 'nope'; valid: autovit, hyvitas"),
    (["objective=accuracy"], "has no metric 'accuracy'; valid: id,"),
    (["searcher.population=abc"], "searcher.population must be a whole number, got 'abc'"),
    (["searcher.popsize=5"], "searcher 'rea' has no parameter popsize; valid: searcher.population"),
    (["searcher.tournament=80"], "tournament must lie in 1..50 (population), got 80"),
    (["budget=0"], "budget must lie in 1..space.cardinality, got 0"),
    (["budget=7000"], "budget must lie in 1..6,561 (space.cardinality), got 7,000"),
    (["seed=x"], "seed must be a whole number, got 'x'"),
    (["bogus=1"], "unknown setting 'bogus'; valid: space, searcher"),
    (["searcher"], "override 'searcher' is not key=value"),
    (["table=missing.npz"], "neither a built-in table"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, args, message):
    code, out, err = nas_lab(capsys, "run", *args, "--no-save")
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_corrupt_table_file_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file")
    code, _, err = nas_lab(capsys, "run", f"table={bad}", "--no-save")
    assert code == 2 and "broken.npz" in err and "Traceback" not in err


def test_console_script_runs_and_fails_cleanly():
    ok = subprocess.run([sys.executable, "-m", "nas_lab.cli.main", "run", "searcher=random", "budget=10", "--no-save"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "searcher   random (no parameters)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "nas_lab.cli.main", "run", "searcher=nope"],
                         capture_output=True, text=True)
    assert (bad.returncode == 2 and bad.stderr.startswith("nas-lab: error: unknown searcher")
            and "Traceback" not in bad.stderr)


def test_run_shows_a_search_bar_for_objectives_that_compute(tmp_path, capsys):
    args = ["run", "space=nb201", "objective=zc.params", f"objective.cache={tmp_path / 'zc.sqlite'}",
            "searcher=random", "budget=4", "--no-save"]
    assert main(args) == 0
    assert "search:" in capsys.readouterr().err and (tmp_path / "zc.sqlite").exists()
    assert main([*args, "--no-progress"]) == 0
    assert "search:" not in capsys.readouterr().err
    assert main(["run", "searcher=random", "budget=4", "--no-save"]) == 0  # a table lookup takes milliseconds: no bar
    assert "search:" not in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
    (["list", "nope"], "argument kind: invalid choice: 'nope'"),
    (["lut", "frob"], "argument action: invalid choice: 'frob'"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_malformed_command_line_is_one_sentence_and_exit_2(capsys, args, message):
    """argparse's own errors end like any other bad input: one line, exit status 2."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("nas-lab: error: ") and message in err
