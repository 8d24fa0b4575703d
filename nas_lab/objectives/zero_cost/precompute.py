"""Fill the zero-cost cache ahead of a study: ``nas-lab precompute space=hyvitas proxies=naswot,synflow``.

A zero-shot study asks for the same archs thousands of times; computing every
proxy value once, in parallel on every core (or a Ray cluster), turns the study
into cache lookups, as the benchmark's precomputed proxies do. Values already in
the cache are skipped, and each value is stored as soon as it is computed, so an
interrupted precompute resumes where it stopped when run again.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.core.parallel import check_execution, parallel_map
from nas_lab.core.settings import check_all, declared
from nas_lab.core.space import Space
from nas_lab.objectives.zero_cost.cache import CacheKey, ProxyCache
from nas_lab.objectives.zero_cost.objective import ZeroCostObjective, check_device, check_proxy, compute, proxy_key

#: at most this many archs per work item: small enough for a lively progress bar and little lost on a kill
MAX_ITEM = 32
#: archs per round when drawing a sample from a space too large to enumerate (fixed: it makes samples nested)
DRAW_ROUND = 1024


@dataclass
class Precomputed:
    """What ``precompute`` did, per proxy: values computed now, found cached, and compute seconds spent."""

    space: str
    archs: int
    keys: dict[str, CacheKey]
    cache: Path
    computed: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def summary(self) -> str:
        """A few readable lines: what was computed, how long it took, where it is."""
        key = next(iter(self.keys.values()))
        lines = [f"precompute {self.space}: {len(self.keys)} proxies x {self.archs:,} archs, seed {key.seed}, "
                 f"{key.resolution}x{key.resolution} inputs, batch {key.batch_size}"]
        for proxy in self.keys:
            n = self.computed[proxy]
            per = f", {self.seconds[proxy] / n:.3f} s per value" if n else ""
            lines.append(f"  {proxy:<12} computed {n:>7,}  already cached {self.cached[proxy]:>7,}{per}")
        total = sum(self.computed.values())
        lines.append(f"computed {total:,} values in {self.wall:.1f} s wall time "
                     f"({sum(self.seconds.values()):.1f} s of proxy computation); cache {self.cache}")
        return "\n".join(lines)


def sample_indices(space: Space, sample: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` distinct valid archs drawn with ``seed``, or of every valid arch if None.

    ``precompute`` and ``correlate`` with the same ``sample`` and ``seed`` cover the same archs,
    and samples are nested: a larger one holds every arch of a smaller one, so it reuses their values.
    A space too large to enumerate (AutoViT's 10^9 archs, ViTAS's 10^43) is never listed: its sample
    is drawn (``_drawn``), so memory grows with the sample, not with the space, and "every arch" is refused.
    """
    if not space.enumerable:
        if sample is None:
            raise UserError(f"space {space.name!r} has {space.cardinality:,} archs, too many to take every one; "
                            f"give sample=N to draw N of them")
        return _drawn(space, sample, seed)
    every = space.all_archs()
    valid = space.index(every[space.is_valid(every)])
    if sample is None:
        return valid
    if not 1 <= sample <= len(valid):
        raise UserError(f"sample must lie in 1..{len(valid)} (the valid archs of space {space.name!r}), got {sample}")
    return np.sort(np.random.default_rng(seed).permutation(valid)[:sample])


def _drawn(space: Space, sample: int, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` distinct archs drawn as ``Space.sample`` draws (valid, each decision uniform),
    in rounds of a fixed size: the first ``sample`` distinct ones in draw order, so samples are nested."""
    if sample > space.cardinality:
        raise UserError(f"sample must lie in 1..{space.cardinality} (the archs of space {space.name!r}), got {sample}")
    rng = np.random.default_rng(seed)
    seen: dict = {}  # insertion-ordered: the draw order
    while len(seen) < sample:
        seen.update(dict.fromkeys(np.atleast_1d(space.index(space.sample(rng, DRAW_ROUND))).tolist()))
    return np.array(sorted(itertools.islice(seen, sample)), dtype=object if space.big else np.int64)


def _fill(item: tuple) -> tuple[str, int, int, float]:
    """Compute the missing values of one work item in a worker.

    Returns ``(proxy, archs covered, values computed, their seconds)``: fewer are
    computed than covered when another process stored some meanwhile.
    """
    space, key, indices, device, path = item
    cache = ProxyCache(path)
    try:
        _, seconds, fresh = compute(cache, key, space, space.arch(indices), device)
    finally:
        cache.close()
    return key.proxy, len(indices), int(fresh.sum()), float(seconds[fresh].sum())


def precompute(space: Space, proxies: list[str], indices: np.ndarray, *, seed: int = 0, resolution: int | None = None,
               batch_size: int | None = None, device: str = "cpu", cache: str | None = None, workers: int | None = None,
               executor: str = "local", address: str | None = None, progress: bool = True) -> Precomputed:
    """Make sure the cache holds every proxy's value for every arch of ``indices``; compute what is missing. ``seed``,
    ``resolution`` and ``batch_size`` are the zero-cost objective's settings, checked against its declarations."""
    from tqdm import tqdm

    if not proxies:
        raise UserError(f"say which proxies with proxies=a,b; valid: {', '.join(registry.names('proxy'))}")
    for proxy in proxies:
        check_proxy(proxy)
    space.check_side(resolution)  # first: the space's sentence says which sides its models take
    check_all(declared(ZeroCostObjective), {"seed": seed, "resolution": resolution, "batch_size": batch_size}, "")
    check_device(device)
    workers = check_execution(executor, workers)
    store = ProxyCache(cache)
    keys = {p: proxy_key(space, p, seed, resolution, batch_size) for p in dict.fromkeys(proxies)}
    out = Precomputed(space.name, len(indices), keys, store.path)
    t0 = time.perf_counter()
    missing = {}
    for proxy, key in keys.items():
        missing[proxy] = indices[~store.lookup(key, indices)[2]]
        out.cached[proxy] = len(indices) - len(missing[proxy])
        out.computed[proxy], out.seconds[proxy] = 0, 0.0
    store.close()  # workers may be forked from this process: none may inherit an open connection

    total = sum(len(m) for m in missing.values())
    parts = max(math.ceil(total / MAX_ITEM), 4 * workers)
    size = max(1, min(MAX_ITEM, math.ceil(total / parts)))
    work = [(space, keys[p], m[i:i + size], device, str(store.path))
            for p, m in missing.items() for i in range(0, len(m), size)]
    with tqdm(total=total, unit="value", file=sys.stderr, disable=not progress or total == 0, dynamic_ncols=True,
              mininterval=0.5, desc=f"precompute {space.name}") as bar:
        with contextlib.closing(parallel_map(_fill, work, workers, executor, address)) as filled:
            for proxy, done, n, seconds in filled:
                out.computed[proxy] += n
                out.seconds[proxy] += seconds
                bar.update(done)
    out.wall = time.perf_counter() - t0
    return out
