"""The record of one run: what was searched, what was evaluated, what was found.

A ``RunResult`` is plain data (numpy arrays and dicts) so it can be written as
JSON, aggregated by a study, and compared for determinism.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class RunResult:
    """One searcher x objective x space x seed, with its full history.

    ``history`` holds one entry per distinct evaluated arch, in evaluation order:
    ``index`` (arch index), ``value`` ``(n, k)`` optimised values, ``feasible``,
    ``cost`` and ``time`` (wall seconds since the run started), plus ``step``
    (which ask/tell round evaluated it) and ``violation``. With one target, ``best`` is
    the best feasible arch (``None`` when no evaluated arch was feasible with a finite
    value); with several, ``best`` is ``None`` and ``front`` holds the feasible
    non-dominated archs with their hypervolume (see ``core.fronts.summarise``).
    A searcher that hands in its own answer (``Searcher.pick``) sets ``best`` either way.
    """

    space: str
    objective: str
    searcher: str
    seed: Any
    budget: int
    targets: tuple[str, ...]
    directions: tuple[str, ...]
    history: dict[str, np.ndarray]
    best_index: int | None
    best_arch: dict[str, Any] | None
    best_metrics: dict[str, float] | None
    front: dict[str, Any] | None = None
    searcher_params: dict[str, Any] = field(default_factory=dict)
    searcher_report: dict[str, Any] = field(default_factory=dict)
    objective_info: dict[str, Any] = field(default_factory=dict)
    cost_unit: str = "GPU-hours"
    wall_time: float = 0.0
    note: str = ""

    @property
    def evaluations(self) -> int:
        return len(self.history["index"])

    @property
    def total_cost(self) -> float:
        return float(self.history["cost"].sum())

    def best_so_far(self, target: int = 0) -> np.ndarray:
        """Anytime curve: best feasible value of ``target`` after each evaluation."""
        v = self.history["value"][:, target].astype(float)
        sign = 1.0 if self.directions[target] == "max" else -1.0
        v = np.where(self.history["feasible"] & ~np.isnan(v), v * sign, -np.inf)
        return np.maximum.accumulate(v) * sign

    def to_dict(self, with_history: bool = True) -> dict[str, Any]:
        """JSON-ready dict (NaN and inf become None); no timings, so equal runs give equal dicts."""
        out = {
            "space": self.space,
            "objective": self.objective,
            "searcher": self.searcher,
            "searcher_params": self.searcher_params,
            **({"searcher_report": self.searcher_report} if self.searcher_report else {}),
            "objective_info": self.objective_info,
            "seed": self.seed,
            "budget": self.budget,
            "evaluations": self.evaluations,
            "targets": list(self.targets),
            "directions": list(self.directions),
            "cost": {"total": self.total_cost, "unit": self.cost_unit},
            "best": {"index": self.best_index, "arch": self.best_arch, "metrics": self.best_metrics},
        }
        if self.front is not None:
            f = self.front
            out["front"] = [{"index": i, "arch": a, "metrics": dict(zip(self.targets, map(finite_or_none, v)))}
                            for i, a, v in zip(f["index"], f["archs"], f["values"])]
            out.update({k: f.get(k) for k in ("hypervolume", "igd", "true_hypervolume", "recovered")})
            out["reference"] = f["scale"]
            out["hypervolume_curve"] = f["curve"]
        if self.note:
            out["note"] = self.note
        if with_history:
            h = self.history
            single = h["value"].shape[1] == 1
            out["history"] = [
                {
                    "index": int(i),
                    "value": finite_or_none(v[0]) if single else [finite_or_none(x) for x in v],
                    "feasible": bool(f),
                    "cost": finite_or_none(c),
                }
                for i, v, f, c in zip(h["index"], h["value"], h["feasible"], h["cost"])
            ]
        return json_safe(out)  # metrics, reports and info may hold NaN too: none reaches the JSON

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON (atomically: a crash never leaves half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({**self.to_dict(), "wall_time": self.wall_time}, indent=1, allow_nan=False))
        tmp.replace(path)
        return path


def json_safe(obj):
    """``obj`` with every NaN or infinite float (numpy's too) turned into None, recursively: valid, strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(json_safe(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
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
    return x if np.isfinite(x) else None
