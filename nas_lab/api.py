"""The Python API, for notebooks: ``run`` one search and ``load_study`` a study's records, as pandas frames.

``run`` takes the settings of ``nas-lab run`` as keyword arguments and goes through the same ``RunConfig``
and builders, so a name or value the command refuses is refused here with the same sentence (``UserError``).
A space, objective or searcher may be passed as an object instead of a name. Nothing here imports torch
unless a plug-in that trains is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nas_lab.core.config import RunConfig, build_problem, build_searcher
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import Objective
from nas_lab.core.parallel import limit_threads
from nas_lab.core.record import config_of
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run as run_search
from nas_lab.core.searcher import Searcher
from nas_lab.core.space import Space

_KINDS = {"space": Space, "objective": Objective, "searcher": Searcher}


def run(space: str | Space | None = None, searcher: str | Searcher | None = None,
        objective: str | Objective | None = None, *, budget: int = 100, seed: int = 0, table: str | Path | None = None,
        constraints: Iterable[str] = (), space_params: dict[str, Any] | None = None,
        searcher_params: dict[str, Any] | None = None, objective_params: dict[str, Any] | None = None,
        dataset: str | None = None, device: str | None = None, threads: int | None = None,
        progress: bool = False) -> RunResult:
    """One search, as ``nas-lab run`` makes it; returns its ``RunResult`` (``.history_frame()``,
    ``.front_frame()``, ``.to_record()``, ``.save(path)``).

    ``space``, ``searcher``, ``objective``: a registered name (default: those of ``nas-lab run``, hyvitas,
    rea, id), or an object; an ``Objective`` object brings its own space. ``table``: a benchmark table's
    name or path (``table=``). ``constraints``: bounds such as ``"latency.pixel3<=5"``.
    ``space_params``, ``searcher_params``, ``objective_params``: a plug-in's settings by name
    (``searcher_params={"population": 20}`` is ``searcher.population=20``), for plug-ins given by name.
    ``dataset``, ``device``: what one-shot searchers and supernet objectives train on; ``threads``: the CPU
    threads the run computes with (default 1, as ``threads=``). ``progress`` shows training bars on stderr.
    """
    given = {"space": space, "objective": objective, "searcher": searcher}
    params = {"space": space_params, "objective": objective_params, "searcher": searcher_params}
    cfg = RunConfig()
    objects = {}
    for kind, value in given.items():
        if isinstance(value, _KINDS[kind]):
            if params[kind]:
                raise UserError(f"{kind}_params apply to a {kind} given by name, not to a {kind} object; "
                                f"set them when you make the object")
            objects[kind] = value
            cfg.set(kind, value.name)  # what the record names
        elif isinstance(value, str):
            cfg.set(kind, value)
        elif value is not None:
            raise UserError(f"{kind} must be a registered name or a {_KINDS[kind].__name__}, "
                            f"got {shorten(repr(value))}")
    if "objective" in objects:
        own = objects["objective"].space
        if "space" in objects and objects["space"] != own or isinstance(space, str) and space != own.name:
            raise UserError(f"the objective object searches space {own.name!r}, not {shorten(repr(space))}; "
                            "leave space out or pass that one")
        if table is not None:
            raise UserError("table= applies to an objective given by name; an objective object has its table already")
        objects["space"] = own
        cfg.set("space", own.name)
    cfg.set("budget", budget)
    cfg.set("seed", seed)
    if table is not None:
        cfg.set("table", str(table))
    for constraint in [constraints] if isinstance(constraints, str) else constraints:
        cfg.set("constraint", constraint)
    for kind, values in params.items():
        for key, value in (values or {}).items():
            cfg.set(f"{kind}.{key}", value)
    for key, value in (("dataset", dataset), ("device", device), ("threads", threads)):
        if value is not None:
            cfg.set(key, value)
    cfg.progress = progress
    with limit_threads(cfg.threads):
        built_space, built_objective = build_problem(cfg, objects.get("space"), objects.get("objective"))
        built_searcher = objects["searcher"] if "searcher" in objects else build_searcher(cfg, built_space)
        result = run_search(built_space, built_objective, built_searcher, budget=cfg.budget, seed=cfg.seed)
    result.config = config_of(cfg)
    return result


def load_study(path: str | Path, history: bool = False):
    """A study folder's runs as one tidy pandas DataFrame, read from its records alone.

    One row per run (ordered by objective, budget, searcher, repeat): ``key``, ``searcher`` (the study's label),
    ``searcher_name`` (the registered one), ``objective``, ``budget``, ``repeat``, ``seed`` (the study's),
    ``evaluations``, ``cost``, ``best_index``, then the found arch's metrics by label (one target) or the front's
    ``hypervolume``, ``igd``, ``recovered``, ``front_size`` (several). ``history=True`` gives instead one row
    per evaluation of every run: the run's ``key``, ``searcher``, ``objective``, ``budget``, ``repeat`` and
    the columns of ``RunResult.history_frame``.
    """
    import pandas as pd

    from nas_lab.study.store import RUNS_FILE, Store, key_of

    directory = Path(path)
    if not directory.is_dir():
        raise UserError(f"study folder {directory} does not exist or is not a folder; give the folder a study wrote")
    runs = sorted({key_of(r): r for r in Store(directory).records()}.values(), key=_order)
    if not runs:
        raise UserError(f"{directory} holds no finished runs ({RUNS_FILE} is empty or missing)")
    if not history:
        return pd.DataFrame([{**_run_columns(r), **_found(r)} for r in runs])
    frames = []
    for r in runs:
        frame = r.history_frame()
        run_columns = _run_columns(r)
        for position, key in enumerate(("key", "searcher", "objective", "budget", "repeat")):
            frame.insert(position, key, run_columns[key])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _order(result: RunResult) -> tuple:
    study = result.config["study"]
    return result.config["objective"], result.budget, study["label"], study["repeat"]


def _run_columns(result: RunResult) -> dict[str, Any]:
    cfg, study = result.config, result.config["study"]
    seed = cfg["seed"][0] if isinstance(cfg["seed"], list) else cfg["seed"]
    return {"key": study["key"], "searcher": study["label"], "searcher_name": result.searcher,
            "objective": cfg["objective"], "budget": result.budget, "repeat": study["repeat"], "seed": seed,
            "evaluations": result.evaluations, "cost": result.total_cost, "best_index": result.best_index}


def _found(result: RunResult) -> dict[str, Any]:
    """What a run found: its arch's metrics by label, or its front's quality."""
    if result.front is None:
        return {result.label(m): v for m, v in (result.best_metrics or {}).items()}
    f = result.front
    return {"hypervolume": f["hypervolume"], "igd": f.get("igd"), "recovered": f.get("recovered"),
            "front_size": len(f["index"])}
