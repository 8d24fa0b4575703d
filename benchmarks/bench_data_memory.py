"""Peak memory of supernet training over an image folder of 2,000 and of 20,000 images (issue 23: within 10 %).

Writes two ImageNet-style folders (``train/<class>/*.png``, ``val/<class>/*.png``; 10 classes of 32x32 PNGs
of random pixels, so nothing compresses away) into a temporary folder, then measures each in a fresh process
and prints the peak resident memory of that process (``os.wait4``'s ``ru_maxrss``) and the ratio.

- ``--mode cli`` (the default): the whole ``nas-lab run space=hyvitas searcher=spos dataset=folder ...`` of one
  epoch of ``--steps`` batches and 2 scored paths (training, recalibration, val and OoD scoring, all streamed).
- ``--mode data``: the data path of ``nas_lab/data`` alone. The process loads the folder (``dataset=folder``,
  resized to 64 px: the HyViTas default), makes one full shuffled pass of ``batches`` over its training split
  (every image decoded once, in batches of 64), and on the first ``--steps`` batches takes an SPOS step of the
  HyViTas supernet (one path drawn per batch, SGD, cross-entropy).

With ``--workers N`` the batches are decoded in N DataLoader worker processes; ``ru_maxrss`` is then the
peak of the largest process of the tree, not of their sum, so the default 0 measures everything in one process.

    OMP_NUM_THREADS=1 python benchmarks/bench_data_memory.py [--mode cli|data] [--steps 10] [--workers 0] [--docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from results_page import add_docs_flag, recorded

SIZES = (2_000, 20_000)
CLASSES = 10
SIDE = 32
#: the issue's target: the larger folder's peak within this share of the smaller's
TARGET = 0.10


def write_folder(root: Path, images: int, seed: int) -> Path:
    """``images`` PNGs of random pixels, 90 % under ``train/<class>/`` and 10 % under ``val/<class>/``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k in range(images):
        part = "val" if (k // CLASSES) % 10 == 9 else "train"  # every tenth image of each class
        path = root / part / f"class{k % CLASSES}" / f"{k:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(path, compress_level=1)
    return root


def child_data(root: str, steps: int, workers: int) -> dict:
    """The data path: load the folder, a full pass of batches, an SPOS step of the supernet on the first ``steps``."""
    import torch
    import torch.nn.functional as F

    from nas_lab.core import registry
    from nas_lab.core.task import default_image_size
    from nas_lab.data import batches, datasets
    from nas_lab.oneshot.training import new_supernet

    torch.set_num_threads(1)
    space = registry.create("space", "hyvitas", {})
    data = datasets.folder(root=root, image_size=default_image_size(space))
    rng = np.random.default_rng(0)
    net = new_supernet(space, data.num_classes, rng, torch.device("cpu"))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    seen, start = 0, time.perf_counter()
    for step, (x, y) in enumerate(batches(data.train, 64, generator=torch.Generator().manual_seed(0), workers=workers)):
        if step < steps:
            loss = F.cross_entropy(net(x, space.sample(rng, 1)[0]), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seen += len(y)
    return {"images decoded": seen, "train images": len(data.train), "seconds": time.perf_counter() - start}


def measure(command: list[str]) -> tuple[float, str]:
    """Run ``command``; its peak resident memory in MiB (Linux reports ``ru_maxrss`` in KiB) and its stdout."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed with exit status {process.returncode}")
    return usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("data", "cli"), default="cli")
    parser.add_argument("--steps", type=int, default=10, help="supernet training steps (batches of 64)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (data mode)")
    parser.add_argument("--child", metavar="ROOT", help=argparse.SUPPRESS)
    add_docs_flag(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_data(args.child, args.steps, args.workers)))
        return
    intro = ("Peak resident memory of a supernet training over an ImageNet-layout folder of 2,000 and of 20,000 "
             "images: it must not grow with the number of images (target: within 10 %).")
    with recorded(args, "data-memory", "Memory of training over an image folder", intro):
        peaks = {}
        with tempfile.TemporaryDirectory(prefix="bench_data_memory_") as tmp:
            for images in SIZES:
                start = time.perf_counter()
                root = write_folder(Path(tmp) / f"folder{images}", images, seed=images)
                written = time.perf_counter() - start
                if args.mode == "data":
                    command = [sys.executable, __file__, "--child", str(root), "--steps", str(args.steps),
                               "--workers", str(args.workers)]
                else:
                    command = [sys.executable, "-m", "nas_lab.cli.main", "run", "space=hyvitas", "searcher=spos",
                               "dataset=folder", f"dataset.root={root}", "searcher.epochs=1",
                               f"searcher.max_batches={args.steps}", "searcher.population=2", "searcher.parents=1",
                               "searcher.generations=0",
                               "budget=2", "--no-save", "--no-progress", "--json"]
                peaks[images], out = measure(command)
                detail = json.loads(out) if args.mode == "data" else {}
                print(f"{images:>6,} images (written in {written:.0f} s): peak RSS {peaks[images]:7.1f} MiB"
                      + (f"; decoded {detail['images decoded']:,} of {detail['train images']:,} train images in "
                         f"{detail['seconds']:.1f} s" if detail else ""), flush=True)
        small, large = peaks[SIZES[0]], peaks[SIZES[1]]
        ratio = large / small
        verdict = "within" if abs(ratio - 1) <= TARGET else "NOT within"
        print(f"mode {args.mode}, {args.steps} supernet steps, {args.workers} workers: {SIZES[1]:,} vs {SIZES[0]:,} "
              f"images peak RSS ratio {ratio:.3f} ({verdict} the {TARGET:.0%} target)")


if __name__ == "__main__":
    main()
