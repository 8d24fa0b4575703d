"""Zero-cost objective (family ``zc``): search by a training-free proxy, report tabular accuracies.

``objective=zc.naswot`` scores an arch by a proxy computed on its freshly
initialised model (HyViTas-Bench's zero-shot searches, lower part of its
Table 4). The proxy's seed is a fixed parameter, not drawn per run: every run
then searches the same proxy landscape, as with the benchmark's precomputed
proxies, and each value is computed once and kept in the on-disk cache
(``cache.py``), ready for every later run, study worker and ``nas-lab precompute``.

Every proxy is maximised, ``params`` and ``flops`` included: as proxies they
say "bigger models score higher", which is how the paper searches with them.
Reports add what the space's benchmark table says about the found arch (ID and
OoD accuracies on HyViTas, test accuracies on NB201), since a proxy value is not
what the researcher wants in the end.

Importing this module or building the objective imports no torch (a study
builds every objective up front to check it); the first evaluation does, as
the proxies' module gives each proxy's version for the cache key.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np

from nas_lab.core import registry
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.parallel import limit_threads
from nas_lab.core.settings import Setting
from nas_lab.core.space import Space
from nas_lab.core.task import default_image_size
from nas_lab.objectives.tabular.objective import reference_table
from nas_lab.objectives.zero_cost.cache import CacheKey, ProxyCache

#: the proxies' input batch where neither the run nor the space says
BATCH = 64

PREFIX = "zc."


def check_proxy(name: str) -> str:
    """``name`` if it is a registered proxy, else ``UserError`` listing them."""
    valid = registry.names("proxy")
    if name not in valid:
        raise UserError(f"unknown zero-cost proxy {shorten(repr(name))}; "
                        f"valid: {', '.join(valid) or '(none registered)'}")
    return name


def check_device(device: str) -> str:
    """``device`` if torch can compute on it here; ``cpu`` is checked without importing torch."""
    if device == "cpu":
        return device
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type != "cuda":
        raise UserError(f"device must be cpu, cuda or cuda:N, got {shorten(repr(device))}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (dev.index or 0) >= count:
        raise UserError(f"device {shorten(repr(device))} is not available: torch sees {count} CUDA device(s) here; "
                        "use device=cpu")
    return device


def default_batch(space: Space) -> int:
    """Input batch of the proxies unless told: the space's ``zero_cost_batch``, else 64.

    Pool-ViT says 8: its Entropic Score in float64 costs 2.1 s an arch at 64 and
    0.21 s at 8, and over 16 archs the two rank at Kendall tau 0.98 (LogSynflow
    reads one all-ones image whatever the batch).
    """
    return space.zero_cost_batch or BATCH


def proxy_key(space: Space, proxy: str, seed: int, resolution: int | None, batch_size: int | None) -> CacheKey:
    """The cache key of a proxy's values on ``space``; loads the proxy (and torch) to learn its version."""
    entry = registry.load("proxy", check_proxy(proxy))
    return CacheKey(space.name, entry.name, entry.version, seed, resolution or default_image_size(space),
                    batch_size or default_batch(space))


def compute(cache: ProxyCache, key: CacheKey, space: Space, archs: np.ndarray, device: str = "cpu"):
    """``(values, seconds, fresh)`` of ``archs``: cached ones looked up, the others computed and stored.

    Each value is stored as soon as it is computed, so an interrupted batch
    loses at most the value in progress. ``seconds`` is the compute time stored
    with each value, whoever computed it; ``fresh`` marks the values computed now.
    """
    idx = space.index(archs)
    values, seconds, found = cache.lookup(key, idx)
    fresh = np.zeros(len(idx), dtype=bool)
    if found.all():
        return values, seconds, fresh
    from nas_lab.objectives.zero_cost.proxies import evaluate_proxy

    with limit_threads(1):  # CPU-seconds, comparable whoever computed them; parallel workers do not fight
        for i in np.unique(idx[~found]):
            t = time.perf_counter()
            value = evaluate_proxy(space, space.arch(i), key.proxy, seed=key.seed, resolution=key.resolution,
                                   batch_size=key.batch_size, device=device)
            took = time.perf_counter() - t
            cache.store(key, [i], [value], [took])
            rows = idx == i
            values[rows], seconds[rows], fresh[rows] = value, took, True
    return values, seconds, fresh


class ZeroCostObjective(Objective):
    """Maximise a training-free proxy of the arch's untrained model (zero-shot NAS), cached on disk.

    ``seed`` fixes the initial weights and input batch, ``resolution`` the input
    side (default: ``core.task.default_image_size`` of the space), ``batch_size`` the batch
    (default: ``default_batch`` of the space, 64 unless it says);
    ``cache`` is the cache file (default ``$NAS_LAB_CACHE/zero_cost.sqlite``,
    else ``~/.cache/nas_lab/zero_cost.sqlite``); ``table`` the benchmark table
    reports take accuracies from (default: the space's own, when it opens).
    """

    family = "zc"
    cheap = False
    directions = ("max",)

    def __init__(
        self,
        space: Space,
        metric: str = "naswot",
        seed: Annotated[int, Setting(ge=0, le=2**32 - 1, help="seed of the initial weights and the input batch")] = 0,
        resolution: Annotated[int | None, Setting(ge=1, le=4096, help="input side in px (default: the "
                                                                        "space's)")] = None,
        batch_size: Annotated[int | None, Setting(ge=1, le=4096, help="input batch of the proxies (default: the "
                                                                        "space's, else 64)")] = None,
        device: Annotated[str, Setting(help="where proxies are computed: cpu, cuda or cuda:N")] = "cpu",
        cache: Annotated[str | None, Setting(help="cache file (default: $NAS_LAB_CACHE/zero_cost.sqlite)")] = None,
        table: Annotated[str | None, Setting(help="benchmark table reports take accuracies from (default: the "
                                                   "space's own)")] = None,
    ):
        space.check_side(resolution, "objective.resolution")
        self.space = space
        self.proxy = check_proxy(metric)
        self.seed = seed
        self.resolution = resolution
        self.batch_size = batch_size
        self.device = check_device(device)
        self.cache = ProxyCache(cache)
        self.reference = reference_table(space, table)
        self.name = PREFIX + self.proxy
        self.targets = (self.name,)
        # an evaluation costs the stored compute time of each value, cached or not:
        # a run's cost never depends on the cache
        self.cost_unit = "CPU-seconds" if device == "cpu" else "GPU-seconds"
        self._keys: dict[str, CacheKey] = {}

    @property
    def needs(self) -> tuple[str, ...]:
        """Models to score, classes to label their batch, and what the proxy needs of them (NASWOT: rectifier
        units); read when a run starts, as it loads the proxy (and torch), which building the objective does not."""
        return ("build", "num_classes", *registry.load("proxy", self.proxy).needs)

    def key(self, proxy: str) -> CacheKey:
        """Cache key of ``proxy`` under this objective's seed, resolution and batch size."""
        if proxy not in self._keys:
            self._keys[proxy] = proxy_key(self.space, proxy, self.seed, self.resolution, self.batch_size)
        return self._keys[proxy]

    def evaluate(self, archs: np.ndarray, rng: np.random.Generator) -> Evaluation:
        values, seconds, _ = compute(self.cache, self.key(self.proxy), self.space, archs, self.device)
        return Evaluation(values=values[:, None], directions=self.directions, cost=seconds,
                          feasible=np.ones(len(values), dtype=bool))

    def measure(self, metric: str, archs: np.ndarray) -> np.ndarray:
        """``zc.<proxy>`` for any registered proxy; any other metric from the reference table."""
        if metric.startswith(PREFIX):
            proxy = check_proxy(metric[len(PREFIX):])
            return (compute(self.cache, self.key(proxy), self.space, archs, self.device)[0] if len(archs)
                    else np.empty(0))
        if self.reference is None:
            raise UserError(f"objective {self.name!r} has no benchmark table for space {self.space.name!r}, so it can "
                            f"measure only zero-cost proxies ({PREFIX}<proxy>), not {metric!r}; "
                            "give one with table=PATH")
        return self.reference.measure(metric, archs)

    def report(self, archs: np.ndarray) -> dict[str, np.ndarray]:
        """The proxy value and, when there is a table, the accuracies it holds for the archs."""
        table = self.reference.report(archs) if self.reference is not None else {}
        return {self.name: self.measure(self.name, archs), **table}

    def label(self, metric: str) -> str:
        return metric if metric.startswith(PREFIX) or self.reference is None else self.reference.label(metric)

    def table_values(self, metric: str) -> np.ndarray | None:
        """The reference table's values of a metric it holds (never of a proxy, which is computed)."""
        return None if metric.startswith(PREFIX) or self.reference is None else self.reference.table_values(metric)

    def info(self) -> dict:
        key = self.key(self.proxy)
        out = {
            **super().info(),
            "proxy": self.proxy,
            "proxy_version": key.version,
            "proxy_summary": registry.load("proxy", self.proxy).summary,
            "seed": key.seed,
            "resolution": key.resolution,
            "batch_size": key.batch_size,
            "device": self.device,
            "cache": str(self.cache.path),
        }
        if self.reference is not None:  # the tabular objective's keys: the run summary prints them
            ref = self.reference.info()
            out.update({k: ref[k] for k in ("table", "table_description", "simulated")})
        return out

    def describe(self) -> str:
        key = self.key(self.proxy)
        return (f"maximise {self.name}, a training-free proxy of the untrained model (seed {key.seed}, "
                f"{key.resolution}x{key.resolution} inputs, batch {key.batch_size}, on {self.device})")
