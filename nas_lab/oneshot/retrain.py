"""Retraining one arch from scratch: the step every seed paper takes after its search (``nas-lab train``).

- ``parse_arch``: the arch a user names, as an index, a decision string
  (``name=value,name=value``, the form run summaries print) or a run record
  file (its best arch);
- ``retrain``: the arch's model with fresh seeded weights, trained on the
  task's train split with its space's recipe (``retrain_settings``: the
  optimiser and augmentation of ``supernet_recipe``, overlaid with its
  ``retrain`` entries) through ``training.train_weights``, so precision,
  data-parallel training under torchrun and checkpoints (``training.ckpt``
  in the output folder, resumed when the same training runs again) are the
  supernets';
- ``evaluate``: top-1 accuracy on the val and test splits and on the
  test split's OoD variants (``evaluation.SETS``, ``data/corruptions.py``);
- ``export``: the checkpoint, the state dict, a ``torch.export`` program and,
  where the ``onnx`` package is installed, an ONNX file.

Randomness: ``SeedSequence(seed)`` spawns the initial weights', the
shuffling's, the augmentation's and the corruptions' seeds, so the same
settings and seed train the same model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.files import reason, write_atomic
from nas_lab.core.space import Space
from nas_lab.core.task import Task
from nas_lab.data.corruptions import ood_variants
from nas_lab.oneshot.augment import resolve
from nas_lab.oneshot.checkpoint import Checkpoint
from nas_lab.oneshot.evaluation import DERIVED, EVAL_BATCH, SETS
from nas_lab.oneshot.training import (
    Settings,
    Source,
    TaskData,
    Throughput,
    augmentation_of,
    batches_of,
    non_finite,
    progress,
    size,
    torch_generator,
    train_weights,
    training_key,
)

#: the files ``export`` writes into the output folder
CHECKPOINT, STATE_DICT, PROGRAM, ONNX = "checkpoint.pt", "state_dict.pt", "model.pt2", "model.onnx"
#: the OoD metrics reported, each the mean accuracy over its sets of ``evaluation.SETS``; ``ood`` is their mean
OOD = DERIVED["ood"]


def parse_arch(space: Space, text: str) -> np.ndarray:
    """The arch ``text`` names in ``space``: an index (0..cardinality-1), a decision string (``name=value`` pairs
    separated by commas or blanks, every active decision of the space named), or a run record file of this space
    (its best arch); ``UserError`` for anything else."""
    text = text.strip()
    if text.isdigit():
        index = int(text)
        if index >= space.cardinality:
            raise UserError(f"arch index {shorten(text)} is out of range: space {space.name!r} has archs "
                            f"0..{space.cardinality - 1:,}")
        return np.asarray(space.arch(index), dtype=np.int64).ravel()
    if "=" in text:
        return _from_decisions(space, text)
    path = Path(text).expanduser()
    if path.suffix == ".json" or path.is_file():
        return _from_record(space, path)
    raise UserError(f"arch={shorten(text)} is neither an arch index, a decision string (name=value,...) nor a run "
                    "record file (.json)")


def _from_decisions(space: Space, text: str) -> np.ndarray:
    values = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserError(f"arch={shorten(text)}: {shorten(item)!r} is not name=value")
        if name not in space.names:
            raise UserError(f"space {space.name!r} has no decision {shorten(name)!r}; valid: {', '.join(space.names)}")
        values[name] = value
    arch = space.check(space.from_values(values))[0]
    if not space.is_valid(arch[None])[0]:
        raise UserError(f"arch={shorten(text)} is not an arch of space {space.name!r}: its decisions break the "
                        "space's rules")
    return arch


def _from_record(space: Space, path: Path) -> np.ndarray:
    from nas_lab.core.record import read

    run = read(path)
    if run.space != space.name or run.cardinality != space.cardinality:
        raise UserError(f"run record {path} is a run of space {run.space!r}, not of {space.name!r}; give space="
                        f"{run.space} (and its space.<param> settings) or a record of this space")
    if run.front is not None:
        shown = ", ".join(str(i) for i in list(run.front["index"])[:5])
        raise UserError(f"run record {path} holds a front of {len(run.front['index'])} archs, not one best arch; "
                        f"give one of their indices as arch=INDEX (e.g. {shown})")
    if run.best_index is None:
        raise UserError(f"run record {path} found no feasible arch, so there is none to train")
    return np.asarray(space.arch(int(run.best_index)), dtype=np.int64).ravel()


def retrain_settings(space: Space, arch: np.ndarray, epochs: int | None, batch_size: int,
                     learning_rate: float | None, max_batches: int | None, optimizer: str, augment: str, *,
                     device: str = "cpu", precision: str = "auto", compile: bool = False,
                     checkpoint_every: int | None = None, workers: int | None = None) -> Settings:
    """Checked training settings where ``auto``/none take the space's retraining recipe: its ``supernet_recipe``
    overlaid with the recipe's ``retrain`` entries (``training.Settings.resolve`` reads the merged recipe), the
    augmentation as ``augment.resolve`` picks it for ``arch``."""
    recipe = space.supernet_recipe
    merged = types.SimpleNamespace(supernet_recipe={**recipe, **recipe.get("retrain", {})})
    return Settings.resolve(merged, epochs, batch_size, learning_rate, max_batches, None, optimizer, "train",
                            device=device, precision=precision, compile=compile,
                            augment=resolve(augment, space, device, retrain=True, arch=arch),
                            checkpoint_every=checkpoint_every, workers=workers)


@dataclass
class Retrained:
    """A model trained from scratch, what it was trained with, and its accuracies (%)."""

    model: torch.nn.Module
    settings: Settings
    throughput: Throughput
    accuracies: dict[str, float]
    image_shape: tuple[int, int, int]
    num_classes: int


def retrain(space: Space, arch: np.ndarray, task: Task, settings: Settings, seed: int, ood: bool = True,
            checkpoint: Path | None = None) -> Retrained:
    """Train ``arch``'s model from scratch on ``task``'s train split and measure its accuracies; with
    ``checkpoint`` (a file), the training resumes from it if it was written by the same training, checkpoints
    there (every epoch and every ``settings.checkpoint_every`` steps) and removes it once done. ``UserError`` for a
    dataset without a test split or a training that diverged."""
    data = TaskData(task)
    if data.test is None or len(data.test) == 0:
        raise UserError(f"dataset {data.data.name!r} has no test split to evaluate the trained model on; use a "
                        "dataset with one (its loader splits train / val / test)")
    init, shuffle, augment_seed, corrupt_seed = (np.random.default_rng(s)
                                                 for s in np.random.SeedSequence(seed).spawn(4))
    with torch.random.fork_rng(devices=[]):  # initial weights drawn under the run's seed, torch's state restored
        torch.manual_seed(int(init.integers(2**62)))
        model = space.build(arch, num_classes=data.num_classes)
    model = model.to(data.device)
    augment, resumable = augmentation_of(settings, data.num_classes, data.image_size, data.device, augment_seed)
    saved = None
    if checkpoint is not None:
        key = {**training_key(space, task, settings, seed), "arch": str(space.index(arch)), "retrain": True}
        saved = Checkpoint(checkpoint, key, settings.checkpoint_every)
    trained = train_weights(model, data.train, settings, torch_generator(shuffle), f"train {space.name}",
                            lambda x, target: F.cross_entropy(model(x), target), task.progress, augment=augment,
                            val=lambda: accuracy(model, data.val, data.device), checkpoint=saved, resumable=resumable)
    bad = non_finite(model)
    if bad is not None:
        raise UserError(f"training diverged: weight {bad} is no longer finite; lower learning_rate or train fewer "
                        "epochs")
    accuracies = evaluate(model, data, int(corrupt_seed.integers(2**32)), ood, task.progress)
    if saved is not None:
        saved.remove()
    return Retrained(model.eval(), settings, trained, accuracies, data.data.shape, data.num_classes)


def accuracy(model: torch.nn.Module, source: Source, device: torch.device) -> float:
    """Top-1 accuracy (%) of a plain model on an image set, in eval mode, in batches moved to ``device``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches_of(source, EVAL_BATCH, device):
            correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / size(source)


def evaluate(model: torch.nn.Module, data: TaskData, seed: int, ood: bool = True,
             show: bool = False) -> dict[str, float]:
    """``val`` and ``test`` accuracy and, with ``ood``, each OoD metric of ``OOD`` on the test split's variants
    (drawn with ``seed``) and their mean ``ood``; with ``show``, a bar over the evaluation sets."""
    sets = {"val": ("val",), "test": ("test",), **({m: SETS[m] for m in OOD} if ood else {})}
    variants = ood_variants(data.test, seed)
    out = {}
    with progress(sum(map(len, sets.values())), "test", show, unit="set") as bar:
        def score(name: str) -> float:
            source = data.val if name == "val" else data.test if name == "test" else variants[name]
            value = accuracy(model, source, data.device)
            bar.update()
            return value

        for metric, names in sets.items():
            out[metric] = float(np.mean([score(name) for name in names]))
    if ood:
        out["ood"] = float(np.mean([out[m] for m in OOD]))
    return out


def prepare_folder(folder: Path) -> Path:
    """``folder``, created, or ``UserError`` if files cannot be written there (checked before any training)."""
    probe = folder / f".writable-{os.getpid()}"  # one per process: ranks under torchrun probe at once
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to the output folder {folder}: {reason(err)}; choose another with out=DIR") \
            from None
    return folder


def export(result: Retrained, folder: Path, facts: dict) -> dict[str, Path]:
    """Write into ``folder``: ``checkpoint.pt`` (weights with ``facts``: space, arch, settings, metrics),
    ``state_dict.pt``, ``model.pt2`` (``torch.export``, batch 1 on the CPU) and, where the ``onnx`` package is
    installed, ``model.onnx``; ``facts`` also as ``result.json``, with ``facts["onnx"]`` saying whether the ONNX
    file was written (an exporter that cannot convert a model loses none of the other files). Returns the paths
    written, by kind."""
    model = result.model.cpu().eval()
    state = model.state_dict()
    example = (torch.zeros(1, *result.image_shape),)
    paths = {"checkpoint": folder / CHECKPOINT, "state_dict": folder / STATE_DICT, "program": folder / PROGRAM}
    try:
        torch.save({**facts, "state_dict": state}, paths["checkpoint"])
        torch.save(state, paths["state_dict"])
        torch.export.save(torch.export.export(model, example), paths["program"])
        facts["onnx"] = "not written: the onnx package is not installed"
        if importlib.util.find_spec("onnx") is not None:
            facts["onnx"] = _export_onnx(model, example, folder / ONNX)
            if facts["onnx"] == "written":
                paths["onnx"] = folder / ONNX
        paths["result"] = write_atomic(folder / "result.json", json.dumps(facts, indent=1, allow_nan=False))
    except OSError as err:
        raise UserError(f"cannot write the trained model to {folder}: {reason(err)}; choose another folder with "
                        "out=DIR") from None
    return paths


def _export_onnx(model: torch.nn.Module, example: tuple, path: Path) -> str:
    """Write the model as ONNX, through ``torch.export`` where onnxscript is installed, else torch's TorchScript
    exporter; ``"written"``, or why not (the TorchScript tracer cannot follow every model: ViTAS' position
    embedding, whose size is computed from a shape, stops it)."""
    dynamo = importlib.util.find_spec("onnxscript") is not None
    exporter = "torch.export-based" if dynamo else "TorchScript"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(model, example, str(path), dynamo=dynamo, input_names=["images"],
                              output_names=["logits"])
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - an exporter fails in many ways; the other files stand
        path.unlink(missing_ok=True)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return (f"not written: torch's {exporter} ONNX exporter failed ({type(err).__name__}: {shorten(first)})"
                + ("" if dynamo else "; installing onnxscript switches to the torch.export-based one"))
    return "written"
