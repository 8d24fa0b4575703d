"""Coarse-to-fine search on the CPU: wall time, CPU time and the accuracy it finds (AutoViT, seed 001).

Runs ``nas-lab run space=autovit space.variant=xxs space.setting=cpu searcher=coarse_to_fine
objective=supernet.id constraint=latency.lut<=9.1,params<=2e6`` on the default dataset (digits) with the
searcher's defaults (the paper's schedule: 1,000 random archs filtered, the 50 largest kept, population 50 x
20 generations, top 10 parents, depth / block mutation 0.2 / 0.4, crossover 0.5), and prints

1. the supernet: trained now, or loaded from the cache (then the training time is the cached run's);
2. the search: archs evaluated, wall and CPU seconds, seconds per evaluation;
3. the answer: val accuracy with inherited weights, LUT latency and params of the best arch, beside the best and
   the mean of the coarse stage's seeds (the first generation), and of the generation means;
4. the load average before and after (the machine is shared: wall time grows with the load, CPU time less).

Needs the look-up table: ``nas-lab lut build space=autovit space.variant=xxs space.setting=cpu`` (about 2 min).
``--population`` / ``--generations`` / ``--keep`` shorten the schedule when the full one does not fit.

    python benchmarks/bench_coarse_to_fine.py
    python benchmarks/bench_coarse_to_fine.py --population 10 --generations 3 --keep 10 --parents 5
"""

import argparse
import os
import time

import numpy as np
import torch

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run

from results_page import add_docs_flag, recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="xxs")
    parser.add_argument("--latency", type=float, default=9.1, help="latency.lut bound (ms; about 29 %% of archs)")
    parser.add_argument("--params", type=float, default=2e6, help="params bound")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--keep", type=int, default=50)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--parents", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (default: torch's, as `nas-lab run` uses; 1 is faster on a loaded machine)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "coarse-to-fine", "Coarse-to-fine search on AutoViT",
                  "Wall and CPU time and the accuracy found by the default coarse-to-fine run."):
        torch.set_num_threads(args.threads)

        cfg = RunConfig()
        for key, value in {"space": "autovit", "space.variant": args.variant, "space.setting": "cpu",
                           "searcher": "coarse_to_fine", "objective": "supernet.id",
                           "constraint": f"latency.lut<={args.latency:g},params<={args.params:g}",
                           "searcher.samples": args.samples, "searcher.keep": args.keep,
                           "searcher.population": args.population, "searcher.generations": args.generations,
                           "searcher.parents": args.parents}.items():
            cfg.set(key, value)
        space, objective, searcher = build(cfg)
        supernet = objective.inner
        cached = supernet.path.is_file()
        load = os.getloadavg()
        print(f"space {space.name}, bounds {', '.join(map(str, objective.constraints))}, {args.threads} torch "
              f"thread(s), "
              f"load average {load[0]:.1f} on {os.cpu_count()} cores")

        start, start_cpu = time.perf_counter(), time.process_time()
        wall, cpu = start, start_cpu
        supernet.evaluate(space.sample(np.random.default_rng(0), 1), np.random.default_rng(0))  # train or load
        setup_wall, setup_cpu = time.perf_counter() - wall, time.process_time() - cpu
        if cached:
            print(f"supernet: loaded from the cache in {setup_wall:.1f} s (its training took "
                  f"{supernet.info()['train_seconds']:.0f} s when it ran)")
        else:
            print(f"supernet: trained now, {setup_wall:.0f} s wall, {setup_cpu:.0f} s CPU")

        budget = args.keep + (args.generations - 1) * args.population
        last = {}  # clocks at the last evaluation, so the final report (OoD accuracies of the best arch) is left out

        def progress(evaluated, total, best):
            last.update(wall=time.perf_counter(), cpu=time.process_time())

        wall, cpu = time.perf_counter(), time.process_time()
        result = run(space, objective, searcher, budget=budget, seed=args.seed, progress=progress)
        search_wall, search_cpu = last["wall"] - wall, last["cpu"] - cpu
        h = result.history
        n = len(h["index"])
        print(f"search: {n} archs evaluated in {search_wall:.0f} s wall, {search_cpu:.0f} s CPU "
              f"({search_wall / n:.2f} s wall, {search_cpu / n:.2f} s CPU per evaluation); the best arch's report took "
              f"{time.perf_counter() - last['wall']:.0f} s more; "
              f"{'; '.join(f'{k} {v}' for k, v in result.searcher_report.items())}")
        full = parser.get_default("keep") + (parser.get_default("generations") - 1) * parser.get_default("population")
        if n < full:
            print(f"projected for the default schedule ({full} evaluations) at this rate: "
                  f"{full * search_cpu / n / 60:.0f} "
                  f"CPU-min, {full * search_wall / n / 60:.0f} min wall at this load")
        values = h["value"][:, 0]
        seeds = values[: min(args.keep, n)]
        best = result.best_metrics
        print(f"best: val {best['id']:.2f} % (inherited weights), latency.lut {best['latency.lut']:.2f} ms, "
              f"params {best['params'] / 1e6:.2f} M; coarse seeds: best {seeds.max():.2f} %, mean {seeds.mean():.2f} %")
        rest = values[args.keep:]
        means = [f"{rest[i:i + args.population].mean():.1f}" for i in range(0, len(rest), args.population)]
        print(f"generation means after the seeds (%): {', '.join(means) or 'none'}")
        end = os.getloadavg()
        total = time.perf_counter() - start
        print(f"total {total:.0f} s wall ({total / 60:.1f} min), {time.process_time() - start_cpu:.0f} s CPU; "
              f"load average {end[0]:.1f} at the end")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
