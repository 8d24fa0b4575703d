"""The zero-cost objective and its cache: round trips, key separation, concurrent writers, corrupt files,
no recomputation, end-to-end runs and studies with tabular reports, precompute, and bad input (exit 2).

Cheap proxies only (``params``, ``flops``); the proxies' own values are checked in their own tests.
"""

import json
import multiprocessing
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core import registry
from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.runner import run
from nas_lab.objectives.zero_cost import proxies
from nas_lab.objectives.zero_cost.cache import CacheKey, ProxyCache, cache_path
from nas_lab.objectives.zero_cost.precompute import sample_indices
from nas_lab.spaces.nb201 import NB201Space

ROOT = Path(__file__).resolve().parents[1]
KEY = CacheKey("nb201", "params", 1, 0, 32, 64)


def nas_lab(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    """A fresh cache file, also the default location (``$NAS_LAB_CACHE``) for workers and the CLI."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "zero_cost.sqlite"


@pytest.fixture
def calls(monkeypatch):
    """Counts ``evaluate_proxy`` calls (the real one still computes)."""
    real, seen = proxies.evaluate_proxy, []

    def counting(space, arch, proxy, **kw):
        seen.append((space.name, int(space.index(arch)), proxy))
        return real(space, arch, proxy, **kw)

    monkeypatch.setattr(proxies, "evaluate_proxy", counting)
    return seen


# -- the cache ---------------------------------------------------------------------


def test_cache_round_trip_keeps_values_seconds_and_nan(tmp_path):
    writer = ProxyCache(tmp_path / "c.sqlite")
    writer.store(KEY, [7, 3, 11], [1.5, np.nan, -2.25], [0.1, 0.2, 0.3])
    writer.store(KEY, [7], [99.0], [9.9])  # a value already there is kept
    values, seconds, found = ProxyCache(tmp_path / "c.sqlite").lookup(KEY, [11, 5, 7, 3, 7])
    np.testing.assert_array_equal(found, [True, False, True, True, True])
    np.testing.assert_array_equal(values, [-2.25, np.nan, 1.5, np.nan, 1.5])
    np.testing.assert_array_equal(seconds, [0.3, np.nan, 0.1, 0.2, 0.1])
    assert sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("field, other", [("seed", 1), ("resolution", 16), ("version", 2), ("batch_size", 32),
                                          ("proxy", "flops"), ("space", "hyvitas"), ("nas_lab", "0.0.1")])
def test_each_part_of_the_key_separates_values(tmp_path, field, other):
    cache = ProxyCache(tmp_path / "c.sqlite")
    cache.store(KEY, [1, 2], [10.0, 20.0], [1.0, 1.0])
    changed = CacheKey(**{**KEY.__dict__, field: other})
    assert not cache.lookup(changed, [1, 2])[2].any()
    cache.store(changed, [1], [-1.0], [1.0])
    assert cache.lookup(changed, [1])[0][0] == -1.0 and cache.lookup(KEY, [1])[0][0] == 10.0


def test_location_is_the_setting_else_the_environment_else_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path / "env"))
    assert cache_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    assert cache_path() == tmp_path / "env" / "zero_cost.sqlite"
    monkeypatch.delenv("NAS_LAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_path() == Path.home().resolve() / ".cache" / "nas_lab" / "zero_cost.sqlite"


def _write_range(path, start, count, barrier, errors):
    """One writer process: open the cache with the others, then one transaction per value, overlapping their ranges."""
    try:
        cache = ProxyCache(path)
        barrier.wait()
        for i in range(start, start + count):
            cache.store(KEY, [i], [i * 0.5], [0.01])
    except Exception as exc:  # noqa: BLE001 - reported to the test
        errors.put(f"{type(exc).__name__}: {exc}")


def _writers(path, starts, count=300) -> list[str]:
    """Run one ``_write_range`` process per start, all released at once; their errors."""
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(len(starts)), ctx.Queue()
    procs = [ctx.Process(target=_write_range, args=(str(path), s, count, barrier, errors)) for s in starts]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    return [errors.get() for _ in range(errors.qsize())]


def test_concurrent_writers_never_corrupt_and_every_value_lands(tmp_path):
    path = tmp_path / "c.sqlite"
    assert _writers(path, [0, 150, 300, 450]) == []
    values, _, found = ProxyCache(path).lookup(KEY, np.arange(750))
    assert found.all()
    np.testing.assert_array_equal(values, np.arange(750) * 0.5)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM proxy_values").fetchone()[0] == 750


def test_processes_creating_a_new_cache_at_the_same_moment_all_succeed(tmp_path, monkeypatch):
    # switching a new file to WAL ignores the busy timeout; without the retry this test failed now and then
    monkeypatch.setattr("nas_lab.objectives.zero_cost.cache.BUSY_SECONDS", 5.0)
    for trial in range(15):
        assert _writers(tmp_path / f"new{trial}.sqlite", [0] * 8, count=2) == []


def test_a_corrupt_cache_file_is_a_user_error_saying_to_delete_it(tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not an SQLite database, just some bytes " * 100)
    with pytest.raises(UserError, match=rf"zero-cost cache {bad} is corrupt or unreadable .*; delete it"):
        ProxyCache(bad).lookup(KEY, [1])
    code, out, err = nas_lab(capsys, "run", "objective=zc.params", "space=nb201", "budget=3", f"objective.cache={bad}",
                             "--no-save")
    assert code == 2 and out == "" and str(bad) in err and "delete it" in err
    assert len(err.strip().splitlines()) == 1


def test_another_sqlite_database_is_refused_not_altered(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(UserError, match="is an SQLite database but not a nas_lab zero-cost cache"):
        ProxyCache(other).lookup(KEY, [1])
    assert [r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")] == ["notes"]


# -- the objective -----------------------------------------------------------------


def test_a_second_run_computes_nothing_and_costs_the_same(cache_file, calls):
    def search():
        space, objective, _ = build(RunConfig(space="nb201", objective="zc.params"))
        return space, run(space, objective, registry.create("searcher", "random", {}), budget=8, seed=3)

    space, first = search()
    assert len(calls) == 8 and {c[2] for c in calls} == {"params"}
    _, second = search()  # a new objective, as a new process would build: only the file is shared
    assert len(calls) == 8
    np.testing.assert_array_equal(second.history["index"], first.history["index"])
    np.testing.assert_array_equal(second.history["value"], first.history["value"])
    np.testing.assert_array_equal(second.history["cost"], first.history["cost"])  # the stored compute seconds
    assert (first.history["cost"] > 0).all() and cache_file.is_file()
    # the values are the models' real parameter counts
    np.testing.assert_array_equal(first.history["value"][:, 0], space.params(space.arch(first.history["index"])))


def test_the_objective_declares_what_it_is(cache_file):
    space, objective, _ = build(RunConfig(space="hyvitas", objective="zc.naswot"))
    assert (objective.name, objective.targets, objective.directions) == ("zc.naswot", ("zc.naswot",), ("max",))
    assert (objective.cheap is False and objective.needs == ("build", "num_classes", "rectifiers")
            and objective.cost_unit == "CPU-seconds")
    info = objective.info()
    assert {k: info[k] for k in ("family", "proxy", "proxy_version", "seed", "resolution", "batch_size", "device")} == {
        "family": "zc", "proxy": "naswot", "proxy_version": 1, "seed": 0, "resolution": 64, "batch_size": 64,
        "device": "cpu"}
    assert info["cache"] == str(cache_file) and info["table"] == "hyvitas-sim" and info["simulated"] is True
    assert "maximise zc.naswot" in objective.describe() and "64x64" in objective.describe()


def test_the_batch_is_the_spaces_unless_given(cache_file):
    """Pool-ViT's proxies default to batch 8 (its ``zero_cost_batch``), the other spaces to 64; a given batch wins."""
    def batch(space, *params):
        cfg = RunConfig(space=space, objective="zc.entropic")
        for p in params:
            cfg.set(*p.split("="))
        objective = build(cfg)[1]
        return getattr(objective, "inner", objective).key("entropic").batch_size  # poolvit's cap wraps it

    assert (batch("poolvit"), batch("hyvitas"), batch("poolvit", "objective.batch_size=16")) == (8, 64, 16)


def test_a_proxy_the_space_cannot_serve_is_refused_before_the_run(cache_file):
    """AutoViT's models activate with SiLU only, so NASWOT has no rectifier codes to read: refused up front."""
    space, objective, searcher = build(RunConfig(space="autovit", objective="zc.naswot", searcher="random"))
    assert "rectifiers" not in space.capabilities() and "rectifiers" in objective.needs
    with pytest.raises(UserError, match=r"^objective 'zc.naswot' needs a space that offers rectifiers, but space "
                                        r"'autovit-xxs' offers only build, crossover, "):
        run(space, objective, searcher, budget=2, seed=0)
    assert build(RunConfig(space="autovit", objective="zc.synflow"))[1].needs == ("build", "num_classes")


def test_building_the_objective_imports_no_torch(cache_file):
    code = ("import sys; from nas_lab.core.config import RunConfig, build; "
            "build(RunConfig(objective='zc.naswot')); "
            "build(RunConfig(objective='zc.params', constraints=['params<=2e6'])); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_constraints_on_table_metrics_and_other_proxies(cache_file):
    def search(constraints):
        space, objective, _ = build(RunConfig(space="hyvitas", objective="zc.params", constraints=constraints))
        return run(space, objective, registry.create("searcher", "random", {}), budget=6, seed=0)

    free, bounded = search([]), search(["params<=1.5e6", "zc.flops>=1"])
    values = free.history["value"][:, 0]  # the same six archs: the searcher's stream does not depend on the bound
    assert free.best_metrics["params"] == values.max() > 1.5e6
    assert bounded.best_metrics["params"] == values[values <= 1.5e6].max()
    assert bounded.best_metrics["zc.flops"] >= 1 and bounded.history["feasible"].sum() == (values <= 1.5e6).sum()


# -- end to end ----------------------------------------------------------------------


def test_run_on_nb201_reports_the_found_archs_test_accuracies(cache_file, capsys, shared_data):
    code, out, err = nas_lab(capsys, "run", "objective=zc.params", "space=nb201", "budget=5", f"table={shared_data}",
                             "--no-save")
    assert code == 0, err
    for needle in ("objective  maximise zc.params", "table      nb201: NATS-Bench", "zc.params", "CIFAR-10 test",
                   "CIFAR-100 test", "ImageNet16-120 test", "CPU-seconds"):
        assert needle in out


def test_run_on_hyvitas_reports_id_and_ood_accuracies(cache_file, capsys):
    code, out, err = nas_lab(capsys, "run", "objective=zc.params", "budget=5", "--json", "--no-save")
    assert code == 0, err
    d = json.loads(out)
    best = d["best"]["metrics"]
    assert {"zc.params", "id", "ood.c1", "ood.c5", "ood.sketch", "ood.stylized"} <= best.keys()
    assert best["zc.params"] == best["params"] == max(v for v, in d["history"]["value"])
    assert d["cost"]["unit"] == "CPU-seconds" and d["objective_info"]["table"] == "hyvitas-sim"


def test_zero_shot_study_reports_tabular_accuracies_of_the_found_archs(cache_file, capsys, tmp_path):
    code, out, err = nas_lab(capsys, "study", str(ROOT / "experiments" / "hyvitas_zeroshot.yaml"), "repeats=2",
                             "budget=5", "objectives=zc.params", "searchers=random,rea", f"out={tmp_path / 'study'}",
                             "workers=2",
                             "--no-progress")
    assert code == 0, err
    assert "4 runs now" in out
    for needle in ("Random search (zc.params)", "REA (zc.params)", "ID top-1", "RedIN-C 1", "RedIN-Sketch",
                   "RedStylized-IN"):
        assert needle in out


def test_precompute_fills_then_skips(cache_file, capsys):
    args = ("precompute", "space=nb201", "proxies=params,flops", "sample=6", "seed=2", "workers=2", "--no-progress")
    code, out, err = nas_lab(capsys, *args)
    assert code == 0, err
    assert "computed 12 values" in out and "already cached       0" in out and str(cache_file) in out
    space = NB201Space()
    values, _, found = ProxyCache(cache_file).lookup(CacheKey("nb201", "params", 1, 2, 32, 64),
                                                     sample_indices(space, 6, 2))
    assert found.all()
    np.testing.assert_array_equal(values, space.params(space.arch(sample_indices(space, 6, 2))))
    code, out, _ = nas_lab(capsys, *args)
    assert code == 0 and "computed 0 values" in out and out.count("already cached       6") == 2


def test_samples_are_fixed_and_nested():
    space = NB201Space()
    small, large = sample_indices(space, 20, 0), sample_indices(space, 200, 0)
    assert len(set(small)) == 20 and set(small) <= set(large)
    np.testing.assert_array_equal(small, sample_indices(space, 20, 0))
    assert set(small) != set(sample_indices(space, 20, 1))


@pytest.mark.parametrize("args, message", [
    (["run", "objective=zc.nope"], "unknown zero-cost proxy 'nope'; valid: entropic, flops, grad_norm, jacob_cov"),
    (["run", "objective=zc.params", "objective.batch_size=0"], "objective.batch_size must lie in 1..4,096, got 0"),
    (["run", "objective=zc.params", "objective.device=tpu"], "device must be cpu, cuda or cuda:N, got 'tpu'"),
    (["run", "objective=zc.params", "objective.seeds=mean"],
     "objective 'zc' has no parameter seeds; valid: objective.seed"),
    (["run", "objective=zc.params", "constraint=latency.nope<=3"], "has no metric 'latency.nope'"),
    (["precompute", "space=nb201"], "say which proxies with proxies=a,b; valid: entropic"),
    (["precompute", "proxies=params,nope"], "unknown zero-cost proxy 'nope'"),
    (["precompute", "proxies=params", "sample=0"], "sample must lie in 1..1,000,000, got 0"),
    (["precompute", "proxies=params", "sample=7000"], "sample must lie in 1..6561"),
    (["precompute", "proxies=params", "space=nb201", "sample=20000"], "sample must lie in 1..15625"),
    (["precompute", "proxies=params", "sample=x"], "sample must be a whole number, got 'x'"),
    (["precompute", "proxies=params", "samples=3"],
     "unknown setting 'samples' of `nas-lab precompute`; valid: space, proxies"),
    (["precompute", "proxies=params", "resolution=-1"], "resolution must lie in 1..4,096, got -1"),
    (["precompute", "proxies=params", "resolution=16"], "resolution must be from 32 to 2048 px for space 'hyvitas'"),
    (["precompute", "proxies=params", "executor=dask"], "executor must be one of local, ray, got 'dask'"),
    (["precompute", "proxies=params", "space=nope"], "unknown space 'nope'"),
    (["precompute", "proxies"], "override 'proxies' is not key=value"),
])
def test_bad_input_is_one_sentence_and_exit_2(cache_file, capsys, args, message):
    code, out, err = nas_lab(capsys, *args, *(["--no-save"] if args[0] == "run" else []))
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cuda_without_cuda_is_a_clear_user_error(cache_file, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out, err = nas_lab(capsys, "run", "objective=zc.params", "objective.device=cuda", "--no-save")
    assert code == 2 and "device 'cuda' is not available: torch sees 0 CUDA device(s) here; use device=cpu" in err


def test_cache_keeps_indices_past_64_bits_exactly(tmp_path):
    from nas_lab.objectives.zero_cost.cache import CacheKey, ProxyCache

    cache = ProxyCache(tmp_path / "zc.sqlite")
    key = CacheKey("big", "params", 1, 0, 32, 8)
    big = [3 * 10 * 401**16 - 1, 2**63, 5]  # ViTAS-sized, just past int64, and a plain one
    cache.store(key, big, [1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    values, _, found = cache.lookup(key, [2**63, 2**63 + 1, 3 * 10 * 401**16 - 1, 5])
    assert found.tolist() == [True, False, True, True]
    assert values[[0, 2, 3]].tolist() == [2.0, 1.0, 3.0]  # stored floats read back as they were


@pytest.mark.parametrize("name", ["poolvit", "vitas", "autovit"])
def test_samples_of_spaces_too_large_to_list_are_drawn_in_memory_flat_in_the_cardinality(name):
    """Listing 10^9 (AutoViT) to 10^43 (ViTAS) archs asked for 10 GiB to 5 EiB; a draw holds only the sample."""
    import tracemalloc

    space = registry.create("space", name, {})
    assert not space.enumerable
    tracemalloc.start()
    try:
        small, large = sample_indices(space, 5, 0), sample_indices(space, 300, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    assert len(set(large.tolist())) == 300 and set(small.tolist()) <= set(large.tolist())
    assert list(large) == sorted(large) and space.is_valid(space.arch(large)).all()
    np.testing.assert_array_equal(space.index(space.arch(large)), large)  # representatives, numbered as the space does
    np.testing.assert_array_equal(small, sample_indices(space, 5, 0))
    assert set(small.tolist()) != set(sample_indices(space, 5, 1).tolist())


def test_samples_of_small_spaces_are_a_seeded_permutation_of_the_valid_archs():
    """The cache's archs stay those of earlier versions: the first ``sample`` of a seeded permutation."""
    space = NB201Space()
    expected = np.sort(np.random.default_rng(3).permutation(np.arange(space.cardinality))[:40])
    np.testing.assert_array_equal(sample_indices(space, 40, 3), expected)


def test_precompute_samples_a_space_past_int64_and_refuses_to_take_all_of_it(cache_file, capsys):
    code, out, err = nas_lab(capsys, "precompute", "space=vitas", "proxies=params", "sample=3", "workers=1",
                             "--no-progress")
    assert code == 0, err
    assert "precompute vitas: 1 proxies x 3 archs" in out and "computed 3 values" in out
    code, out, err = nas_lab(capsys, "precompute", "space=poolvit", "proxies=params", "--no-progress")
    assert code == 2 and out == ""
    assert err == ("nas-lab: error: space 'poolvit' has 766,149,108,684,696,000 archs, too many to take every one; "
                   "give sample=N to draw N of them\n")


@pytest.mark.parametrize("pragma, words", [("max_page_count", "the disk is full"),
                                           ("query_only", "it is read-only (the file, its folder or the disk)")])
def test_a_full_or_read_only_cache_is_named_so_not_called_corrupt_and_keeps_its_values(tmp_path, pragma, words):
    """SQLite's own limits give the real errors: a page limit is a full disk (SQLITE_FULL), query_only a
    read-only database (SQLITE_READONLY); both were reported as a corrupt cache to delete."""
    path = tmp_path / "zc.sqlite"
    cache = ProxyCache(path)
    cache.store(KEY, [1, 2], [0.5, 1.5], [0.1, 0.1])
    conn = cache._connection()
    if pragma == "max_page_count":
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    else:
        conn.execute("PRAGMA query_only = 1")
    with pytest.raises(UserError, match=rf"^cannot use the zero-cost cache {re.escape(str(path))}: {re.escape(words)}; "
                                        r"free space or make it writable"):
        cache.store(KEY, range(3, 3000), np.ones(2997), np.ones(2997))
    values, _, found = ProxyCache(path).lookup(KEY, [1, 2, 3])
    assert found.tolist() == [True, True, False] and values[:2].tolist() == [0.5, 1.5]
