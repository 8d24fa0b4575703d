"""The runner owns the search loop: ask, de-duplicate, evaluate, tell, charge, record.

``run`` is the one Python entry point; the CLI and the study engine both call it.
The budget counts *distinct* archs evaluated: an arch asked again is answered
from the run's own cache at no cost (HyViTas-Bench's "up to 100 candidate
architectures"). The loop is written for the tabular hot path: a handful of
numpy calls per step, no per-arch Python objects beyond the index cache.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.results import RunResult
from nas_lab.core.searcher import Searcher
from nas_lab.core.space import Space

#: a searcher that proposes only already-evaluated archs this many times in a row is stopped
MAX_IDLE_ASKS = 1000

Progress = Callable[[int, int, float], None]


def check_compatible(space: Space, objective: Objective, searcher: Searcher) -> None:
    """Refuse, before anything is spent, a combination that cannot run."""
    caps = space.capabilities()
    for who, needs in ((f"searcher {searcher.name!r}", searcher.needs), (f"objective {objective.name!r}", objective.needs)):
        missing = sorted(set(needs) - caps)
        if missing:
            raise UserError(
                f"{who} needs a space that can {', '.join(missing)}, but space {space.name!r} "
                f"offers only {', '.join(sorted(caps))}"
            )
    if len(objective.targets) > 1 and not searcher.multi_objective:
        raise UserError(
            f"objective {objective.name!r} optimises {len(objective.targets)} metrics but searcher "
            f"{searcher.name!r} is single-objective; use a multi-objective searcher or a single metric"
        )


def check_budget(space: Space, budget: int) -> None:
    """Budgets count distinct archs, so they lie in 1..cardinality."""
    if not isinstance(budget, (int, np.integer)) or isinstance(budget, bool) or budget < 1:
        raise UserError(f"budget must be a positive whole number of architectures, got {budget!r}")
    if budget > space.cardinality:
        raise UserError(
            f"budget {budget} exceeds the {space.cardinality:,} architectures of space {space.name!r}; "
            f"valid budgets are 1..{space.cardinality}"
        )


def run(
    space: Space,
    objective: Objective,
    searcher: Searcher,
    budget: int = 100,
    seed: int | list[int] = 0,
    progress: Progress | None = None,
) -> RunResult:
    """Search ``space`` for ``objective`` with ``searcher`` until ``budget`` distinct archs are evaluated.

    ``seed`` is an int or a list of ints (a study passes ``[study_seed, repeat]``);
    the searcher and the objective get independent generators spawned from
    ``SeedSequence(seed)``, so the same seed gives the same run.
    ``progress(evaluated, budget, best_value)`` is called after every step.
    """
    check_compatible(space, objective, searcher)
    check_budget(space, budget)
    searcher_rng, objective_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    searcher.reset(space, objective, searcher_rng)

    k, d = len(objective.targets), space.dim
    sizes = space.sizes
    h_index = np.empty(budget, dtype=np.int64)
    h_value = np.empty((budget, k))
    h_feasible = np.empty(budget, dtype=bool)
    h_cost = np.empty(budget)
    h_time = np.empty(budget)
    h_step = np.empty(budget, dtype=np.int64)
    h_metrics: dict[str, np.ndarray] = {}
    cache: dict[int, int] = {}  # arch index -> history row
    n = step = idle = 0
    best = -np.inf
    sign = 1.0 if objective.directions[0] == "max" else -1.0
    note = ""
    t0 = time.perf_counter()

    while n < budget:
        archs = np.asarray(searcher.ask(budget - n), dtype=np.int64)
        if archs.size == 0:  # the searcher has nothing more to propose (a one-shot searcher's derived arch is in)
            note = f"searcher finished after {n} of {budget} evaluations"
            break
        if archs.ndim != 2 or archs.shape[1] != d:
            raise ValueError(f"searcher {searcher.name!r} asked for {archs.shape} archs; expected (m, {d})")
        if (archs < 0).any() or (archs >= sizes).any():
            raise ValueError(f"searcher {searcher.name!r} proposed an option index outside the space")
        idx = space.index(archs).tolist()

        fresh: dict[int, int] = {}  # new arch index -> position in this batch
        for pos, i in enumerate(idx):
            if i not in cache and i not in fresh and len(fresh) < budget - n:
                fresh[i] = pos
        if fresh:
            idle = 0
            pos = list(fresh.values())
            ev = objective.evaluate(archs[pos], objective_rng)
            rows = slice(n, n + len(pos))
            h_index[rows] = list(fresh)
            h_value[rows] = ev.values
            h_feasible[rows] = ev.feasible
            h_cost[rows] = ev.cost
            h_time[rows] = time.perf_counter() - t0
            h_step[rows] = step
            for name, arr in ev.metrics.items():
                h_metrics.setdefault(name, np.full(budget, np.nan))[rows] = arr
            for j, i in enumerate(fresh):
                cache[i] = n + j
            n += len(pos)
            fit = ev.fitness[:, 0]
            if fit.max() > best:
                best = float(fit.max())
        else:
            idle += 1
            if idle >= MAX_IDLE_ASKS:
                note = f"stopped early: searcher proposed only evaluated archs {MAX_IDLE_ASKS} times in a row"
                break

        told = [p for p, i in enumerate(idx) if i in cache]
        if fresh and len(told) == len(idx) == len(fresh):
            searcher.tell(archs, ev)  # common case: every arch asked was new
        else:
            rows_t = np.array([cache[idx[p]] for p in told], dtype=np.int64)
            first = np.zeros(len(told), dtype=bool)
            first[[told.index(p) for p in fresh.values()]] = True
            searcher.tell(
                archs[told],
                Evaluation(
                    values=h_value[rows_t],
                    directions=objective.directions,
                    cost=np.where(first, h_cost[rows_t], 0.0),
                    feasible=h_feasible[rows_t],
                    metrics={m: a[rows_t] for m, a in h_metrics.items()},
                ),
            )
        step += 1
        if progress is not None:
            progress(n, budget, best * sign)

    history = {
        "index": h_index[:n],
        "value": h_value[:n],
        "feasible": h_feasible[:n],
        "cost": h_cost[:n],
        "time": h_time[:n],
        "step": h_step[:n],
        **{m: a[:n] for m, a in h_metrics.items()},
    }
    return _result(space, objective, searcher, budget, seed, history, time.perf_counter() - t0, note)


def _result(space, objective, searcher, budget, seed, history, wall, note) -> RunResult:
    fit = Evaluation(
        values=history["value"],
        directions=objective.directions,
        cost=history["cost"],
        feasible=history["feasible"],
    ).fitness[:, 0]
    best_index = best_arch = best_metrics = None
    if len(fit) and np.isfinite(fit.max()):
        best_index = int(history["index"][int(np.argmax(fit))])
        arch = space.arch(best_index)
        best_arch = space.describe(arch)
        best_metrics = {m: float(v[0]) for m, v in objective.report(arch[None]).items()}
    return RunResult(
        space=space.name,
        objective=objective.name,
        searcher=searcher.name,
        seed=seed,
        budget=budget,
        targets=tuple(objective.targets),
        directions=tuple(objective.directions),
        history=history,
        best_index=best_index,
        best_arch=best_arch,
        best_metrics=best_metrics,
        searcher_params=searcher.params(),
        searcher_report=searcher.report(),
        objective_info=objective.info(),
        cost_unit=objective.cost_unit,
        wall_time=wall,
        note=note,
    )
