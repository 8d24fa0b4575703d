"""Images/s of nas_lab's training loop against a plain hand-written torch loop, on the same model and batch.

Two models: a space's supernet trained on one path (a supernet training step of SPOS), and that path extracted as
a standalone model (what ``nas-lab train`` retrains). For each, ``oneshot.training.train_weights`` (batches drawn
from a split of ``steps`` batches, autocast at the device's default precision, gradient scaler, checkpoint-free)
runs against the plain loop ``zero_grad; loss = cross_entropy(model(x), y); backward; step`` with the same
optimiser and autocast over one batch kept on the device. nas_lab's loop reads its batches from host memory and
moves each to the device, as a real training does; the plain loop is spared that copy. Both run ``--repeats``
times, interleaved, after a warm-up; the best images/s of each is compared (the ratio is nas_lab / plain: 1.0
means no overhead). On the CPU
the seconds are this process's CPU time, so other jobs on a shared machine do not skew the ratio (run it with
OMP_NUM_THREADS=1: with more threads, CPU time adds up the threads); on a GPU, wall time.

    OMP_NUM_THREADS=1 python benchmarks/bench_training_throughput.py      # HyViTas and ViTAS; CPU, or the GPU
    python benchmarks/bench_training_throughput.py --space vitas --batch 128 --device cuda [--docs]

The script runs unchanged on a GPU and prints the device it measured.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from nas_lab.core import registry
from nas_lab.core.task import default_image_size
from nas_lab.oneshot.training import AUTOCAST, Settings, new_supernet, torch_generator, train_weights, weight_optimizer

from results_page import add_docs_flag, recorded


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """Seconds: this process's CPU time on the CPU (other jobs on a shared machine do not count), wall time on a
    GPU (after a synchronisation)."""
    if device.type == "cuda":
        sync(device)
        return time.perf_counter()
    return time.process_time()


def nas_lab_loop(model, forward, data, settings: Settings, device: torch.device) -> float:
    """Images/s of ``train_weights`` over ``data`` (one epoch)."""
    start = clock(device)
    done = train_weights(model, data, settings, torch_generator(np.random.default_rng(0)), "bench",
                         lambda x, y: F.cross_entropy(forward(x), y))
    return done.images / (clock(device) - start)


def plain_loop(model, forward, batch, settings: Settings, steps: int, device: torch.device) -> float:
    """Images/s of the hand-written loop: same optimiser, same autocast, the same batch every step."""
    x, y = batch
    optimizer, _ = weight_optimizer(model.parameters(), settings, steps)
    dtype = AUTOCAST[settings.precision]
    model.train()
    start = clock(device)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
    return steps * len(y) / (clock(device) - start)


def compare(label: str, model, forward, data, batch, settings: Settings, steps: int, repeats: int,
            device: torch.device) -> None:
    nas_lab_loop(model, forward, (data[0][: 2 * len(batch[1])], data[1][: 2 * len(batch[1])]), settings, device)
    plain_loop(model, forward, batch, settings, 2, device)  # warm-up of both
    ours, plain = [], []
    for _ in range(repeats):
        ours.append(nas_lab_loop(model, forward, data, settings, device))
        plain.append(plain_loop(model, forward, batch, settings, steps, device))
    print(f"| {label} | {settings.precision} | {max(ours):,.1f} | {max(plain):,.1f} | {max(ours) / max(plain):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", nargs="+", default=["hyvitas", "vitas"],
                        help="spaces whose supernet and one path are trained")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", *AUTOCAST))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    add_docs_flag(parser)
    args = parser.parse_args()

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    timing = "wall time" if device.type == "cuda" else "process CPU time"
    with recorded(args, "training-throughput", "Training throughput against a plain torch loop",
                  "Images/s of nas_lab's training loop and of a plain hand-written loop on the same model and batch "
                  "(target: a ratio of at least 0.9)."):
        print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads; batch "
              f"{args.batch}, {args.steps} steps x {args.repeats} repeats, SGD; timed by {timing}")
        print("| model | precision | nas_lab img/s | plain loop img/s | ratio |")
        print("| --- | --- | --- | --- | --- |")
        for space_name in args.space:
            space = registry.create("space", space_name, {})
            side = default_image_size(space)
            settings = Settings.resolve(space, 1, args.batch, 0.01, None, 1, "sgd", "bench", device=args.device,
                                        precision=args.precision, augment="none")
            g = torch.Generator().manual_seed(args.seed)
            images = args.batch * args.steps
            data = (torch.rand(images, 3, side, side, generator=g), torch.randint(0, 10, (images,), generator=g))
            batch = (data[0][: args.batch].to(device), data[1][: args.batch].to(device))
            rng = np.random.default_rng(args.seed)
            net = new_supernet(space, 10, rng, device)
            arch = space.sample(rng, 1)[0]
            label = f"{space.name} {side}x{side}"
            compare(f"{label}, supernet on one path", net, lambda x: net(x, arch),  # noqa: B023 (run in this iteration)
                    data, batch, settings, args.steps, args.repeats, device)
            model = net.extract(arch).to(device)
            compare(f"{label}, the path extracted", model, model, data, batch, settings, args.steps, args.repeats,
                    device)


if __name__ == "__main__":
    main()
