"""Bad input through the CLI: one sentence on stderr naming what was wrong and what is valid, exit status 2,
no traceback, and nothing run or written first. Every case here fails before any search or training."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from nas_lab.cli.main import main


def refused(capsys, *args: str, valid: tuple[str, ...] = ()) -> str:
    """Run ``nas-lab ARGS``; assert exit 2 with one ``nas-lab: error:`` line holding every ``valid`` text."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas-lab: error: "), err
    for text in valid:
        assert text in err, (text, err)
    return err


@pytest.fixture
def out(tmp_path):
    return f"out={tmp_path / 'out'}"


# -- seeds -------------------------------------------------------------------------------------------


def test_negative_run_seed(capsys):
    refused(capsys, "run", "seed=-5", "--no-save", valid=("seed must lie in 0..4,294,967,295, got -5",))


def test_negative_study_seed_as_override_and_in_yaml(capsys, study, out):
    refused(capsys, "study", study(), "seed=-5", out, "--no-progress",
            valid=("seed must lie in 0..4,294,967,295, got -5",))
    refused(capsys, "study", study("seed: -5"), out, "--no-progress",
            valid=("seed must lie in 0..4,294,967,295, got -5",))


def test_negative_study_seed_from_the_installed_command(study, tmp_path):
    """The real entry point (it used to fail in a worker, with a worker's traceback)."""
    proc = subprocess.run([sys.executable, "-m", "nas_lab.cli.main", "study", study("seed: -5"),
                           f"out={tmp_path / 'out'}", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "nas-lab: error: seed must lie in 0..4,294,967,295, got -5"
    assert not (tmp_path / "out").exists()


def test_negative_precompute_seed(capsys):
    refused(capsys, "precompute", "space=nb201", "proxies=params", "sample=2", "seed=-1", "--no-progress",
            valid=("seed must lie in 0..4,294,967,295, got -1",))


# -- study YAML of the wrong types -------------------------------------------------------------------


@pytest.mark.parametrize("line, valid", [
    ("searchers: {rea: 5}", ("'searchers.rea' must map parameter names to values", "rea: {population: 50}", "got 5")),
    ("searchers: {rea: fast}", ("'searchers.rea' must map parameter names to values", "got fast")),
    ("constraints: 5", ("constraint '5' is not METRIC<=NUMBER", "constraint=latency.pixel3<=5")),
    ("searchers: {spos: {repeats: abc}}", ("searchers.spos.repeats must be a whole number, got 'abc'",)),
    ("searchers: {random: {repeats: 0}}", ("searchers.random.repeats must lie in 1..1,000,000, got 0",)),
    ("space_params: [1]", ("space_params must be a mapping, got [1]",)),
    ("objective_params: fast", ("objective_params=fast: not key=value,key=value",)),
    ("name: null", ("name must be a plain folder name such as hyvitas_table4", "got None")),
    ("name: ../../escape", ("name must be a plain folder name", "no path separators", "got '../../escape'",
                            "out=DIR")),
    ("name: ..", ("name must be a plain folder name",)),
], ids=["searcher-int", "searcher-str", "constraints-int", "repeats-str", "repeats-0", "space_params-list",
        "objective_params-str", "name-null", "name-escape", "name-dotdot"])
def test_study_yaml_of_the_wrong_type(capsys, study, out, tmp_path, line, valid):
    refused(capsys, "study", study(line), out, "--no-progress", valid=valid)
    assert not (tmp_path / "out").exists()


def test_a_name_that_escapes_writes_nothing_outside(capsys, study, tmp_path, monkeypatch):
    """Without out=, the folder would be results/studies/<name>: ../../escape would leave results/ altogether."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    refused(capsys, "study", study("name: ../../escape"), "--no-progress", valid=("plain folder name",))
    assert list(tmp_path.rglob("escape")) == [] and not (work / "results").exists()


# -- the study's execution ---------------------------------------------------------------------------


def test_unwritable_study_folder(capsys, study):
    refused(capsys, "study", study(), "out=/proc/nope", "--no-progress",
            valid=("/proc/nope", "choose another out=DIR"))


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one(capsys, study, out, tmp_path, workers):
    refused(capsys, "study", study(), f"workers={workers}", out, "--no-progress",
            valid=(f"workers must lie in 1..1,024, got {workers}",))
    assert not (tmp_path / "out" / "runs.jsonl").exists()


def _no_ray_cluster_here(monkeypatch):
    pytest.importorskip("ray")
    from ray._private import services

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if services.find_gcs_addresses() or services.find_bootstrap_address(None):
        pytest.skip("a Ray cluster runs on this machine")


def test_ray_auto_without_a_cluster_says_so_within_seconds(capsys, study, out, monkeypatch):
    _no_ray_cluster_here(monkeypatch)
    start = time.monotonic()
    refused(capsys, "study", study(), "executor=ray", "executor.address=auto", out, "--no-progress",
            valid=("executor.address=auto found no running Ray cluster", "ray start --head",
                   "leave out executor.address"))
    assert time.monotonic() - start < 20


def test_ray_address_where_nothing_listens_says_so_within_seconds(capsys, study, out, monkeypatch):
    _no_ray_cluster_here(monkeypatch)
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    refused(capsys, "study", study(), "executor=ray", f"executor.address=127.0.0.1:{port}", out, "--no-progress",
            valid=(f"no Ray cluster answers at executor.address=127.0.0.1:{port}", "ray start --head"))
    assert time.monotonic() - start < 20


def test_ray_address_that_is_no_address(capsys, study, out, monkeypatch):
    _no_ray_cluster_here(monkeypatch)
    refused(capsys, "study", study(), "executor=ray", "executor.address=nonsense", out, "--no-progress",
            valid=("executor.address must be auto or HOST:PORT", "got 'nonsense'"))


# -- sizes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, valid", [
    (["searcher=rea", "searcher.population=1e9"],
     ("searcher.population must lie in 1..6,561 (space.cardinality), got 1,000,000,000",)),
    (["space=nb201", "objective=zc.params", "searcher=rea", "searcher.population=20000"], ("1..15,625",)),
    (["searcher=spos", "searcher.population=1e9"], ("searcher.population must lie in 2..6,561",)),
    (["searcher=bananas", "searcher.hidden=4096"], ("make a predictor of", "at most 10,000,000")),
], ids=["rea", "rea-nb201", "spos", "bananas-hidden"])
def test_population_and_network_sizes_are_bounded(capsys, args, valid):
    start = time.monotonic()
    refused(capsys, "run", *args, "--no-save", valid=valid)
    assert time.monotonic() - start < 30  # refused before anything is allocated or trained


def test_a_bananas_pool_larger_than_the_space_is_the_space(capsys):
    """A pool is "up to pool" candidates: no pool holds more than the space, so 1e9 costs no memory."""
    assert main(["run", "searcher=bananas", "searcher.pool=1e9", "searcher.top_k=5", "budget=15", "--no-save"]) == 0
    assert "15 of 15 distinct architectures evaluated" in capsys.readouterr().out


@pytest.mark.parametrize("space, side, valid", [
    ("nb201", "7", "resolution must be a multiple of 4 from 4 to 2048 px for space 'nb201'"),
    ("nb201", "1e9", "resolution must lie in 1..4,096, got 1,000,000,000"),
    ("hyvitas", "16", "resolution must be from 32 to 2048 px for space 'hyvitas'"),
])
def test_precompute_resolution_the_space_cannot_take(capsys, space, side, valid):
    refused(capsys, "precompute", f"space={space}", "proxies=naswot", "sample=2", f"resolution={side}",
            "--no-progress", valid=(valid,))


def test_a_supernet_image_size_the_space_cannot_take_is_refused_before_training(capsys):
    start = time.monotonic()
    refused(capsys, "run", "searcher=darts", "dataset.image_size=7", "--no-save",
            valid=("dataset.image_size must be from 32 to 2048 px for space 'hyvitas'", "got 7"))
    assert time.monotonic() - start < 30


def test_the_sides_the_spaces_declare_are_the_sides_their_models_take():
    """The smallest declared side and the next multiple run; one pixel less (or off the step) fails in torch."""
    torch = pytest.importorskip("torch")
    from nas_lab.core import registry

    for name in ("nb201", "hyvitas"):
        space = registry.create("space", name, {})
        model = space.build(space.arch([space.cardinality - 1])[0], num_classes=10).eval()
        with torch.no_grad():
            for side in (space.min_side, space.min_side + space.side_step):
                assert model(torch.zeros(2, 3, side, side)).shape == (2, 10)
            with pytest.raises(RuntimeError):
                model(torch.zeros(2, 3, space.min_side - 1, space.min_side - 1) if name == "hyvitas"
                      else torch.zeros(2, 3, 7, 7))


# -- the grid ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("override, valid", [
    ("objectives=id,id", "objectives lists id more than once; each objective may appear once in the grid"),
    ("budget=[10,10]", "budget lists 10 more than once; each budget may appear once in the grid"),
    ("searchers=random,random", "searchers lists random more than once"),
])
def test_duplicates_in_a_grid_axis(capsys, study, out, tmp_path, override, valid):
    refused(capsys, "study", study(), override, out, "--no-progress", valid=(valid,))
    assert not (tmp_path / "out").exists()


def test_a_grid_too_large_is_refused_before_it_is_listed(capsys, study, out):
    start = time.monotonic()
    refused(capsys, "study", study(), "repeats=1e6", "budget=[5,6]", out, "--no-progress",
            valid=("the study's grid holds 2,000,000 runs; at most 1,000,000 are allowed", "lower repeats"))
    assert time.monotonic() - start < 30


# -- output ------------------------------------------------------------------------------------------


def test_json_writes_null_for_nan(capsys, tmp_path):
    from nas_lab.core import registry
    from nas_lab.objectives.tabular.hyvitas_sim import build_table
    from nas_lab.objectives.tabular.table import Table

    space = registry.create("space", "hyvitas", {})
    columns = {k: np.array(v, dtype=float) for k, v in build_table(space).columns.items()}
    for key in columns:
        if key.startswith("ood."):
            columns[key][:] = np.nan  # every OoD figure unknown: the best arch's OoD metrics are NaN
    Table(space, columns, name="holes", description="OoD unknown").save(tmp_path / "holes.npz")
    records = tmp_path / "records"
    assert main(["run", f"table={tmp_path / 'holes.npz'}", "budget=5", "--json", "--out", str(records)]) == 0
    text = capsys.readouterr().out

    def no_constants(name):
        raise AssertionError(f"{name} in the JSON")

    data = json.loads(text, parse_constant=no_constants)
    assert data["best"]["metrics"]["ood.sketch"] is None and data["best"]["metrics"]["id"] > 0
    json.loads(next(records.glob("*.json")).read_text(), parse_constant=no_constants)  # the run record too


# -- misleading messages -----------------------------------------------------------------------------


def test_study_given_a_folder(capsys, tmp_path):
    refused(capsys, "study", str(tmp_path), "--no-progress",
            valid=(f"study config {tmp_path} is a folder, not a YAML file", "experiments/hyvitas_table4.yaml"))


def test_report_given_a_file(capsys, study):
    path = study()
    err = refused(capsys, "report", path, valid=(f"{path} is a file, not a study folder", "results/studies/"))
    assert "does not exist" not in err and "nas-lab study" in err


def test_a_table_folder_without_a_table_for_this_space(capsys, tmp_path):
    err = refused(capsys, "run", f"table={tmp_path}", "--no-save",
                  valid=(f"folder {tmp_path} holds no table that space 'hyvitas' can read", ".npz or .csv table"))
    assert "use space=nb201" not in err


def test_a_garbage_npz(capsys, tmp_path):
    (tmp_path / "junk.npz").write_bytes(os.urandom(64))
    err = refused(capsys, "run", f"table={tmp_path / 'junk.npz'}", "--no-save",
                  valid=("is not a NumPy .npz archive", "Table.save or np.savez"))
    assert "pickle" not in err


@pytest.mark.parametrize("args", [
    ["run", "searcher={}"], ["run", "table={}"], ["run", "objective={}"], ["run", "{}=3"],
    ["run", "searcher.population={}"], ["precompute", "proxies={}"], ["study", "{STUDY}", "searchers={}"],
], ids=["searcher", "table", "objective", "key", "param", "proxy", "study-searchers"])
def test_a_huge_value_is_not_echoed_back_whole(capsys, study, out, args):
    huge = "x" * 100_000
    args = [a.replace("{STUDY}", study()).format(huge) for a in args]
    extra = {"run": ["--no-save"], "precompute": ["--no-progress"], "study": ["--no-progress", out]}[args[0]]
    err = refused(capsys, *args, *extra)
    assert len(err) < 1000 and "xxxx…" in err
