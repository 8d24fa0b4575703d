"""Latency look-up tables: the block contract of the spaces, the sum, the key, bad tables, resuming, the objective.

Tables measured here take one untimed-free timed call per block (``warmup=0 repeats=1 rounds=1``) on NB201's
19 blocks: what is checked is the bookkeeping, never a time.
"""

import errno
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.objectives.latency import allocator, measure
from nas_lab.objectives.latency.objective import LatencyObjective
from nas_lab.objectives.latency.table import UNRECORDED, LatencyTable, TableKey, entry, locate
from nas_lab.spaces.autovit.space import AutoViTSpace
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space

TINY = {"warmup": 0, "repeats": 1, "rounds": 1, "calibrate": 2, "progress": False}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Tables go to a fresh folder in every test."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "latency"


def fake_table(space, times=None, offset_models=1, **key) -> LatencyTable:
    """A complete table of made-up times (block i takes ``i + 1`` ms unless ``times`` says) and factor 1, written
    where a lookup looks; no torch."""
    k = TableKey.current(space, **key)
    blocks = space.latency_blocks(k.resolution)
    times = np.arange(1.0, len(blocks) + 1) if times is None else times
    archs = space.sample(np.random.default_rng(0), offset_models)
    summed = np.append(times, 0.0)[space.latency_slots(archs)].sum(axis=1)  # measured = summed: factor 1
    table = LatencyTable(k.default_path(), k, {entry(n, s): [float(t)] for (n, s), t in zip(blocks, times)},
                         {"indices": [str(i) for i in space.index(archs)], "measured": [[float(t)] for t in summed]},
                         {"warmup": 0, "repeats": 1, "rounds": 1, "calibrate": offset_models, "seed": 0})
    table.write()
    return table


def refused(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas-lab: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


# -- the block contract ----------------------------------------------------------------------------------

@pytest.mark.parametrize("space", [NB201Space(), HyViTasSpace(), AutoViTSpace(setting="cpu", per_layer=True)],
                         ids=lambda s: s.name)
def test_blocks_cover_the_model_once(space):
    """Chained, an arch's blocks take the input shapes the table lists and end in logits; their parameters add up
    to the space's closed-form count, so every layer of the model is in exactly one block."""
    import torch

    side = 64 if space.name == "hyvitas" else 32
    blocks = space.latency_blocks(side)
    assert len(set(blocks)) == len(blocks)
    for arch in space.sample(np.random.default_rng(1), 1):
        x = torch.zeros(1, 3, side, side)
        params = 0
        for i in space.latency_slots(arch[None])[0]:
            if i < 0:  # a layer or stage the arch skips
                continue
            name, shape = blocks[i]
            if space.name == "nb201" and name.split("(")[0] in ("none", "skip_connect", "nor_conv_1x1",
                                                                 "nor_conv_3x3", "avg_pool_3x3"):
                assert tuple(x.shape[1:]) == shape  # a cell's edges all read the stage's tensor; x moves per stage
                params += sum(p.numel() for p in space.latency_module(name).parameters())
                continue
            assert tuple(x.shape[1:]) == shape, name
            module = space.latency_module(name).eval()
            params += sum(p.numel() for p in module.parameters())
            with torch.no_grad():
                x = module(x)
        assert x.shape == space.build(arch).eval()(torch.zeros(1, 3, side, side)).shape
        assert params == space.params(arch[None])[0]


def test_autovit_blocks_follow_depth_and_stages():
    """AutoViT: 42 slots, a transformer layer's slot empty beyond its stage's depth and all of T-4's with 3 stages;
    every listed block is reachable."""
    space = AutoViTSpace()
    archs = space.sample(np.random.default_rng(2), 3000)
    slots = space.latency_slots(archs)
    plan = space.plan(archs)
    assert slots.shape == (3000, 42)
    layers = slots[:, 9:41].reshape(3000, 4, 8)[:, :, 2:7]  # after stem and 8 MBConvs, per stage: down, enter,
    # 5 layers, leave
    np.testing.assert_array_equal(layers >= 0, plan["hidden"] > 0)
    np.testing.assert_array_equal(slots[:, 33:35] >= 0, (plan["t_depth"][:, 3] > 0)[:, None].repeat(2, axis=1))
    assert len(np.unique(slots[slots >= 0])) == len(space.latency_blocks(256))


def test_slots_are_the_archs_decisions():
    """HyViTas: 17 slots; the stage-1 blocks follow conv.kernel, and 141 distinct blocks are all reachable."""
    space = HyViTasSpace()
    slots = space.latency_slots(space.all_archs())
    assert slots.shape == (6561, 17) and len(np.unique(slots)) == len(space.latency_blocks(160)) == 141
    names = [n for n, _ in space.latency_blocks(160)]
    arch = space.from_values({"conv.kernel": 5, "conv.expansion": 2, "attn.kernel": 3, "attn.expansion": 4,
                              "stage1.dim": 32, "stage2.dim": 64, "stage3.dim": 128, "stage4.dim": 192})
    assert [names[i] for i in space.latency_slots(arch[None])[0][:3]] == ["stem(dim=32)"] + [
        "convnext(dim=32,kernel=5,expansion=2)"] * 2


# -- building and the sum ---------------------------------------------------------------------------------

def test_prediction_is_the_sum_of_the_measured_entries(cache):
    space = NB201Space()
    key = TableKey.current(space)
    table, taken = measure.build(space, key, **TINY)
    assert taken == 19 + 2
    stored = json.loads(key.default_path().read_text())
    archs = space.sample(np.random.default_rng(5), 20)
    blocks = space.latency_blocks(32)
    by_hand = np.array([sum(stored["entries"][entry(*blocks[i])][0] for i in row)
                        for row in space.latency_slots(archs)])
    np.testing.assert_allclose(table.predict(space, archs, corrected=False), by_hand, rtol=1e-12)
    ratio = np.median([m[0] / s for m, s in zip(stored["calibration"]["measured"],
                                                 table.predict(space, space.arch(np.array(
                                                     [int(i) for i in stored["calibration"]["indices"]])),
                                                     corrected=False))])
    np.testing.assert_allclose(table.predict(space, archs), ratio * by_hand, rtol=1e-12)
    assert locate(space).predict(space, archs) == pytest.approx(table.predict(space, archs), rel=1e-12)


def test_correction_is_the_line_through_the_calibration_models(cache):
    """From three calibration models on, the correction is the least-squares line (non-negative scale and offset)
    through their summed and measured latencies: exact when they lie on one."""
    space = NB201Space()
    table = fake_table(space, offset_models=6)
    summed = table.predict(space, space.arch(np.array([int(i) for i in table.calibration["indices"]])),
                           corrected=False)
    table.calibration["measured"] = [[1.25 * t + 1.5] for t in summed]  # a per-model constant of 1.5 ms
    table.write()
    correction = LatencyTable.read(table.path).correction(space)
    assert (correction.scale, correction.offset) == pytest.approx((1.25, 1.5), rel=1e-9)
    archs = space.sample(np.random.default_rng(1), 10)
    assert LatencyTable.read(table.path).predict(space, archs) == pytest.approx(
        1.25 * table.predict(space, archs, corrected=False) + 1.5, rel=1e-9)


def test_build_resumes_after_an_interruption(cache, monkeypatch):
    space = NB201Space()
    key = TableKey.current(space)
    real, calls = measure.time_module, []

    def interrupted(*args):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(measure, "time_module", interrupted)
    with pytest.raises(KeyboardInterrupt):
        measure.build(space, key, **TINY)
    kept = json.loads(key.default_path().read_text())["entries"]
    assert sum(len(v) for v in kept.values()) == 7
    with pytest.raises(UserError, match="incomplete.*nas-lab lut build space=nb201"):
        locate(space)
    monkeypatch.setattr(measure, "time_module", real)
    table, taken = measure.build(space, key, **TINY)
    assert taken == 19 + 2 - 7
    assert all(table.entries[k] == v for k, v in kept.items() if v)  # what was measured is kept, not remeasured
    locate(space)


def test_cli_build_and_validate(tmp_path, capsys):
    assert main(["lut", "build", "space=nb201", "warmup=0", "repeats=1", "rounds=1", "calibrate=2",
                 "--no-progress"]) == 0
    assert "19 blocks and 2 whole models" in capsys.readouterr().out
    out = tmp_path / "val"
    assert main(["lut", "validate", "space=nb201", "sample=3", f"out={out}", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Spearman rho" in text and "within +-10 %" in text
    assert (out / "validate.png").stat().st_size > 0 and len((out / "validate.csv").read_text().splitlines()) == 4


def test_one_process_at_a_time_measures_a_table(capsys):
    """A second build or validation of a table being measured would time the first one's load: refused, naming
    the holder; once the holder is gone (killed, so its lock file stays), the build goes ahead."""
    space = NB201Space()
    path = TableKey.current(space).default_path()
    fake_table(space, offset_models=3)
    code = (f"from nas_lab.core.lock import ExclusiveLock; ExclusiveLock({str(path) + '.lock'!r}).acquire(); "
            "print('locked', flush=True); import time; time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        for command in (["lut", "build", "space=nb201"], ["lut", "validate", "space=nb201", "sample=3"]):
            err = refused(capsys, *command, "--no-progress")
            assert f"latency table {path} is being measured by process {proc.pid} on host" in err
    finally:
        proc.kill()
        proc.wait()
    path.unlink()
    assert main(["lut", "build", "space=nb201", "warmup=0", "repeats=1", "rounds=1", "calibrate=2",
                 "--no-progress"]) == 0


# -- bad tables and bounds ---------------------------------------------------------------------------------

def test_missing_table_names_the_command(capsys):
    err = refused(capsys, "run", "space=nb201", "objective=latency", "--no-save")
    assert "no latency table for space 'nb201'" in err and "nas-lab lut build space=nb201" in err


def test_stale_table_is_refused(capsys):
    space = NB201Space()
    fake_table(space, resolution=16)
    err = refused(capsys, "run", "space=nb201", "objective=latency", "--no-save")
    assert "built for other settings (resolution 16 (here 32))" in err
    assert "nas-lab lut build space=nb201 threads=1 resolution=32" in err
    fake_table(space)  # the right one: now it runs
    assert main(["run", "space=nb201", "objective=latency", "budget=5", "--no-save"]) == 0


def test_table_of_other_blocks_is_refused(cache):
    space = NB201Space()
    table = fake_table(space)
    data = json.loads(table.path.read_text())
    data["key"]["blocks"] = "0" * 16
    table.path.write_text(json.dumps(data))
    with pytest.raises(UserError, match="other blocks"):
        locate(space, path=str(table.path))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "negative"])
def test_corrupt_table_is_refused(capsys, damage):
    table = fake_table(NB201Space())
    text = table.path.read_text()
    if damage == "truncate":
        table.path.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        table.path.write_bytes(b"\x00\xff not json")
    else:
        data = json.loads(text)
        data["entries"][next(iter(data["entries"]))] = [-1.0]
        table.path.write_text(json.dumps(data))
    err = refused(capsys, "run", "space=nb201", "objective=latency", "--no-save")
    assert "is not a nas_lab latency table" in err and "nas-lab lut build" in err


def test_table_timed_under_another_allocator_is_stale(cache):
    """A table from before the allocator policy was recorded (no ``allocator`` in its key) is built again."""
    space = NB201Space()
    table = fake_table(space)
    data = json.loads(table.path.read_text())
    del data["key"]["allocator"]
    table.path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=f"allocator {UNRECORDED} \\(here {re.escape(allocator.policy())}\\)"):
        locate(space, path=str(table.path))


def test_steady_allocator_keeps_freed_memory():
    """Timing holds glibc's allocator steady: a freed 40 MB buffer is reused rather than handed back to the kernel
    and faulted in again on the next call (checked in fresh processes, with and without the policy)."""
    if allocator.policy() != allocator.STEADY:
        pytest.skip("no glibc mallopt here: tables record the system allocator")
    code = ("import resource, sys, numpy as np\n"
            "from nas_lab.objectives.latency import allocator\n"
            "if sys.argv[1] == 'steady': allocator.hold_steady()\n"
            "np.ones(5 * 2**20).sum()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(10): np.ones(5 * 2**20).sum()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("system", "steady")}
    # every call maps fresh memory: 10,240 faults a call with 4 KiB pages, fewer where huge pages serve it (here
    # ~530); held steady, the freed buffer is reused and nothing is faulted in again
    assert faults["system"] >= 200 and faults["steady"] * 10 <= faults["system"], faults


def test_bound_below_the_fastest_subnet_is_refused(capsys):
    space = NB201Space()
    table = fake_table(space)
    fastest = table.predict(space, space.all_archs()).min()
    err = refused(capsys, "run", "space=nb201", "objective=latency", f"constraint=latency.lut<={fastest * 0.99}",
                  "--no-save")
    assert "leaves no architecture" in err and f"{fastest:.4g}" in err
    assert main(["run", "space=nb201", "objective=latency", "searcher=random", "budget=20",
                 f"constraint=latency.lut<={fastest * 1.5}", "--no-save"]) == 0


# -- the objective -------------------------------------------------------------------------------------------

def test_latency_is_a_target_and_a_constraint():
    space = HyViTasSpace()
    table = fake_table(space)
    archs = space.all_archs()
    lut = table.predict(space, archs)
    bound = float(np.quantile(lut, 0.3))
    _, objective, _ = build(RunConfig(objective="id,latency.lut", constraints=[f"latency.lut<={bound}"]))
    assert objective.targets == ("id", "latency.lut") and objective.directions == ("max", "min")
    ev = objective.evaluate(archs[:200], np.random.default_rng(0))
    np.testing.assert_array_equal(ev.values[:, 1], lut[:200])
    np.testing.assert_array_equal(ev.feasible, lut[:200] <= bound)
    # latency.<device> stays a benchmark column of the tabular family
    _, tabular, _ = build(RunConfig(objective="id,latency.rtx4090"))
    assert type(tabular.extras[0][1]).__name__ == "TabularObjective"
    with pytest.raises(UserError, match="unknown latency metric"):
        LatencyObjective(space, "fast")


def test_extent_of_a_space_too_large_to_enumerate():
    """AutoViT (10^9 archs): the extent is per-slot bounds, outside every sampled arch's prediction."""
    space = AutoViTSpace(setting="cpu")
    table = fake_table(space)
    low, high = LatencyObjective(space).extent("latency.lut")
    predicted = table.predict(space, space.sample(np.random.default_rng(9), 2000))
    assert low <= predicted.min() and predicted.max() <= high
    with pytest.raises(UserError, match="leaves no architecture"):
        build(RunConfig(space="autovit", objective="latency", constraints=[f"latency.lut<={low * 0.99}"],
                        params={"space": {"setting": "cpu"}, "searcher": {}, "objective": {}, "dataset": {}}))


@pytest.mark.parametrize("value, entries", [(v, e) for v in ("Infinity", "NaN", "-1e-3") for e in ("one", "all")] +
                         [("1e308", "all")])
def test_a_table_entry_that_is_not_a_usable_time_is_refused_naming_the_file_and_entry(capsys, value, entries):
    """Non-finite or negative times, and finite ones whose sum overflows (1e308), crashed the lookup or made every
    arch infeasible without a word; JSON's Infinity and NaN are read as floats, so they must be refused by value."""
    table = fake_table(NB201Space())
    data = json.loads(table.path.read_text())
    names = list(data["entries"])[:1] if entries == "one" else list(data["entries"])
    for name in names:
        data["entries"][name] = ["@"]
    table.path.write_text(json.dumps(data).replace('"@"', value))
    err = refused(capsys, "run", "space=nb201", "objective=latency", "budget=5", "--no-save")
    assert str(table.path) in err and "delete it and build it again with `nas-lab lut build`" in err
    assert names[0] in err or value == "1e308" and "sums to an infinite latency" in err, err


def test_a_full_disk_while_writing_a_table_leaves_the_previous_one_and_says_so(monkeypatch):
    from pathlib import Path

    table = fake_table(NB201Space())
    before = table.path.read_bytes()
    write_bytes = Path.write_bytes

    def half_then_full(path, data):
        write_bytes(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    table.entries[next(iter(table.entries))] = [123.0]
    with pytest.raises(UserError, match=rf"^cannot write the latency table {re.escape(str(table.path))}: the disk is "
                                        "full; choose another file"):
        table.write()
    assert table.path.read_bytes() == before and [p.name for p in table.path.parent.iterdir()] == [table.path.name]


def test_measuring_a_table_leaves_no_lock_file_behind(cache):
    path = cache / "t.json"
    with measure.measuring(path):
        assert path.with_name("t.json.lock").exists()
    assert not list(cache.iterdir())
