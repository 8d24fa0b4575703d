"""The run record: the one JSON shape of a finished run, written by ``nas-lab run`` and by a study's store alike,
and read back by one loader (``from_record``).

A record says everything a report prints about the run, so reports work from records alone (no benchmark
table, no objective rebuilt)::

    {"format": 1,
     "config": {"space": "nb201", "searcher": "gp", "objective": "test.cifar10", "seed": 0, "budget": 100,
                "constraints": [], "dataset": "digits", "device": "cpu",
                "params": {"space": {}, "searcher": {}, "objective": {"table": "data/"}, "dataset": {}},
                "study": {"key": "gp|test.cifar10|100|0", "label": "gp", "repeat": 0}},   # only in a study
     "space": "nb201", "cardinality": 15625,
     "objective": "test.cifar10", "description": "maximise test.cifar10", "objective_info": {"table": ...},
     "searcher": "gp", "searcher_title": "GP-BO", "searcher_params": {...}, "searcher_report": {},
     "seed": 0, "budget": 100, "evaluations": 100, "targets": ["test.cifar10"], "directions": ["max"],
     "metrics": {"test.cifar10": {"label": "CIFAR-10 test", "unit": "%",
                                  "min": 10.0, "max": 94.37, "mean": 87.06, "std": 9.1}, ...},
     "cost": {"total": 1234.5, "unit": "GPU-hours"}, "note": "",
     "best": {"index": 1462, "arch": {...}, "metrics": {"test.cifar10": 94.37, ...}},  # null if none was found
     "front": null,            # with several targets: index, archs, values, hypervolume, curve, scale, igd, ...
     "incumbents": {"evaluation": [1, 4, 17], "index": [...], "metrics": {"test.cifar10": [...], ...}},
     "history": {"index": [...], "value": [[...], ...], "feasible": [...], "violation": [...], "cost": [...],
                 "step": [...], "metrics": {...}},
     "timing": {"wall": 0.8, "evaluation": [...]}}

``config`` is the ``RunConfig`` of the run (``RunConfig(**config)`` rebuilds it; a study adds ``study``).
``metrics`` holds every metric the record names: its label and unit and, where a benchmark table holds it, its
min, max, mean and standard deviation over every arch of the space (a report's reference rows).
``incumbents`` lists when the best arch so far changed, with those archs' table metrics (a report's anytime
plot). Everything but ``timing`` is fixed by the config and seed. JSON never holds NaN or infinity: null.
"""

from __future__ import annotations

import dataclasses
import json
import math
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.files import write_atomic
from nas_lab.core.history import COLUMNS
from nas_lab.core.objective import Objective
from nas_lab.core.space import INT64_LIMIT

if TYPE_CHECKING:
    from nas_lab.core.config import RunConfig
    from nas_lab.core.results import RunResult

FORMAT = 1
#: the history columns a record keeps under ``history`` (``time`` goes to ``timing``)
HISTORY = tuple(c for c in COLUMNS if c != "time")

_STATISTICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def config_of(cfg: RunConfig) -> dict[str, Any]:
    """What a record keeps of a run's config: every field but how progress is shown."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "progress"}


def metric_info(objective: Objective, names) -> dict[str, dict[str, Any]]:
    """Label, unit and, for a metric a benchmark table holds, min, max, mean and std over every arch (computed
    once per objective: a study's chunk of runs shares it)."""
    known = _STATISTICS.setdefault(objective, {})
    out = {}
    for m in names:
        if m not in known:
            values = objective.table_values(m)
            stats = {}
            if values is not None and np.isfinite(values).any():
                stats = {"min": float(np.nanmin(values)), "max": float(np.nanmax(values)),
                         "mean": float(np.nanmean(values)), "std": float(np.nanstd(values))}
            known[m] = stats
        out[m] = {"label": objective.label(m), "unit": objective.unit(m), **known[m]}
    return out


def to_record(result: RunResult) -> dict[str, Any]:
    """The run's record (see the module docstring), JSON-ready."""
    h = result.history
    best = None if result.best_index is None else {
        "index": result.best_index, "arch": result.best_arch, "metrics": result.best_metrics}
    return json_safe({
        "format": FORMAT,
        "config": result.config,
        "space": result.space,
        "cardinality": result.cardinality,
        "objective": result.objective,
        "description": result.description,
        "objective_info": result.objective_info,
        "searcher": result.searcher,
        "searcher_title": result.searcher_title,
        "searcher_params": result.searcher_params,
        "searcher_report": result.searcher_report,
        "seed": result.seed,
        "budget": result.budget,
        "evaluations": result.evaluations,
        "targets": list(result.targets),
        "directions": list(result.directions),
        "metrics": result.metrics,
        "cost": {"total": result.total_cost, "unit": result.cost_unit},
        "note": result.note,
        "best": best,
        "front": result.front,
        "incumbents": result.incumbents,
        "history": {**{c: h[c] for c in HISTORY}, "metrics": {m: h[m] for m in h if m not in COLUMNS}},
        "timing": {"wall": result.wall_time, "evaluation": h["time"]},
    })


class DamagedRecord(ValueError):
    """A record that is not a complete, well-typed run record (a missing key, a string where a number should be):
    a study's store treats its line as damaged (counted, moved aside, its run run again)."""


def _number(v) -> bool:
    """A JSON number, or null (a NaN or infinity the record could not hold)."""
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Maybe:
    """A value that may be null."""

    def __init__(self, shape):
        self.shape = shape


class _Each:
    """A JSON object of any keys, each value of ``shape``."""

    def __init__(self, shape):
        self.shape = shape


class _Optional:
    """A key of a JSON object that may be absent."""

    def __init__(self, shape):
        self.shape = shape


_STATISTICS_KEYS = ("min", "max", "mean", "std")
_METRIC = {"label": str, "unit": str,
           **{k: _Optional(lambda v: _number(v) and v is not None) for k in _STATISTICS_KEYS}}
_TABLE_INFO = {"table": str, "table_description": str, "simulated": bool}
_STUDY_CONFIG = {"objective": str, "budget": _integer, "study": {"key": str, "label": str, "repeat": _integer}}
#: what a report reads of a record, and its type: a callable is a test, a dict a JSON object with those keys, a
#: one-item list a list of that shape
SHAPE = {
    "config": lambda v: isinstance(v, dict) and ("study" not in v or _mismatch(v, _STUDY_CONFIG) is None),
    "space": str, "cardinality": _integer, "objective": str, "description": str,
    "objective_info": lambda v: isinstance(v, dict) and ("table" not in v or _mismatch(v, _TABLE_INFO) is None),
    "searcher": str, "searcher_title": str, "searcher_params": dict, "searcher_report": dict,
    "budget": _integer, "evaluations": _integer, "targets": [str], "directions": [str],
    "metrics": _Each(lambda v: _mismatch(v, _METRIC) is None and sum(k in v for k in _STATISTICS_KEYS) in (0, 4)),
    "cost": {"total": _number, "unit": str}, "note": str,
    "best": _Maybe({"index": _integer, "arch": dict, "metrics": _Each(_number)}),
    "front": _Maybe({"index": [_integer], "values": [[_number]], "hypervolume": _number, "curve": [[_number]],
                     "scale": dict, "true_hypervolume": _Optional(_number), "true_size": _Optional(_integer)}),
    "incumbents": _Maybe({"evaluation": [_integer], "index": [_integer], "metrics": _Each([_number])}),
    "history": {c: list for c in HISTORY} | {"metrics": _Each(list)},
    "timing": {"wall": _number, "evaluation": list},
}


def _mismatch(value, shape, where: str = "") -> str | None:
    """Where ``value`` departs from ``shape`` (``SHAPE``'s notation), e.g. ``best.metrics.id``; None if it fits."""
    if isinstance(shape, _Maybe):
        return None if value is None else _mismatch(value, shape.shape, where)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return where.rstrip(".") or "the record"
        for key, inner in shape.items():
            if key not in value:
                if not isinstance(inner, _Optional):
                    return f"{where}{key}"
                continue
            found = _mismatch(value[key], inner.shape if isinstance(inner, _Optional) else inner, f"{where}{key}.")
            if found is not None:
                return found
        return None
    if isinstance(shape, _Each):
        if not isinstance(value, dict):
            return where.rstrip(".")
        return next((f for k, v in value.items() if (f := _mismatch(v, shape.shape, f"{where}{k}.")) is not None),
                    None)
    if isinstance(shape, list):
        if not isinstance(value, list):
            return where.rstrip(".")
        return next((f for v in value if (f := _mismatch(v, shape[0], where)) is not None), None)
    fits = isinstance(value, shape) if isinstance(shape, type) else shape(value)
    return None if fits else where.rstrip(".")


def from_record(record: Any, source: str = "run record") -> RunResult:
    """The ``RunResult`` of a record. ``UserError`` for a record of another nas_lab version (named by
    ``source``); ``DamagedRecord`` for anything else that is not a complete, well-typed record (a damaged line)."""
    from nas_lab.core.results import RunResult

    if not isinstance(record, dict):
        raise DamagedRecord(f"{source} is not a JSON object")
    if "format" not in record and ("history_index" in record or isinstance(record.get("history"), list)):
        raise UserError(f"{source} was written by an older nas_lab, before runs had one record shape; this version "
                        f"reads only record format {FORMAT}, so run it again (a study: into a new folder, out=DIR)")
    if record.get("format") != FORMAT:
        raise DamagedRecord(f"{source} is not a nas_lab run record of format {FORMAT}")
    wrong = _mismatch(record, SHAPE)
    if wrong is not None:
        raise DamagedRecord(f"{source} is not a complete run record: {wrong} is missing or of the wrong type")
    try:
        h = record["history"]
        n, k = len(h["index"]), len(record["targets"])
        big = record["cardinality"] > INT64_LIMIT  # exact Python ints, as the space numbers its archs
        history = {
            "index": np.array(h["index"], dtype=object if big else np.int64),
            "value": np.array(h["value"], dtype=float).reshape(n, k),  # null reads as NaN
            "feasible": np.array(h["feasible"], dtype=bool),
            "violation": np.array(h["violation"], dtype=float),
            "cost": np.array(h["cost"], dtype=float),
            "time": np.array(record["timing"]["evaluation"], dtype=float),
            "step": np.array(h["step"], dtype=np.int64),
            **{m: np.array(v, dtype=float) for m, v in h["metrics"].items()},
        }
        if any(column.shape != (n,) for name, column in history.items() if name != "value"):
            raise ValueError("history columns of different lengths")
        if (record["incumbents"] is None) != (k > 1):  # a run of one target lists its incumbents, of several its front
            raise ValueError("incumbents are listed for runs of one target only")
        incumbents = record["incumbents"] or {"evaluation": [], "index": [], "metrics": {}}
        if any(len(v) != len(incumbents["evaluation"]) for v in (incumbents["index"], *incumbents["metrics"].values())):
            raise ValueError("incumbent lists of different lengths")
        best = record["best"] or {}  # its metrics' nulls read as NaN, as the history's do
        tabulated = {m for m, info in record["metrics"].items() if "max" in info}  # a report's anytime plot reads them
        if best and incumbents["evaluation"] and (tabulated & set(best["metrics"])) - set(incumbents["metrics"]):
            raise ValueError("the incumbents lack table metrics of the best arch")
        return RunResult(
            space=record["space"], objective=record["objective"], searcher=record["searcher"], seed=record["seed"],
            budget=record["budget"], targets=tuple(record["targets"]), directions=tuple(record["directions"]),
            history=history, best_index=best.get("index"), best_arch=best.get("arch"),
            best_metrics=None if not best else {m: math.nan if v is None else v for m, v in best["metrics"].items()},
            front=record["front"], searcher_params=record["searcher_params"],
            searcher_report=record["searcher_report"], objective_info=record["objective_info"],
            cost_unit=record["cost"]["unit"], wall_time=record["timing"]["wall"], note=record["note"],
            config=record["config"], cardinality=record["cardinality"], searcher_title=record["searcher_title"],
            description=record["description"], metrics=record["metrics"], incumbents=record["incumbents"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DamagedRecord(f"{source} is not a complete run record ({type(err).__name__}: {err})") from None


def write(result: RunResult, path: str | Path) -> Path:
    """Write the record as a JSON file, atomically (a crash or a full disk never leaves half a file)."""
    return write_atomic(path, json.dumps(to_record(result), indent=1, allow_nan=False))


def read(path: str | Path) -> RunResult:
    """The run a record file holds (``nas-lab run`` writes them); ``UserError`` if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise UserError(f"cannot read run record {path}: {err.strerror}") from None
    except ValueError:
        raise UserError(f"{path} is not a run record: not JSON") from None
    try:
        return from_record(data, f"run record {path}")
    except DamagedRecord as err:
        raise UserError(str(err)) from None


def json_safe(obj):
    """``obj`` with every NaN or infinite float (numpy's too) turned into None, recursively, and numpy arrays
    into lists: valid, strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and obj.ndim == 1:  # the common case, a history column: no recursion per number
            return [x if math.isfinite(x) else None for x in obj.tolist()]
        return obj.tolist() if obj.dtype.kind in "biu" else json_safe(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return finite_or_none(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def finite_or_none(x) -> float | None:
    """A float for JSON: NaN and infinities become None."""
    x = float(x)
    return x if math.isfinite(x) else None
