"""Our searchers on real NAS-Bench-201 data behave as the literature and order statistics say.

Reads ../shared/data (skipped with the reason when it is absent). The table holds
test accuracy only, so searches here optimise test accuracy.
"""

import numpy as np
import pytest
from scipy.special import gammaln

from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run
from nas_lab.searchers.bananas import Bananas
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.rea import RegularizedEvolution

DATASETS = ("test.cifar10", "test.cifar100", "test.imagenet16")


@pytest.fixture(scope="module")
def objectives(shared_data):
    out = {}
    for metric in DATASETS:
        space, objective, _ = build(RunConfig(space="nb201", objective=metric).apply([f"table={shared_data}"]))
        out[metric] = (space, objective)
    return out


def best_values(space, objective, make, seeds, budget):
    return np.array([run(space, objective, make(), budget=budget, seed=s).best_metrics[objective.targets[0]]
                     for s in seeds])


def expected_max_of_distinct_draws(values: np.ndarray, k: int) -> float:
    """E[max of k archs drawn uniformly without replacement]: the i-th smallest value is the maximum
    with probability C(i-1, k-1) / C(N, k)."""
    v = np.sort(values)
    n = len(v)
    i = np.arange(k, n + 1)
    log_p = gammaln(i) - gammaln(k) - gammaln(i - k + 1) - (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    return float(np.sum(v[k - 1:] * np.exp(log_p)))


@pytest.mark.parametrize("metric", DATASETS)
def test_random_search_reaches_the_order_statistics_prediction(objectives, metric):
    space, objective = objectives[metric]
    found = best_values(space, objective, RandomSearch, range(500), budget=100)
    predicted = expected_max_of_distinct_draws(objective.values(), 100)
    se = found.std(ddof=1) / np.sqrt(len(found))
    assert abs(found.mean() - predicted) < 3 * se, (found.mean(), predicted, se)


@pytest.mark.parametrize("metric", DATASETS)
def test_rea_and_bananas_beat_random_search_at_budget_150(objectives, metric):
    space, objective = objectives[metric]
    seeds = range(60)
    rand = best_values(space, objective, RandomSearch, seeds, 150)
    rea = best_values(space, objective, lambda: RegularizedEvolution(population=10, tournament=3), seeds, 150)
    bananas = best_values(space, objective, Bananas, range(25), 150)
    assert rea.mean() > rand.mean(), (rea.mean(), rand.mean())
    assert bananas.mean() > rand[:25].mean(), (bananas.mean(), rand[:25].mean())
    assert max(rea.max(), bananas.max()) <= np.nanmax(objective.values())
