"""ViTAS figures: reference model sizes against the paper, CPU-setting subnet forward times, budget-sampling accuracy.

Prints

1. params / MACs (closed form, our convention: 224 px, 197 tokens with the class
   token, q-k-v biases, 1,000 classes) of the Table 8 ViTAS-Block, DeiT-Ti,
   DeiT-S and the Table 13 block, next to the paper's figures;
2. the forward time of a 64-image batch through CPU-setting subnets
   (``space.setting=cpu``), as standalone models and as super-transformer paths,
   in eval mode without gradients, for uniformly sampled archs (identity 1/2) and
   for budget-aware samples, median and 90th percentile over ``--archs`` archs,
   with torch limited to ``--threads`` threads, and one training step
   (forward + backward) of a path;
3. for the paper's budgets, the identity probability and the mean MACs of
   10,000 budget-aware samples against the budget (target: within 2 %).

    python benchmarks/bench_vitas.py
    python benchmarks/bench_vitas.py --archs 50 --threads 2
"""

import argparse
import time

import numpy as np
import torch

from nas_lab.spaces.vitas import ViTASSpace
from nas_lab.spaces.vitas.cost import ViTShape, shape_macs, shape_params

from results_page import add_docs_flag, recorded

REFERENCES = [  # name, shape, paper params (M), paper GFLOPs (= G MACs)
    ("ViTAS-Block (Table 8)", ViTShape(16, 230, ((3, 432, 720),) * 12), 6.0, 1.3),
    ("DeiT-Ti", ViTShape(16, 192, ((3, 576, 768),) * 12), 5.7, 1.3),
    ("DeiT-S", ViTShape(16, 384, ((6, 1152, 1536),) * 12), 22.0, 4.6),
    ("Table 13 block", ViTShape(16, 384, ((6, 1152, 1728),) * 12), float("nan"), 5.0),
]


def timed(fn, repeats: int = 3) -> float:
    """Best of ``repeats`` wall times (seconds) of ``fn()``, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=1.0e6,
                        help="CPU-setting MACs budget of the budget-aware samples")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "vitas", "ViTAS space figures",
                  "Reference model sizes against the paper, subnet forward times and budget-aware sampling."):
        torch.set_num_threads(args.threads)

        print(f"{'model':<22} {'params M':>9} {'paper':>6} {'G MACs':>7} {'paper':>6}")
        for name, shape, params, gmacs in REFERENCES:
            print(f"{name:<22} {shape_params(shape) / 1e6:>9.3f} {params:>6.1f} "
                  f"{shape_macs(shape) / 1e9:>7.3f} {gmacs:>6.1f}")

        space = ViTASSpace(setting="cpu")
        torch.manual_seed(0)
        net = space.supernet().eval()
        x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        rng = np.random.default_rng(0)
        print(f"\nCPU setting ({space.name}: patches {space.patch_sizes}, widths <= {space.max_embed}/{space.max_qkv}/"
              f"{space.max_mlp}, {space.positions} positions), 64 images of 32x32, {args.threads} thread(s)")
        print(f"{'sampling':<26} {'M MACs/img':>10} {'model ms':>9} {'p90':>6} {'path ms':>8} {'p90':>6}")
        for label, archs in (("uniform (identity 1/2)", space.sample(rng, args.archs)),
                             (f"budget {args.budget:.3g} MACs",
                              space.budget_sampler(args.budget).sample(rng, args.archs))):
            model_s, path_s = [], []
            with torch.no_grad():
                for arch in archs:
                    model = space.build(arch).eval()
                    model_s.append(timed(lambda: model(x)))  # noqa: B023 (timed here, in this iteration)
                    path_s.append(timed(lambda: net(x, arch)))  # noqa: B023 (timed here, in this iteration)
            model_ms, path_ms = 1e3 * np.array(model_s), 1e3 * np.array(path_s)
            print(f"{label:<26} {space.macs(archs).mean() / 1e6:>10.2f} {np.median(model_ms):>9.1f} "
                  f"{np.percentile(model_ms, 90):>6.1f} {np.median(path_ms):>8.1f} {np.percentile(path_ms, 90):>6.1f}")
        net.train()
        arch = space.budget_sampler(args.budget).sample(rng, 1)[0]
        step = timed(lambda: net(x, arch).logsumexp(1).mean().backward())
        print(f"one training step (forward + backward) of a budget-aware path "
              f"({space.macs(arch)[0] / 1e6:.2f} M MACs/img): {1e3 * step:.1f} ms")

        paper = ViTASSpace()
        print(f"\n{'budget G MACs':>13} {'identity p':>10} {'mean of 10,000 G':>16} {'error %':>8}")
        for budget in (0.9e9, 1.0e9, 1.3e9, 1.6e9):
            sampler = paper.budget_sampler(budget)
            mean = paper.macs(sampler.sample(np.random.default_rng(1), 10_000)).mean()
            print(f"{budget / 1e9:>13.1f} {sampler.identity_probability:>10.3f} {mean / 1e9:>16.3f} "
                  f"{100 * (mean / budget - 1):>+8.2f}")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
