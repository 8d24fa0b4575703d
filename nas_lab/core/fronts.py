"""Pareto fronts of runs with several targets, and their quality: hypervolume, IGD, share of the true front.

Non-dominated sorting, hypervolume and IGD are pymoo's. Every target is turned
into a minimisation (maximised metrics are negated) before they see it.

Normalisation and reference point (recorded with every run as ``front.scale``):

- **Tabulated space** (the objective can evaluate every arch cheaply, e.g. a
  benchmark table plus closed-form sizes): the true front is computed from all
  feasible archs; targets are normalised by its ideal and nadir points, so the
  true front spans [0, 1] on every axis, and the reference point is the nadir
  (EvoXBench's convention). ``objective.reference=`` may move the reference.
- **Otherwise**: no normalisation; the reference point is ``objective.reference=``
  in the metrics' own units, else the worst value of each target among the run's
  own feasible evaluations. That default makes a run's hypervolume comparable
  only with itself; a study report therefore recomputes every run of a setting
  against one shared reference (the worst over all its runs).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from nas_lab.core.errors import UserError

#: an anytime hypervolume curve is computed at this many evaluation counts at most
CURVE_POINTS = 50


def minimisation(values: np.ndarray, directions) -> np.ndarray:
    """``(n, k)`` values as a minimisation problem: maximised targets negated."""
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return np.asarray(values, dtype=float) * sign


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Sorted row numbers of the non-dominated rows of a minimisation ``F`` (ties all kept)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    if len(F) == 0:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=np.int64))


@dataclass(frozen=True)
class Scale:
    """How a front is measured: ``(F - ideal) / (nadir - ideal)`` (minimisation form), against ``reference``."""

    ideal: np.ndarray
    nadir: np.ndarray
    reference: np.ndarray  # in normalised units
    source: str  # "true front", "objective.reference" or "run"

    def normalise(self, F: np.ndarray) -> np.ndarray:
        return (F - self.ideal) / self.span

    @property
    def span(self) -> np.ndarray:
        span = self.nadir - self.ideal
        return np.where(span > 0, span, 1.0)

    def hypervolume(self, F: np.ndarray) -> float:
        """Hypervolume of the points of ``F`` (minimisation form, natural units) that beat the reference."""
        from pymoo.indicators.hv import HV

        G = self.normalise(F)
        G = G[(G < self.reference).all(axis=1)]
        return float(HV(ref_point=self.reference).do(G)) if len(G) else 0.0

    def describe(self, directions) -> dict:
        """JSON-ready record of the scale, in the metrics' own units and directions."""
        sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
        natural = lambda v: (np.asarray(v) * sign).tolist()  # noqa: E731
        return {"ideal": natural(self.ideal), "nadir": natural(self.nadir),
                "reference": natural(self.reference * self.span + self.ideal), "source": self.source}


@dataclass(frozen=True)
class TrueFront:
    """The feasible non-dominated archs of a fully tabulated objective."""

    index: np.ndarray  # arch indices of the front
    F: np.ndarray  # their targets, minimisation form
    scale: Scale
    hypervolume: float


_TRUE_FRONTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def true_front(objective) -> TrueFront | None:
    """The objective's true front, computed once per objective; ``None`` when the space is not tabulated."""
    if objective in _TRUE_FRONTS:
        return _TRUE_FRONTS[objective]
    front = None
    if objective.space.enumerable:  # tabulated whole when the objective is cheap
        every = objective.exhaustive()
        if every is not None:
            values, feasible = every
            F = minimisation(values, objective.directions)
            ok = feasible & np.isfinite(F).all(axis=1)
            rows = np.flatnonzero(ok)[non_dominated(F[ok])]
            if len(rows) == 0:
                raise UserError(f"no architecture of space {objective.space.name!r} is feasible for "
                                f"{objective.describe()}; loosen the constraints")
            ideal, nadir = F[rows].min(axis=0), F[rows].max(axis=0)
            scale = Scale(ideal, nadir, _reference(objective, ideal, nadir, F[ok]), "true front")
            front = TrueFront(rows.astype(np.int64), F[rows], scale, scale.hypervolume(F[rows]))
    _TRUE_FRONTS[objective] = front
    return front


def _reference(objective, ideal: np.ndarray, nadir: np.ndarray, feasible_F: np.ndarray) -> np.ndarray:
    """The normalised reference point: the nadir, or ``objective.reference`` when given."""
    given = getattr(objective, "reference", None)
    if given is None:
        return np.ones(len(ideal))
    span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
    ref = (minimisation(np.asarray(given)[None], objective.directions)[0] - ideal) / span
    _check_volume(given, ref)  # the box between the ideal (0 once normalised) and the reference bounds every volume
    if not ((feasible_F - ideal) / span < ref).all(axis=1).any():
        raise UserError(f"objective.reference={','.join(f'{v:g}' for v in given)} is beaten by no feasible "
                        f"architecture on every target, so every hypervolume would be 0; choose a worse point")
    return ref


def _check_volume(given, box: np.ndarray) -> None:
    """Refuse a reference point whose hypervolume would overflow a float (``box``: the sides of a box it spans)."""
    with np.errstate(over="ignore"):
        volume = np.prod(box)
    if not np.isfinite(volume):
        raise UserError(f"objective.reference={','.join(f'{v:g}' for v in given)} spans a hypervolume too large for a "
                        "floating-point number (beyond 1.8e308); choose a point nearer the metrics' ranges")


def run_scale(objective, F: np.ndarray) -> Scale:
    """The scale of a run whose space is not tabulated: ``objective.reference``, else the run's own worst."""
    k = F.shape[1]
    given = getattr(objective, "reference", None)
    if given is not None:
        ref = minimisation(np.asarray(given)[None], objective.directions)[0]
        _check_volume(given, np.abs(ref))  # the box between the origin and the reference, at the least
        return Scale(np.zeros(k), np.ones(k), ref, "objective.reference")
    worst = F.max(axis=0) if len(F) else np.zeros(k)
    return Scale(np.zeros(k), np.ones(k), worst, "run")


def summarise(history: dict[str, np.ndarray], objective) -> dict:
    """The front a run found and its quality, JSON-ready: ``index`` and ``values`` of the front's archs (best
    first target first), ``rows`` in the history, ``hypervolume``, ``curve`` (evaluations, hypervolume), and
    where the space is tabulated ``igd``, ``true_hypervolume``, ``recovered`` (share of the true front's
    archs found), ``true_size`` and ``true_front`` (its values, best first target first); ``scale`` says how it
    was measured."""
    directions = objective.directions
    F = minimisation(history["value"], directions)
    ok = history["feasible"] & np.isfinite(F).all(axis=1)
    feasible_rows = np.flatnonzero(ok)
    rows = feasible_rows[non_dominated(F[ok])]
    rows = rows[np.lexsort(F[rows].T[::-1])]  # by the first target (best first), then the next
    truth = true_front(objective)
    scale = truth.scale if truth is not None else run_scale(objective, F[ok])
    out = {
        "index": history["index"][rows].tolist(),
        "values": history["value"][rows].tolist(),
        "rows": rows.tolist(),
        "hypervolume": scale.hypervolume(F[rows]),
        "curve": _curve(F, ok, scale),
        "scale": scale.describe(directions),
    }
    if truth is not None:
        from pymoo.indicators.igd import IGD

        out["igd"] = float(IGD(scale.normalise(truth.F)).do(scale.normalise(F[rows]))) if len(rows) else None
        out["true_hypervolume"] = truth.hypervolume
        out["recovered"] = float(np.isin(truth.index, history["index"][rows]).mean())
        out["true_size"] = len(truth.index)
        order = np.lexsort(truth.F.T[::-1])
        out["true_front"] = minimisation(truth.F[order], directions).tolist()  # natural units: reports draw it
    return out


def _curve(F: np.ndarray, ok: np.ndarray, scale: Scale) -> list[list[float]]:
    """``[evaluations, hypervolume]`` pairs at up to ``CURVE_POINTS`` evenly spaced evaluation counts."""
    n = len(F)
    counts = np.unique(np.linspace(1, n, min(n, CURVE_POINTS)).round().astype(int)) if n else []
    out = []
    for c in counts:
        seen = np.flatnonzero(ok[:c])
        front = seen[non_dominated(F[seen])]
        out.append([int(c), scale.hypervolume(F[front])])
    return out
