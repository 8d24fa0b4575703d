"""The poolvit space's figures, and (``--train``) the tinyML comparison: found archs and ResNet-8 trained from scratch.

Always printed: cardinality, the exact parameter range, the share of uniformly
drawn archs within the 100 k cap, ResNet-8's size, and CPU forward latency
(batch 1, median of ``--repeats`` timed passes after warm-up, torch's thread
count as set) of ResNet-8 and of archs drawn within the cap.

``--train`` then searches under the cap (NSGA-II on supernet val accuracy
against params, and the decoupled searcher on the Entropic Score and
LogSynflow; both read ``experiments/poolvit_tinyml.yaml``'s settings) and
trains each found arch and ResNet-8 from scratch with one recipe (the one-shot
layer's SGD: Nesterov momentum 0.9, weight decay 5e-4, cosine from 0.1, batch
64, gradient norm clipped at 5, no augmentation), reporting test accuracy beside params, MACs and latency.
The dataset is the task's (default digits at 32 x 32; ``--dataset cifar10
--root PATH`` for CIFAR-10).

    python benchmarks/bench_poolvit.py [--train] [--epochs 30] [--dataset digits] [--root PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from nas_lab.core.config import build
from nas_lab.core.runner import run
from nas_lab.core.task import Task
from nas_lab.objectives.latency.measure import time_module
from nas_lab.oneshot.training import (
    Settings,
    TaskData,
    batches_of,
    torch_generator,
    train_weights,
)
from nas_lab.spaces.poolvit import PoolViTSpace
from nas_lab.spaces.poolvit.model import resnet8
from nas_lab.spaces.poolvit.space import MAX_PARAMS
from nas_lab.study.config import StudyConfig

from results_page import add_docs_flag, recorded

STUDY = Path(__file__).resolve().parent.parent / "experiments" / "poolvit_tinyml.yaml"
#: largest gradient norm of a from-scratch step: without it 3 of 16 archs drawn within the cap went to NaN within
#: 40 steps at SGD 0.1 on digits; clipped at 5 (or 1), none did
GRAD_CLIP = 5.0


def latency_ms(model: torch.nn.Module, repeats: int, side: int = 32) -> float:
    """Median wall time (ms) of one forward pass of one image, in eval mode, after 3 warm-up passes."""
    return time_module(model, (3, side, side), warmup=3, repeats=repeats, clock="wall")


def counted_macs(model: torch.nn.Module, side: int = 32) -> int:
    """MACs of one forward pass of one image: torch's FLOP count / 2."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.rand(1, 3, side, side))
    return counter.get_total_flops() // 2


def figures(space: PoolViTSpace, repeats: int) -> None:
    low, high = space.params_range()
    rng = np.random.default_rng(0)
    drawn = space.sample(rng, 20_000)
    params = space.params(drawn)
    within = drawn[params <= MAX_PARAMS]
    print(f"space {space.name}: {space.cardinality:,} archs, {space.dim} decisions; params {low:,} to {high:,} "
          f"(exact); {np.mean(params <= MAX_PARAMS):.1%} of 20,000 uniform draws within {MAX_PARAMS:,}; "
          f"median {np.median(params):,.0f} params, {np.median(space.macs(drawn)) / 1e6:.2f} M MACs")
    r8 = resnet8()
    print(f"ResNet-8 (MLPerf Tiny): {sum(p.numel() for p in r8.parameters()):,} params, "
          f"latency {latency_ms(r8, repeats):.2f} ms (batch 1, {torch.get_num_threads()} threads)")
    sample = within[:20]
    times = [latency_ms(space.build(a), repeats) for a in sample]
    macs = space.macs(sample)
    print(f"20 archs within the cap: latency median {np.median(times):.2f} ms (range {min(times):.2f}-"
          f"{max(times):.2f}), MACs median {np.median(macs) / 1e6:.2f} M")


def search(spec, dataset: str, params: dict) -> np.ndarray:
    """The arch one study run finds: NSGA-II's feasible arch with the best supernet accuracy, or the decoupled
    searcher's pick."""
    cfg = spec.run_config()
    cfg.dataset, cfg.params["dataset"] = dataset, dict(params)
    space, objective, searcher = build(cfg)
    start = time.perf_counter()
    result = run(space, objective, searcher, budget=cfg.budget, seed=spec.seed)
    h = result.history
    if result.best_index is not None:
        index = result.best_index
    else:
        values = np.where(h["feasible"], h["value"][:, 0], -np.inf)
        index = h["index"][int(np.argmax(values))]
    print(f"{spec.searcher} on {spec.objective}: {len(h['index'])} archs evaluated in "
          f"{time.perf_counter() - start:.0f} s")
    return space.arch(index)


def train_from_scratch(model: torch.nn.Module, data: TaskData, epochs: int, seed: int) -> tuple[float, float]:
    """``(test accuracy %, seconds)`` of ``model`` trained with the one-shot layer's SGD recipe, gradients clipped."""
    settings = Settings(epochs, 64, 0.1, None, 1, grad_clip=GRAD_CLIP)
    torch.manual_seed(seed)
    model = model.to(data.device)
    throughput = train_weights(model, data.train, settings, torch_generator(np.random.default_rng(seed)),
                               "training", lambda x, y: F.cross_entropy(model(x), y))
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches_of(data.test, 512, data.device):
            correct += int((model(x).argmax(1) == y).sum())
    return 100.0 * correct / len(data.test), throughput.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--root", default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the from-scratch trainings")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "poolvit", "Pool-ViT space figures",
                  "Closed-form figures of the tinyML space; with --train, the tinyML comparison."):
        space = PoolViTSpace()
        figures(space, args.repeats)
        if not args.train:
            return
        params = {} if args.root is None else {"root": args.root}
        found = {spec.searcher: search(spec, args.dataset, params) for spec in StudyConfig.load(STUDY).runs()}
        task = Task(args.dataset, tuple(params.items())).for_space(space)
        data = TaskData(task)
        models = {"ResNet-8": resnet8(data.num_classes)}
        models.update({label: space.build(arch, num_classes=data.num_classes) for label, arch in found.items()})
        print(f"\nfrom scratch on {data.data.name} ({len(data.train)} train / {len(data.data.test)} test images, "
              f"32 x 32), {args.epochs} epochs, SGD 0.1 cosine, gradient norm <= 5, batch 64, seed {args.seed}")
        print("| model | params | MACs | CPU latency ms | test top-1 % | train s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, model in models.items():
            n = sum(p.numel() for p in model.parameters())
            macs = counted_macs(model)
            ms = latency_ms(model, args.repeats)
            accuracy, seconds = train_from_scratch(model, data, args.epochs, args.seed)
            print(f"| {label} | {n:,} | {macs / 1e6:.2f} M | {ms:.2f} | {accuracy:.1f} | {seconds:.0f} |")
        for label, arch in found.items():
            print(f"{label}: {space.describe(arch)}")


if __name__ == "__main__":
    main()
