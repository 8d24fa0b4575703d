"""The runner owns the search loop: ask, de-duplicate, evaluate, tell, charge, record.

``run`` is the one Python entry point; the CLI and the study engine both call it.
The budget counts *distinct* archs evaluated: an arch asked again is answered
from the run's own cache at no cost (HyViTas-Bench's "up to 100 candidate
architectures"). The loop is written for the tabular hot path: a handful of
numpy calls per step, no per-arch Python objects beyond the index cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from nas_lab.core.charged import Charged
from nas_lab.core.errors import UserError
from nas_lab.core.history import COLUMNS, History
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.record import metric_info
from nas_lab.core.results import RunResult
from nas_lab.core.searcher import Searcher
from nas_lab.core.settings import Setting, check_all, current, declared, space_bounds
from nas_lab.core.space import Space

#: a searcher that proposes only already-evaluated archs this many times in a row is stopped
MAX_IDLE_ASKS = 1000

Progress = Callable[[int, int, float], None]


def check_compatible(space: Space, objective: Objective, searcher: Searcher) -> None:
    """Refuse, before anything is spent, a combination that cannot run: what the searcher and the objective need
    of the space, and searcher settings bounded by the space (``le="space.dim"``)."""
    check_all(declared(type(searcher)), current(searcher), "searcher", space_bounds(space))
    caps = space.capabilities()
    for who, needs in ((f"searcher {searcher.name!r}", searcher.needs),
                       (f"objective {objective.name!r}", objective.needs)):
        missing = sorted(set(needs) - caps)
        if missing:
            raise UserError(
                f"{who} needs a space that offers {', '.join(missing)}, but space {space.name!r} "
                f"offers only {', '.join(sorted(caps))}"
            )
    if len(objective.targets) > 1 and not searcher.multi_objective:
        raise UserError(
            f"objective {objective.name!r} optimises {len(objective.targets)} metrics but searcher "
            f"{searcher.name!r} is single-objective; use a multi-objective searcher or a single metric"
        )


def check_proposal(space: Space, searcher: Searcher, archs: np.ndarray) -> None:
    """``ValueError`` (a plug-in's bug, not bad input) unless ``archs`` is an ``(m, d)`` batch of valid option
    indices of ``space``."""
    if archs.ndim != 2 or archs.shape[1] != space.dim:
        raise ValueError(f"searcher {searcher.name!r} asked for {archs.shape} archs; expected (m, {space.dim})")
    if (archs < 0).any() or (archs >= space.sizes).any():
        raise ValueError(f"searcher {searcher.name!r} proposed an option index outside the space")


#: a run's budget: distinct archs, so at most the space's (declared here, where every run passes)
BUDGET = Setting("budget", int, 100, ge=1, le="space.cardinality",
                 help="distinct architectures to evaluate; asking again for an evaluated one is free")


def run(
    space: Space,
    objective: Objective,
    searcher: Searcher,
    budget: int = 100,
    seed: int | list[int] = 0,
    progress: Progress | None = None,
    report: Sequence[str] = (),
) -> RunResult:
    """Search ``space`` for ``objective`` with ``searcher`` until ``budget`` distinct archs are evaluated.

    ``seed`` is an int or a list of ints (a study passes ``[study_seed, repeat]``);
    the searcher and the objective get independent generators spawned from
    ``SeedSequence(seed)``, so the same seed gives the same run.
    ``progress(evaluated, budget, best_value)`` is called after every step.
    ``report`` names metrics to record for the found arch beside the objective's own report (a study's
    ``report:`` columns), so that reports read them from the record.
    """
    check_compatible(space, objective, searcher)
    BUDGET.coerce(budget, "", space_bounds(space))
    if len(objective.targets) > 1:  # a tabulated space's true front, now: an impossible bound or reference fails
        from nas_lab.core.fronts import run_scale, true_front  # before the search

        if true_front(objective) is None:
            run_scale(objective, np.empty((0, len(objective.targets))))
    searcher_rng, objective_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    history = History(budget, len(objective.targets), exact_index=space.big)
    searcher.reset(space, Charged(objective, history.__contains__), searcher_rng)  # never the objective itself

    step = idle = 0
    best = -np.inf
    sign = 1.0 if objective.directions[0] == "max" else -1.0
    note = ""
    t0 = time.perf_counter()

    while len(history) < budget:
        n = len(history)
        archs = np.asarray(searcher.ask(budget - n), dtype=np.int64)
        if archs.size == 0:  # the searcher has nothing more to propose (a one-shot searcher's derived arch is in)
            note = f"searcher finished after {n} of {budget} evaluations"
            break
        check_proposal(space, searcher, archs)
        idx = space.index(archs).tolist()

        fresh: dict[int, int] = {}  # new arch index -> its first position in this batch
        for pos, i in enumerate(idx):
            if i not in history and i not in fresh and len(fresh) < budget - n:
                fresh[i] = pos
        if fresh:
            idle = 0
            ev = objective.evaluate(archs[list(fresh.values())], objective_rng)
            history.append(list(fresh), ev, time.perf_counter() - t0, step)
            best = max(best, float(ev.fitness[:, 0].max()))
        else:
            idle += 1
            if idle >= MAX_IDLE_ASKS:
                note = f"stopped early: searcher proposed only evaluated archs {MAX_IDLE_ASKS} times in a row"
                break

        if len(fresh) == len(idx):
            searcher.tell(archs, ev)  # common case: every arch asked was new
        else:  # every asked arch is told back, in order: evaluated now, answered from the cache, or cut
            searcher.tell(archs, history.answer(idx, list(fresh.values()), objective.directions))
        step += 1
        if progress is not None:
            progress(len(history), budget, best * sign)

    return _result(space, objective, searcher, budget, seed, history.arrays(), time.perf_counter() - t0, note, report)


def _result(space, objective, searcher, budget, seed, history, wall, note, report) -> RunResult:
    fit = Evaluation(
        values=history["value"],
        directions=objective.directions,
        cost=history["cost"],
        feasible=history["feasible"],
    ).fitness[:, 0]
    best_index = best_arch = best_metrics = front = None
    pick = searcher.pick()
    if pick is not None and pick not in set(history["index"].tolist()):
        raise ValueError(f"searcher {searcher.name!r} picked architecture {pick}, which the run never evaluated")
    if len(objective.targets) > 1:  # several targets: the result is a front, not one best arch (unless picked)
        from nas_lab.core.fronts import summarise

        front = summarise(history, objective)
        front["archs"] = [space.describe(a) for a in space.arch(front["index"])]  # Python ints for a big space
    elif pick is None and len(fit) and np.isfinite(fit.max()):
        pick = int(history["index"][int(np.argmax(fit))])
    if pick is not None:
        best_index = pick
        arch = space.arch(best_index)
        best_arch = space.describe(arch)
        reported = objective.report(arch[None])
        reported.update({m: objective.measure(m, arch[None]) for m in report if m not in reported})
        best_metrics = {m: float(v[0]) for m, v in reported.items()}
    names = dict.fromkeys([*objective.targets, *(best_metrics or {}), *(m for m in history if m not in COLUMNS)])
    result = RunResult(
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
        front=front,
        searcher_params=searcher.params(),
        searcher_report=searcher.report(),
        objective_info=objective.info(),
        cost_unit=objective.cost_unit,
        wall_time=wall,
        note=note,
        cardinality=space.cardinality,
        searcher_title=searcher.title or searcher.name,
        description=objective.describe(),
        metrics=metric_info(objective, names),
    )
    if len(objective.targets) == 1:
        rows = result.incumbent_rows()
        index = history["index"][rows]
        tabulated = [m for m, info in result.metrics.items() if "mean" in info]
        result.incumbents = {"evaluation": (rows + 1).tolist(), "index": index.tolist(),
                             "metrics": {m: objective.table_values(m)[index] for m in tabulated}}
    return result
