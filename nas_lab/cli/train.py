"""``nas-lab train``: train one arch from scratch with its space's recipe, test it, export it, and print its size,
accuracy and latency (the logic is ``oneshot/retrain.py``'s; size and latency are measured as the zero-cost and
latency families measure them)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import nas_lab
from nas_lab.cli.common import add_command, format_params, interruptible
from nas_lab.core import registry
from nas_lab.core.config import RUN_SETTINGS, RunConfig
from nas_lab.core.errors import UserError
from nas_lab.core.parallel import limit_threads
from nas_lab.core.settings import Setting, help_text, read_overrides
from nas_lab.oneshot import settings as declarations
from nas_lab.oneshot.augment import RECIPES

#: the default output folder's parent (beside ``nas-lab run``'s ``results/runs``)
RESULTS = Path("results/train")
#: the training's checkpoint in the output folder (removed once the training is done)
CHECKPOINT = "training.ckpt"
#: an arch index longer than this many digits (ViTAS has 44) names the default folder by a digest instead
LONG_INDEX = 24

SETTINGS = {s.name: s for s in (
    Setting("space", str, None, help="the arch's space, its parameters as space.<param>=VALUE (none: the run "
                                     "record's space, else hyvitas)"),
    Setting("arch", str, None, help="the arch (required): an index, a decision string 'name=value,name=value' or a "
                                    "run record file (.json, its best arch)"),
    replace(RUN_SETTINGS["dataset"], help="images to train and test on, its parameters as dataset.<param>=VALUE"),
    RUN_SETTINGS["device"],
    replace(RUN_SETTINGS["seed"], help="seed of the initial weights, shuffling, augmentation and corruptions"),
    replace(declarations.EPOCHS, name="epochs", type=int, default=None,
            help="training epochs (none: the space's recipe, else 5)"),
    replace(declarations.BATCH_SIZE, name="batch_size", type=int, default=64),
    replace(declarations.LEARNING_RATE, name="learning_rate", type=float, default=None),
    replace(declarations.MAX_BATCHES, name="max_batches", type=int, default=None),
    replace(declarations.OPTIMIZER, name="optimizer", type=str, default="auto"),
    replace(declarations.AUGMENT, name="augment", type=str, default="auto"),
    replace(declarations.PRECISION, name="precision", type=str, default="auto"),
    replace(declarations.COMPILE, name="compile", type=bool, default=False),
    replace(declarations.CHECKPOINT_EVERY, name="checkpoint_every", type=int, default=None),
    replace(declarations.WORKERS, name="workers", type=int, default=None),
    Setting("ood", bool, True, help="also test on the test split's OoD variants (corruptions at severities 1 and 5, "
                                    "sketch)"),
    Setting("out", str, None, help="output folder (none: results/train/<space>_<arch index>_seed<seed>)"),
    RUN_SETTINGS["threads"],
)}

HELP = f"""\
Train one architecture from scratch with its space's training recipe (optimizer, augmentation),
test it on the dataset's test split (and its OoD variants), and write into the output folder a
checkpoint (checkpoint.pt: weights, arch, settings, metrics), the state dict (state_dict.pt), the
model exported with torch.export (model.pt2) and, where the onnx package is installed, as ONNX
(model.onnx). Prints the parameters, MACs per image, accuracies and measured CPU latency (batch 1).
While it trains it keeps a checkpoint (training.ckpt) in the output folder, every epoch and every
checkpoint_every steps: killed, the same command goes on from it; and a log of its loss, learning
rate, images/s and accuracy (training.logs/: scalars.csv, and TensorBoard events when the tensorboard
package is installed: tensorboard --logdir OUT/training.logs). Under torchrun the training is
data-parallel (torchrun --nproc_per_node=8 -m nas_lab train ...).

Settings (key=value):
{help_text(SETTINGS)}
  space.<param>=VALUE, dataset.<param>=VALUE    (`nas-lab list` shows every parameter)
Recipes (augment=): {', '.join(RECIPES)}; auto is the space's recipe on CUDA and none on the CPU.

examples:
  nas-lab train space=nb201 arch=1234 epochs=1 max_batches=5
  nas-lab train space=hyvitas epochs=2 arch=conv.kernel=3,conv.expansion=2,attn.kernel=5,attn.expansion=1,\
stage1.dim=16,stage2.dim=32,stage3.dim=64,stage4.dim=128
  nas-lab train arch=results/runs/RECORD.json dataset=cifar10 dataset.root=DIR device=cuda epochs=300 --json
"""


def add_parser(sub) -> None:
    p = add_command(sub, "train", "train one architecture from scratch, test and export it", command, HELP)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. space=nb201 arch=1234 epochs=10")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shown on stderr while training)")


def command(args) -> int:
    from nas_lab.oneshot import distributed
    from nas_lab.oneshot.retrain import parse_arch, prepare_folder, retrain, retrain_settings
    from nas_lab.oneshot.training import torch_device

    s, passed = read_overrides(SETTINGS, args.overrides, "train", passed=("space.", "dataset."))
    if s["arch"] is None:
        raise UserError("nas-lab train needs an arch: arch=INDEX, arch='name=value,...' or arch=RECORD.json; see "
                        "`nas-lab train --help`")
    space = _space(s, {k.removeprefix("space."): v for k, v in passed.items() if k.startswith("space.")})
    if "build" not in space.capabilities():
        raise UserError(f"space {space.name!r} cannot build models, so none of its archs can be trained")
    arch = parse_arch(space, s["arch"])
    cfg = RunConfig(dataset=s["dataset"], device=s["device"], progress=not args.no_progress)
    cfg.params["dataset"] = {k.removeprefix("dataset."): v for k, v in passed.items() if k.startswith("dataset.")}
    task = cfg.task().for_space(space)
    torch_device(task)  # a missing GPU is refused before anything is written
    settings = retrain_settings(space, arch, s["epochs"], s["batch_size"], s["learning_rate"], s["max_batches"],
                                s["optimizer"], s["augment"], device=task.device, precision=s["precision"],
                                compile=s["compile"], checkpoint_every=s["checkpoint_every"], workers=s["workers"])
    index = int(space.index(arch))
    folder = prepare_folder(Path(s["out"]).expanduser() if s["out"] else _default_folder(space.name, index, s["seed"]))
    with interruptible(f"the training's last checkpoint is in {folder / CHECKPOINT}; run the same command again to "
                       "go on from it"), limit_threads(s["threads"]):
        result = retrain(space, arch, task, settings, s["seed"], s["ood"], checkpoint=folder / CHECKPOINT)
        if not distributed.main():  # under torchrun, rank 0 alone exports and reports
            return 0
        facts = _facts(space, arch, index, task, s, result)
        paths = _export_and_measure(result, folder, facts, s["threads"])
        paths["logs"] = (folder / CHECKPOINT).with_suffix(".logs")  # the training's scalars, kept
    if args.json:
        print(json.dumps({**facts, "files": {k: str(p) for k, p in paths.items()}}, allow_nan=False))
    else:
        print(summary(facts, space, paths))
    return 0


def _space(s: dict, params: dict):
    """The space ``space=`` names, else the run record's that ``arch=`` names (with its parameters), else hyvitas."""
    name = s["space"]
    record = Path(s["arch"]).expanduser()
    if name is None and record.suffix == ".json" and record.is_file():
        from nas_lab.core.record import read

        config = read(record).config
        name = config.get("space")
        params = {**config.get("params", {}).get("space", {}), **params}
    return registry.create("space", name or "hyvitas", params)


def _default_folder(space: str, index: int, seed: int) -> Path:
    """``results/train/<space>_<index>_seed<seed>``; an index of more than ``LONG_INDEX`` digits by its digest."""
    text = str(index)
    if len(text) > LONG_INDEX:
        text = "i" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return RESULTS / f"{space}_{text}_seed{seed}"


def _facts(space, arch, index: int, task, s: dict, result) -> dict:
    """What the training was and what it measured, JSON-safe (``result.json``, ``--json``, the checkpoint)."""
    from nas_lab.core.record import json_safe

    return json_safe({
        "space": space.name, "arch": space.describe(arch), "index": index, "task": task.describe(),
        "training": {**result.settings.training(), "optimizer": result.settings.optimizer,
                     "augment": result.settings.augment, "precision": result.settings.precision,
                     "seed": s["seed"], "seconds": result.throughput.seconds,
                     "images_per_second": result.throughput.images_per_second},
        "accuracy": result.accuracies, "image_shape": list(result.image_shape), "num_classes": result.num_classes,
        "nas_lab": nas_lab.__version__,
    })


def _export_and_measure(result, folder: Path, facts: dict, threads: int) -> dict:
    """Export the model (``retrain.export``), then add to ``facts`` its parameters and MACs per image (torch's FLOP
    counter, as the zero-cost ``flops`` proxy counts them) and its CPU latency at batch 1 (as the latency look-up
    tables time blocks: median of timed calls after warm-up; the thread's CPU time on one thread, else wall time)."""
    import torch

    from nas_lab.objectives.latency.measure import REPEATS, time_module
    from nas_lab.objectives.zero_cost.size import flops, params
    from nas_lab.oneshot.retrain import export

    model = result.model.cpu().eval()
    example = torch.zeros(1, *result.image_shape)
    facts["params"] = int(params(model, example, None))
    facts["macs"] = int(flops(model, example, None) / 2)
    clock = "cpu" if threads == 1 else "wall"
    facts["latency"] = {"ms": time_module(model, result.image_shape, clock=clock), "device": "cpu", "batch": 1,
                        "threads": threads, "clock": clock, "repeats": REPEATS}
    return export(result, folder, facts)


def summary(facts: dict, space, paths: dict) -> str:
    """The few readable lines ``nas-lab train`` prints."""
    t, acc, lat = facts["training"], facts["accuracy"], facts["latency"]
    c, h, w = facts["image_shape"]
    task = facts["task"]
    lines = [
        f"arch       {space.name} {facts['index']}: {format_params(facts['arch'], sep='  ')}",
        f"data       {task['dataset']} ({facts['num_classes']} classes, {c}x{h}x{w}) on {task['device']}",
        f"training   {t['epochs']} epoch(s), batch {t['batch_size']}"
        + (f", at most {t['max_batches']} batches per epoch" if t["max_batches"] else "")
        + f", {t['optimizer']} at {t['learning_rate']:g}, augment {t['augment']}, seed {t['seed']}: "
        f"{t['seconds']:.1f} s ({t['images_per_second']:.0f} images/s)",
        f"params     {facts['params'] / 1e6:.3f} M",
        f"MACs       {facts['macs'] / 1e6:.2f} M per {h}x{w} image",
        f"latency    {lat['ms']:.3f} ms (CPU, batch 1, {lat['threads']} thread(s), {lat['clock']} clock, median of "
        f"{lat['repeats']})",
        "accuracy   " + "  ".join(f"{name} {value:.2f} %" for name, value in acc.items()),
        f"files      {paths['checkpoint'].parent}: " + ", ".join(p.name for p in paths.values()),
    ]
    if facts["onnx"] != "written":
        lines.append(f"onnx       {facts['onnx']}")
    return "\n".join(lines)
