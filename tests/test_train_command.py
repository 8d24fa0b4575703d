"""``nas-lab train`` (nas_lab/cli/train.py, nas_lab/oneshot/retrain.py): one arch trained from scratch on digits,
tested, exported and loaded back; archs named three ways; bad input ends in one sentence and exit status 2."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import torch

from nas_lab.cli.main import main
from nas_lab.core.task import Task
from nas_lab.oneshot.retrain import parse_arch, retrain, retrain_settings
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space

NB201 = NB201Space()
#: a cheap NB201 cell that still reaches the output through a convolution (not mostly "none")
CELL = "node1.in0=nor_conv_1x1,node2.in0=none,node2.in1=skip_connect,node3.in0=none,node3.in1=none," \
       "node3.in2=nor_conv_1x1"
#: one short epoch on 16-px digits
TINY = ["epochs=1", "max_batches=2", "batch_size=32", "dataset.image_size=16"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *argv])
    return code, out.getvalue(), err.getvalue()


def test_train_end_to_end_on_digits_writes_files_that_load_back(tmp_path):
    code, out, err = cli("space=nb201", f"arch={CELL}", *TINY, f"out={tmp_path / 'o'}", "seed=1", "ood=false",
                         "--json", "--no-progress")
    assert code == 0, err
    facts = json.loads(out)
    arch = NB201.from_values(dict(item.split("=") for item in CELL.split(",")))
    assert facts["index"] == int(NB201.index(arch)) and facts["arch"] == NB201.describe(arch)
    assert facts["training"]["augment"] == "none"  # auto on the CPU
    assert facts["params"] == int(NB201.params(arch[None])[0])  # the FLOP counter's model is the space's model
    assert facts["macs"] > 0 and facts["latency"]["ms"] > 0 and facts["onnx"] == "written"
    assert set(facts["accuracy"]) == {"val", "test"}  # OoD: test_the_ood_metrics_are_means_over_the_variants
    assert all(0 <= v <= 100 for v in facts["accuracy"].values())
    folder = tmp_path / "o"
    assert {p.name for p in folder.iterdir()} == {"checkpoint.pt", "state_dict.pt", "model.pt2", "model.onnx",
                                                  "result.json", "training.logs"}
    with (folder / "training.logs" / "scalars.csv").open() as f:  # one row per step, then val accuracy per epoch
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["loss"]] == list(range(1, len(rows)))
    assert rows[-1]["val_accuracy"] != "" and float(rows[0]["lr"]) > 0  # the cosine ends at 0
    # the state dict, the checkpoint and the exported program are one model
    model = NB201.build(arch, num_classes=10).eval()
    model.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert checkpoint["arch"] == facts["arch"] and checkpoint["accuracy"] == facts["accuracy"]
    for name, value in checkpoint["state_dict"].items():
        assert torch.equal(value, model.state_dict()[name])
    x = torch.rand(1, 3, 16, 16)
    program = torch.export.load(folder / "model.pt2").module()
    torch.testing.assert_close(program(x), model(x), atol=1e-5, rtol=1e-5)  # float32 reassociation only
    import onnx

    graph = onnx.load(folder / "model.onnx")
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["images"]
    assert json.loads((folder / "result.json").read_text())["accuracy"] == facts["accuracy"]


def test_the_ood_metrics_are_means_over_the_test_split_s_variants():
    """On a tiny linear model, so the 21 evaluation sets (val, test, 9 corruptions x 2 severities, sketch) are
    cheap; the accuracies are exact fractions of the 270 test images, compared exactly."""
    from nas_lab.data.corruptions import CORE_CORRUPTIONS, ood_variants
    from nas_lab.oneshot.retrain import accuracy, evaluate
    from nas_lab.oneshot.training import TaskData

    data = TaskData(Task("digits", (("image_size", "8"),)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    out = evaluate(model, data, seed=5)
    assert set(out) == {"val", "test", "ood.c1", "ood.c5", "ood.sketch", "ood"}
    variants = ood_variants(data.test, 5)
    assert out["ood.sketch"] == accuracy(model, variants["sketch"], data.device)
    c5 = [accuracy(model, variants[f"c.{c}.5"], data.device) for c in CORE_CORRUPTIONS]
    assert out["ood.c5"] == pytest.approx(np.mean(c5), abs=1e-12)
    assert out["ood"] == pytest.approx(np.mean([out["ood.c1"], out["ood.c5"], out["ood.sketch"]]), abs=1e-12)
    assert evaluate(model, data, seed=5, ood=False) == {"val": out["val"], "test": out["test"]}


def test_the_same_seed_trains_the_same_weights_and_another_seed_others():
    space = HyViTasSpace()
    arch = space.arch(100)
    task = Task("digits").for_space(space)
    task = Task(task.dataset, (("image_size", "32"),), "cpu")
    settings = retrain_settings(space, arch, 1, 32, None, 2, "auto", "hyvitas")
    assert settings.optimizer == "adamw"  # HyViTas-Bench trains its models with AdamW
    runs = [retrain(space, arch, task, settings, seed, ood=False) for seed in (0, 0, 1)]
    a, b, c = (r.model.state_dict() for r in runs)
    for k in a:  # the same computation twice; the tolerance only allows for threads summing in another order
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(a[k], c[k], rtol=1e-3, atol=1e-4) for k in a if a[k].is_floating_point())
    assert runs[0].settings.augment == "hyvitas"
    for metric, value in runs[0].accuracies.items():  # at most one of 270 images may flip between the twins
        assert abs(value - runs[1].accuracies[metric]) <= 100 / 270 + 1e-9


def test_a_training_stopped_mid_way_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path,
                                                                                                    monkeypatch):
    """Two epochs of two steps, augmented (the augmentation's generator is in the checkpoint too); the first try
    dies in the third step, after the checkpoint of epoch 1; the second resumes and removes the checkpoint."""
    import types

    import nas_lab.oneshot.retrain as module

    space = HyViTasSpace()
    arch = space.arch(100)
    task = Task("digits", (("image_size", "32"),), "cpu")
    settings = retrain_settings(space, arch, 2, 32, None, 2, "auto", "hyvitas")
    whole = retrain(space, arch, task, settings, 3, ood=False).model.state_dict()

    calls = []

    def dies_in_step_3(logits, target):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return torch.nn.functional.cross_entropy(logits, target)

    checkpoint = tmp_path / "training.ckpt"
    monkeypatch.setattr(module, "F", types.SimpleNamespace(cross_entropy=dies_in_step_3))
    with pytest.raises(KeyboardInterrupt):
        retrain(space, arch, task, settings, 3, ood=False, checkpoint=checkpoint)
    assert checkpoint.is_file()
    monkeypatch.undo()
    resumed = retrain(space, arch, task, settings, 3, ood=False, checkpoint=checkpoint)
    assert resumed.throughput.images == 2 * 32  # only epoch 2 was trained again
    assert not checkpoint.exists()
    for k, v in resumed.model.state_dict().items():  # same steps on the same batches; threads may sum otherwise
        torch.testing.assert_close(v, whole[k], rtol=1e-5, atol=1e-6)


def test_archs_are_named_by_index_decisions_or_run_record(tmp_path):
    arch = NB201.arch(4321)
    assert np.array_equal(parse_arch(NB201, "4321"), arch)
    text = " ".join(f"{k}={v}" for k, v in NB201.describe(arch).items())
    assert np.array_equal(parse_arch(NB201, text), arch)
    code = main(["run", "space=hyvitas", "searcher=random", "budget=5", "--out", str(tmp_path), "--json"])
    assert code == 0
    record = next(tmp_path.glob("*.json"))
    best = json.loads(record.read_text())["best"]["index"]
    assert np.array_equal(parse_arch(HyViTasSpace(), str(record)), HyViTasSpace().arch(best))


@pytest.mark.parametrize("args, sentence", [
    (["arch=15625"], "arch index 15625 is out of range: space 'nb201' has archs 0..15,624"),
    ([f"arch={CELL.replace('nor_conv_1x1', 'conv_9x9', 1)}"], "'conv_9x9' is not an option of 'node1.in0'"),
    (["arch=node9.in0=none"], "space 'nb201' has no decision 'node9.in0'"),
    (["arch=best"], "arch=best is neither an arch index, a decision string"),
    ([], "nas-lab train needs an arch"),
    (["arch=1", "device=cuda"] if not torch.cuda.is_available() else ["arch=1", "device=gpu"], "device"),
    (["arch=1", "augment=cutout"], "augment must be one of auto, none, deit"),
    (["arch=1", "epochs=0"], "epochs must lie in 1..100,000, got 0"),
    (["arch=1", "colour=red"], "unknown setting 'colour' of `nas-lab train`"),
])
def test_bad_input_is_one_sentence_and_exit_status_2(args, sentence, tmp_path):
    code, out, err = cli("space=nb201", *args, f"out={tmp_path / 'o'}")
    assert code == 2 and out == ""
    assert err.startswith("nas-lab: error: ") and sentence in err and err.count("\n") == 1, err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()


def test_a_record_of_another_space_an_unwritable_folder_and_no_test_split_are_refused(tmp_path, monkeypatch):
    assert main(["run", "space=hyvitas", "searcher=random", "budget=3", "--out", str(tmp_path), "--json"]) == 0
    record = next(tmp_path.glob("*.json"))
    code, _, err = cli("space=nb201", f"arch={record}")
    assert code == 2 and "is a run of space 'hyvitas', not of 'nb201'" in err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = cli("space=nb201", "arch=1", f"out={blocker / 'sub'}")
    assert code == 2 and f"cannot write to the output folder {blocker / 'sub'}" in err and err.count("\n") == 1

    real = Task.data

    def without_test(task):
        from dataclasses import replace

        from nas_lab.data.images import ArrayImages

        data = real(task)
        x, y = data.test.arrays()
        return replace(data, test=ArrayImages(x[:0], y[:0]))

    monkeypatch.setattr(Task, "data", without_test)
    code, _, err = cli("space=nb201", "arch=1", *TINY, f"out={tmp_path / 'o'}")
    assert code == 2 and "dataset 'digits' has no test split" in err, err



def test_an_onnx_exporter_that_fails_loses_none_of_the_other_files(tmp_path, monkeypatch):
    from nas_lab.oneshot.retrain import Retrained, export
    from nas_lab.oneshot.training import Settings, Throughput

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    arch = NB201.arch(4321)
    result = Retrained(NB201.build(arch, num_classes=10), Settings(1, 8, 0.1, 1, 1), Throughput(8, 1.0),
                       {"test": 10.0}, (3, 16, 16), 10)
    facts = {"accuracy": {"test": 10.0}}
    paths = export(result, tmp_path, facts)
    assert facts["onnx"].startswith("not written: torch's") and "RuntimeError: unsupported operator" in facts["onnx"]
    assert "onnx" not in paths and not (tmp_path / "model.onnx").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"checkpoint.pt", "state_dict.pt", "model.pt2", "result.json"}
    assert json.loads((tmp_path / "result.json").read_text())["onnx"] == facts["onnx"]
