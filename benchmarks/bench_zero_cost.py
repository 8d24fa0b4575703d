"""Time zero-cost proxies and their cache: what a zero-shot study costs before and after `nas-lab precompute`.

Prints (1) the mean seconds per proxy evaluation (model build + proxy) on a few
HyViTas and NB201 archs at each space's default proxy input size, on one
thread, as nas_lab computes them (see core.parallel.limit_threads); (2) from those, the estimated
wall time of precomputing the six proxies of experiments/hyvitas_zeroshot.yaml
over all 6,561 HyViTas archs on this machine's cores; (3) the time of one
cache lookup of 100 archs, all hits, in a cache holding every arch of both
spaces for every proxy (target <= 10 ms).

    python benchmarks/bench_zero_cost.py                  # every registered proxy, 3 archs per space
    python benchmarks/bench_zero_cost.py --archs 5 --proxies naswot,synflow
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from nas_lab.core import registry
from nas_lab.objectives.zero_cost.cache import CacheKey, ProxyCache
from nas_lab.objectives.zero_cost.objective import proxy_key
from nas_lab.objectives.zero_cost.precompute import sample_indices
from nas_lab.objectives.zero_cost.proxies import evaluate_proxy

from results_page import add_docs_flag, recorded

SPACES = ("hyvitas", "nb201")
ZEROSHOT = Path(__file__).resolve().parents[1] / "experiments" / "hyvitas_zeroshot.yaml"
LOOKUP_TARGET_MS = 10.0


def seconds_per_eval(space, proxy: str, indices: np.ndarray) -> float:
    """Mean wall seconds of ``evaluate_proxy`` over the archs of ``indices`` (after one warm-up call)."""
    evaluate_proxy(space, space.arch(indices[0]), proxy)
    t = time.perf_counter()
    for i in indices:
        evaluate_proxy(space, space.arch(i), proxy)
    return (time.perf_counter() - t) / len(indices)


def lookup_ms(spaces: dict, proxies: list[str], n: int = 100, repeats: int = 200) -> float:
    """Median milliseconds of one ``ProxyCache.lookup`` of ``n`` random cached archs."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = ProxyCache(Path(tmp) / "bench.sqlite")
        rng = np.random.default_rng(0)
        for space in spaces.values():
            every = np.arange(space.cardinality)
            for proxy in proxies:
                cache.store(CacheKey(space.name, proxy, 1, 0, 32, 64), every, rng.random(len(every)),
                            rng.random(len(every)))
        key = CacheKey("hyvitas", proxies[0], 1, 0, 32, 64)
        times = []
        for _ in range(repeats):
            idx = rng.choice(spaces["hyvitas"].cardinality, size=n, replace=False)
            t = time.perf_counter()
            _, _, found = cache.lookup(key, idx)
            times.append(time.perf_counter() - t)
            assert found.all()
        cache.close()
    return float(np.median(times) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=3, help="archs timed per space and proxy (default: %(default)s)")
    parser.add_argument("--proxies", default=",".join(registry.names("proxy")))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default: %(default)s, as nas_lab computes proxies)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "zero-cost", "Zero-cost proxies and their cache",
                  "Seconds per proxy evaluation and cached lookups."):
        torch.set_num_threads(args.threads)
        proxies = args.proxies.split(",")
        spaces = {name: registry.create("space", name, {}) for name in SPACES}
        cores = os.cpu_count() or 1

        sizes = {name: proxy_key(space, proxies[0], 0, None, 64).resolution for name, space in spaces.items()}
        print(f"seconds per proxy evaluation, mean over {args.archs} archs, batch 64, {args.threads} torch thread(s)")
        print(f"{'proxy':<12}" + "".join(f"{f'{n} ({s}x{s})':>18}" for n, s in sizes.items()))
        per_eval: dict[str, dict[str, float]] = {}
        for proxy in proxies:
            per_eval[proxy] = {n: seconds_per_eval(s, proxy, sample_indices(s, args.archs + 1, seed=1)[1:])
                               for n, s in spaces.items()}
            print(f"{proxy:<12}" + "".join(f"{per_eval[proxy][n]:>18.3f}" for n in spaces), flush=True)

        study = yaml.safe_load(ZEROSHOT.read_text())
        wanted = [o.split(".", 1)[1] for o in study["objectives"]]
        if set(wanted) <= set(per_eval):
            n = spaces["hyvitas"].cardinality
            total = sum(per_eval[p]["hyvitas"] for p in wanted) * n / cores
            print(f"precompute for {ZEROSHOT.name} ({', '.join(wanted)} x {n:,} archs) on {cores} core(s): "
                  f"about {total / 3600:.2f} h ({total:,.0f} s)")

        ms = lookup_ms(spaces, proxies)
        verdict = "meets target" if ms <= LOOKUP_TARGET_MS else "MISSES target"
        print(f"cache lookup of 100 archs (all hits, {len(proxies)} proxies x both spaces stored): "
              f"{ms:.2f} ms median (target <= {LOOKUP_TARGET_MS:.0f} ms): {verdict}")


if __name__ == "__main__":
    main()
