"""One-shot NAS: SPOS and DARTS end to end through `nas-lab run`, determinism, DARTS' architecture gradients,
the supernet objective's disk cache and metrics, REA on a supernet, and bad input (exit 2).

Every training here is tiny (one epoch of two batches of 16 digits at 32x32, the smallest side the
supernet takes), so accuracies are low; the benchmark (benchmarks/bench_one_shot.py) measures real ones.
"""

import contextlib
import io
import json
import re

import numpy as np
import pytest
import torch

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.runner import run
from nas_lab.core.task import Task
from nas_lab.objectives.supernet import METRICS, SupernetObjective
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.oneshot import training
from nas_lab.searchers.darts import Darts

TINY = {"epochs": 1, "batch_size": 16, "max_batches": 2, "recalibration": 1}
SPOS = {**TINY, "population": 2, "generations": 1, "parents": 2}


def overrides(kind: str, params: dict) -> list[str]:
    return [f"{kind}.{k}={v}" for k, v in params.items()]


def nas_lab(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def one_shot_run(tmp_path_factory, searcher: str, params: dict) -> tuple[str, dict, str]:
    """The summary `nas-lab run` prints for a tiny one-shot run, its run record, and what it wrote on stderr."""
    out_dir = tmp_path_factory.mktemp(searcher)
    code, out, err = nas_lab("run", f"searcher={searcher}", *overrides("searcher", params), "--out", str(out_dir))
    assert code == 0, err
    return out, json.loads(next(out_dir.glob("*.json")).read_text()), err


@pytest.fixture(scope="module")
def spos(tmp_path_factory):
    return one_shot_run(tmp_path_factory, "spos", SPOS)


@pytest.fixture(scope="module")
def darts(tmp_path_factory):
    return one_shot_run(tmp_path_factory, "darts", TINY)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("supernets")


@pytest.fixture
def trainings(monkeypatch):
    """Counts supernet trainings (the real loop still runs)."""
    real, calls = training.train_single_path, []

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_single_path", counting)
    return calls


# -- SPOS and DARTS through `nas-lab run` ---------------------------------------------------------


@pytest.mark.parametrize("which", ["spos", "darts"])
def test_one_shot_searcher_proposes_one_arch_then_finishes(which, request, space):
    out, record, _ = request.getfixturevalue(which)
    report = record["searcher_report"]
    assert record["evaluations"] == 1 and record["note"] == "searcher finished after 1 of 100 evaluations"
    derived = report["derived arch"]
    assert record["best"]["index"] == derived and 0 <= derived < space.cardinality
    assert space.is_valid(space.arch([derived])).all()
    assert 0 <= report["supernet val accuracy %"] <= 100 and report["train images/s"] > 0
    for label in ("C-1", "C-5", "sketch", "OoD mean", "ID+OoD"):  # the derived arch's supernet OoD accuracies
        assert 0 <= report[f"supernet {label} %"] <= 100
    # the derived arch is looked up in the table, as the paper reports one-shot results
    table = TabularObjective(space, "id").report(space.arch([derived]))
    assert record["best"]["metrics"]["id"] == pytest.approx(table["id"][0])
    assert record["best"]["metrics"]["ood.sketch"] == pytest.approx(table["ood.sketch"][0])
    # the summary shows the derived arch, its supernet accuracy and its table accuracies
    assert f"{which:<10} supernet val accuracy %: " in out and f"{which:<10} supernet OoD mean %: " in out
    assert f"best       architecture {derived}: conv.kernel=" in out
    for label in ("ID top-1", "RedIN-C 1", "RedIN-Sketch", "hyvitas-sim: simulated"):
        assert label in out


def test_spos_scores_its_population_and_generations(spos):
    report = spos[1]["searcher_report"]
    assert report["archs scored"] == SPOS["population"] * (1 + SPOS["generations"])
    assert report["seconds"] >= report["train seconds"] + report["search seconds"] > 0


def test_spos_same_seed_derives_the_same_arch(spos):
    cfg = RunConfig(searcher="spos").apply(overrides("searcher", SPOS))
    result = run(*build(cfg), budget=cfg.budget, seed=cfg.seed)
    # exact: the same code on the same inputs in this process (across CPUs or thread counts it could differ)
    assert result.searcher_report["derived arch"] == spos[1]["searcher_report"]["derived arch"]
    assert result.searcher_report["supernet val accuracy %"] == spos[1]["searcher_report"]["supernet val accuracy %"]


def test_darts_reports_a_distribution_per_decision(darts, space):
    report = darts[1]["searcher_report"]
    for name, size in zip(space.names, space.sizes):
        probs = report[f"softmax(alpha) {name}"]
        assert len(probs) == size and sum(probs) == pytest.approx(1, abs=2e-3)
    assert 0 <= report["mixture val accuracy %"] <= 100


def test_darts_alphas_get_gradients_change_and_give_the_arch(space):
    searcher = Darts(**TINY, arch_learning_rate=0.05)  # the default 64 px input for HyViTas
    result = run(space, TabularObjective(space, "id"), searcher, budget=5, seed=0)
    largest = max(float(a.grad.abs().max()) for a in searcher.alphas)
    for name, alpha in zip(space.names, searcher.alphas):
        # options told apart: gradients that differ (rounding alone leaves ~1e-10, see the 32 px test below)
        assert float(alpha.grad.max() - alpha.grad.min()) > 0.01 * largest, name
        assert torch.count_nonzero(alpha) > 0, name  # the Adam steps moved it off its zero start
    derived = [int(a.argmax()) for a in searcher.alphas]
    assert result.best_index == int(space.index(derived))


def test_at_32_px_the_attention_kernel_gets_no_gradient(space):
    """Why HyViTas' default input side is 64: at 32 px every attention kernel covers the whole 2x2 / 1x1 map."""
    searcher = Darts(task=Task(params=(("image_size", "32"),)), **TINY, arch_learning_rate=0.05)
    run(space, TabularObjective(space, "id"), searcher, budget=5, seed=0)
    alphas = dict(zip(space.names, searcher.alphas))
    kernel = alphas.pop("attn.kernel")
    # The three options give the same output, so their gradients are equal: exactly 0 on some CPUs, -7.8e-11
    # each on others (BLAS rounding). "Equal" and "none" are both judged against the other decisions' gradients.
    largest = max(float(a.grad.abs().max()) for a in alphas.values())
    assert largest > 0
    assert float(kernel.grad.max() - kernel.grad.min()) <= 1e-6 * largest
    assert float(kernel.grad.abs().max()) <= 1e-6 * largest
    # so DARTS cannot tell them apart: their logits moved together, while every other decision's spread apart
    spread = min(float((a.max() - a.min()).detach()) for a in alphas.values())
    assert float((kernel.max() - kernel.min()).detach()) <= 0.01 * spread


# -- the supernet objective ------------------------------------------------------------------------


def test_supernet_objective_trains_once_then_reads_its_disk_cache(space, cache_dir, trainings):
    archs = space.sample(np.random.default_rng(0), 2)
    first = SupernetObjective(space, "id", **TINY, cache=str(cache_dir))
    ev = first.evaluate(archs, np.random.default_rng(0))
    assert len(trainings) == 1 and first.path.is_file() and first.path.parent == cache_dir
    assert not list(cache_dir.glob(".*.tmp")), "a temporary file was left behind"
    assert ((0 <= ev.values) & (ev.values <= 100)).all() and (ev.cost > 0).all()

    again = SupernetObjective(space, "id", **TINY, cache=str(cache_dir))
    # exact: the same weights through the same code in this process
    np.testing.assert_array_equal(again.evaluate(archs, np.random.default_rng(1)).values, ev.values)
    assert len(trainings) == 1, "the second objective trained instead of reading the cache"
    assert again.info()["train_seconds"] == first.info()["train_seconds"]
    other = SupernetObjective(space, "id", **{**TINY, "epochs": 2}, cache=str(cache_dir))
    assert other.path != first.path and SupernetObjective(space, "id", seed=1, cache=str(cache_dir)).path != first.path


def test_rea_searches_on_a_supernet_and_reports_supernet_and_table_metrics(space, cache_dir, tmp_path):
    code, out, err = nas_lab("run", "searcher=rea", "objective=supernet.id", "budget=3", f"objective.cache={cache_dir}",
                             *overrides("objective", TINY), "--out", str(tmp_path))
    assert code == 0, err
    assert "budget     3 of 3 distinct architectures evaluated" in out
    for label in ("supernet val top-1", "supernet C-5", "supernet sketch", "table ID top-1", "CPU-seconds"):
        assert label in out
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    metrics = record["best"]["metrics"]
    for m in METRICS:
        assert 0 <= metrics[m] <= 100, m
    assert max(v for v, in record["history"]["value"]) == metrics["id"]
    assert metrics["ood"] == pytest.approx(np.mean([metrics[m] for m in ("ood.c1", "ood.c5", "ood.sketch")]))
    assert metrics["id+ood"] == pytest.approx((metrics["id"] + metrics["ood"]) / 2)
    table = TabularObjective(space, "id").report(space.arch([record["best"]["index"]]))
    assert metrics["table.id"] == pytest.approx(table["id"][0])
    assert metrics["table.ood.sketch"] == pytest.approx(table["ood.sketch"][0])


def test_supernet_objective_names_metrics_and_measures_table_ones(space, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path))
    objective = SupernetObjective(space, "id+ood")
    assert objective.path.parent == tmp_path / "supernets"
    assert (objective.name, objective.targets, objective.directions) == (
        "supernet.id+ood", ("supernet.id+ood",), ("max",))
    assert objective.label("table.id") == "table ID top-1" and objective.label("ood.c5") == "supernet C-5"
    arch = space.sample(np.random.default_rng(3), 1)
    assert objective.measure("table.id", arch) == TabularObjective(space, "id").report(arch)["id"]
    assert not list(tmp_path.iterdir()), "naming and table lookups must not train a supernet"


def test_a_damaged_cache_file_is_named(space, tmp_path):
    objective = SupernetObjective(space, "id", **TINY, cache=str(tmp_path))
    objective.path.write_bytes(b"not a supernet")
    with pytest.raises(UserError, match="is not the cached supernet its name says .*; delete it"):
        objective.evaluate(space.sample(np.random.default_rng(0), 1), np.random.default_rng(0))


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    # zc.params: an objective NB201 has without its table, so that the searcher is what gets refused
    (["searcher=spos", "space=nb201", "objective=zc.params"], "searcher 'spos' needs a space that offers supernet"),
    (["searcher=darts", "space=nb201", "objective=zc.params"], "searcher 'darts' needs a space that offers supernet"),
    (["searcher=rea", "space=nb201", "objective=supernet.id"],
     "objective 'supernet.id' needs a space that offers supernet"),
    (["searcher=darts", "searcher.second_order=true"], "searcher.second_order=true"),
    (["searcher=spos", "searcher.epochs=0"], "searcher.epochs must lie in 1..100,000, got 0"),
    (["searcher=spos", "searcher.parents=30"], "searcher.parents must lie in 1..20 (population), got 30"),
    (["objective=supernet.latency"], "unknown supernet metric 'latency'; valid: id, ood.c1"),
    (["searcher=spos", "dataset.channels=1"], "supernets take RGB images"),
])
def test_bad_one_shot_input_exits_2_with_one_sentence(args, message):
    code, _, err = nas_lab("run", *args, "--no-save")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("args", [["searcher=spos"], ["searcher=darts"], ["objective=supernet.id"]])
def test_cuda_without_a_gpu_exits_2(args):
    code, _, err = nas_lab("run", *args, "device=cuda", "--no-save")
    assert code == 2 and "device=cuda was asked for but torch finds no CUDA GPU" in err
    assert len(err.strip().splitlines()) == 1


# -- progress bars --------------------------------------------------------------------------------


@pytest.mark.parametrize("which, bars", [("spos", ("SPOS supernet training", "SPOS evolution")),
                                         ("darts", ("DARTS bilevel search",))])
def test_one_shot_runs_show_progress_bars_on_stderr(which, bars, request):
    err = request.getfixturevalue(which)[2]  # stderr is no terminal here: the bars are there because `run` asks
    for bar in bars:
        assert bar in err, err
    assert "img/s" in err and "epoch 1/1 batch 0/2" in err  # training counts images: rate and ETA in images


@pytest.fixture
def shows(monkeypatch):
    """What each supernet training was told about its bar; the training itself is cut short by a Ctrl-C."""
    seen = []

    def stub(*args, show=False, **kwargs):
        seen.append(args[-1] if len(args) > 6 else show)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_weights", stub)
    return seen


def test_no_progress_and_study_workers_turn_the_training_bars_off(shows, tmp_path):
    import yaml

    for which in ("darts", "spos"):
        assert nas_lab("run", f"searcher={which}", "--no-save")[0] == 130
        assert nas_lab("run", f"searcher={which}", "--no-save", "--no-progress")[0] == 130
    config = tmp_path / "spos.yaml"
    config.write_text(yaml.safe_dump({"name": "spos", "budget": 10, "repeats": 1, "objectives": ["id"],
                                      "searchers": {"spos": SPOS}}))
    assert nas_lab("study", str(config), f"out={tmp_path / 'out'}", "workers=1")[0] == 130
    assert shows == [True, False, True, False, False]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_cached_supernet_with_weights_that_are_not_finite_is_refused_not_scored(space, tmp_path, value):
    """It scored every arch 10 % (chance on digits) without a word."""
    objective = SupernetObjective(space, "id", **TINY, cache=str(tmp_path))
    archs = space.sample(np.random.default_rng(0), 2)
    objective.evaluate(archs, np.random.default_rng(0))
    saved = torch.load(objective.path, weights_only=True)
    name = next(n for n, t in saved["state_dict"].items() if t.is_floating_point())
    saved["state_dict"][name].view(-1)[0] = value
    torch.save(saved, objective.path)
    again = SupernetObjective(space, "id", **TINY, cache=str(tmp_path))
    with pytest.raises(UserError, match=rf"^the cached supernet {re.escape(str(objective.path))} has weights that are "
                                        rf"not finite \({re.escape(name)}\), so every arch would score alike; "
                                        r"delete it"):
        again.evaluate(archs, np.random.default_rng(0))


def test_a_supernet_whose_training_diverged_is_refused_and_not_cached(space, tmp_path, monkeypatch):
    real = training.train_single_path

    def diverging(net, *args, **kwargs):
        out = real(net, *args, **kwargs)
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(training, "train_single_path", diverging)
    objective = SupernetObjective(space, "id", **TINY, cache=str(tmp_path))
    with pytest.raises(UserError, match="^training the supernet diverged: its weight .* is no longer finite"):
        objective.evaluate(space.sample(np.random.default_rng(0), 1), np.random.default_rng(0))
    # nothing cached, no checkpoint: only the training's log stays, where the diverging loss can be looked at
    assert not objective.path.exists() and [p.suffix for p in tmp_path.iterdir()] == [".logs"]
