"""Run configuration: defaults, Hydra-style ``key=value`` overrides, and building the plug-ins.

``space=``, ``searcher=``, ``objective=``, ``seed=``, ``budget=`` pick the run;
``searcher.<param>=``, ``objective.<param>=`` and ``space.<param>=`` set plug-in
parameters; ``table=`` is short for ``objective.table=``; ``constraint=``
bounds a metric (``latency.pixel3<=5``; repeat it or separate with commas);
``dataset=``, ``dataset.<param>=`` and ``device=`` define the task that
one-shot searchers and supernet objectives train on; ``threads=`` sizes the
CPU thread pools the run computes with (``core.parallel.limit_threads``). An objective is named
``<family>.<metric>`` (``tabular.id+ood``) or by its metric alone, which means
the tabular family (``id+ood``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas_lab.core import registry, settings
from nas_lab.core.constraint import Constrained, run_constraints
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.joint import Joint, SpaceMetrics
from nas_lab.core.objective import DIRECTIONS, Objective, default_direction
from nas_lab.core.runner import BUDGET
from nas_lab.core.settings import Setting, parse_overrides, space_bounds
from nas_lab.core.space import Space
from nas_lab.core.task import Task

DEFAULT_OBJECTIVE_FAMILY = "tabular"
PLUGIN_KINDS = ("space", "searcher", "objective")
#: settings with their own ``<kind>.<param>=`` overrides
PARAM_KINDS = (*PLUGIN_KINDS, "dataset")

#: the settings of a run (``nas-lab run``, a study's rows, ``nas_lab.run``), declared once
RUN_SETTINGS = {s.name: s for s in (
    Setting("space", str, "hyvitas", help="search space (nas-lab list space)"),
    Setting("searcher", str, "rea", help="searcher (nas-lab list searcher)"),
    Setting("objective", str, ("id",), many=True,
            help="metric to optimise; several (a,b or [a,b]) are searched together for a Pareto front"),
    Setting("seed", int, 0, ge=0, le=2**32 - 1, help="run seed: the same settings and seed give the same result"),
    BUDGET,
    Setting("constraint", str, (), many=True,
            help="bounds on metrics, e.g. 'params<=1e6' (<=, >=, <, >; several separated by commas, or repeated)"),
    Setting("table", str, None, help="benchmark table, a built-in name or a file (short for objective.table)"),
    Setting("dataset", str, "digits", help="images that one-shot searchers and supernet objectives train on"),
    Setting("device", str, "cpu", help="torch device of training: cpu, cuda or cuda:N"),
    Setting("threads", int, 1, ge=1, le=1024,
            help="CPU threads of the run's BLAS, OpenMP and torch pools (1 keeps CPU training fast on a busy machine)"),
)}


@dataclass
class RunConfig:
    """Everything that defines one run; ``objective`` is its metrics joined by commas (its label)."""

    space: str = RUN_SETTINGS["space"].default
    searcher: str = RUN_SETTINGS["searcher"].default
    objective: str = ",".join(RUN_SETTINGS["objective"].default)
    seed: int = RUN_SETTINGS["seed"].default
    budget: int = RUN_SETTINGS["budget"].default
    constraints: list[str] = field(default_factory=list)
    dataset: str = RUN_SETTINGS["dataset"].default
    device: str = RUN_SETTINGS["device"].default
    threads: int = RUN_SETTINGS["threads"].default
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in PARAM_KINDS})
    #: show supernet training and one-shot searches as progress bars on stderr (``nas-lab run``; studies keep it off)
    progress: bool = False

    def apply(self, overrides: list[str]) -> RunConfig:
        """Apply ``key=value`` strings in order; ``UserError`` for anything malformed or unknown."""
        for key, value in parse_overrides(overrides):
            self.set(key, value)
        return self

    def set(self, key: str, value: Any) -> None:
        """One setting from text, YAML or Python: ``RUN_SETTINGS`` or ``<kind>.<param>`` of a plug-in."""
        kind, dot, param = key.partition(".")
        if dot and kind in PARAM_KINDS and param:
            self.params[kind][param] = value
        elif key in RUN_SETTINGS:
            value = RUN_SETTINGS[key].coerce(value)
            if key == "objective":
                self.objective = ",".join(value)
            elif key == "constraint":
                self.constraints += list(value)
            elif key == "table":
                self.params["objective"]["table"] = value
            else:
                setattr(self, key, value)
        else:
            raise UserError(f"unknown setting {shorten(repr(key))}; valid: {', '.join(RUN_SETTINGS)}, "
                            f"{', '.join(f'{k}.<param>' for k in PARAM_KINDS)}")

    def task(self) -> Task:
        """The dataset and device one-shot searchers and supernet objectives learn on."""
        loader = registry.load("dataset", self.dataset)  # an unknown name or a bad value fails here, before any run
        settings.read(settings.declared(loader), self.params["dataset"], "dataset", who=f"dataset {self.dataset!r}")
        return Task(self.dataset, tuple(sorted(self.params["dataset"].items())), self.device, self.progress)


def split_objective(spec: str) -> tuple[str, str | None]:
    """``(family, metric)`` of an objective spec; a bare metric belongs to the tabular family, and so does a
    metric whose first word names a family that does not claim it (``latency.pixel3``, a device column of a
    benchmark table, beside the latency family's ``latency.lut``): ``Objective.claims`` says which are a family's."""
    families = registry.names("objective")
    head, _, rest = spec.partition(".")
    if head in families:
        if not rest or registry.load("objective", head).claims(rest):
            return head, rest or None
    return DEFAULT_OBJECTIVE_FAMILY, spec


def objective_metrics(label: str) -> tuple[str, ...]:
    """The metrics of an objective from its label (``RunConfig.objective``, a study's objective): one, or several
    searched together."""
    return RUN_SETTINGS["objective"].coerce(label)


def build(cfg: RunConfig):
    """``(space, objective, searcher)`` of a config, every name and value checked."""
    space, objective = build_problem(cfg)
    return space, objective, build_searcher(cfg, space)


def build_problem(cfg: RunConfig, space: Space | None = None, objective: Objective | None = None):
    """``(space, objective)`` of a config, the run's constraints wrapped around the objective; a study builds them
    once for every run of a grid cell. A space or objective passed ready-made (the Python API:
    ``nas_lab.run(space=MySpace())``) replaces the one the config names; the constraints still wrap it."""
    if space is None:
        space = registry.create("space", cfg.space, cfg.params["space"])
    task = cfg.task()
    if objective is None:
        objective = build_objective(space, cfg.objective, dict(cfg.params["objective"]), task)
    constraints = run_constraints(space, cfg.constraints)
    if constraints:
        measurers = {c.metric: _measurer(c.metric, objective, space, cfg.params["objective"], task)
                     for c in constraints}
        objective = Constrained(objective, constraints, measurers)
    return space, objective


def build_searcher(cfg: RunConfig, space: Space):
    """The searcher of a config, given the task it may train on; bounds on ``space`` are checked now."""
    return registry.create("searcher", cfg.searcher, cfg.params["searcher"], task=cfg.task(),
                           context=space_bounds(space))


def build_objective(space: Space, spec: str, params: dict[str, Any], task: Task) -> Objective:
    """The objective of ``objective=SPEC``: one metric, or several separated by commas (a ``Joint``).

    ``objective.directions=max,min`` and ``objective.reference=a,b`` apply to several metrics; every other
    ``objective.<param>`` goes to each family that takes it.
    """
    names = list(RUN_SETTINGS["objective"].coerce(spec))
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise UserError(f"objective={shorten(spec)} names {repeated[0]!r} twice; each metric may appear once")
    directions = _per_metric(JOINT_SETTINGS["directions"], params.pop("directions", None), len(names))
    reference = _per_metric(JOINT_SETTINGS["reference"], params.pop("reference", None), len(names))
    if len(names) == 1 and (directions or reference):
        raise UserError("objective.directions and objective.reference are for several metrics "
                        "(objective=a,b); a single tabular metric takes objective.direction=max|min")
    if len(names) == 1:  # every parameter goes to the one family, which refuses those it does not take
        family, metric = split_objective(names[0])
        return registry.create("objective", family, params, *((space,) if metric is None else (space, metric)),
                               task=task)
    primary = _family_objective(names[0], space, params, task)
    extras = [(name, _measurer(name, primary, space, params, task)) for name in names[1:]]
    _check_params(params, [primary, *(o for _, o in extras)])
    extras = [(o.targets[0] if o is not primary and o.targets else name, o) for name, o in extras]
    default = tuple(primary.directions) + tuple(default_direction(m) for m, _ in extras)
    return Joint(primary, extras, directions or default, reference)


#: the settings of an objective of several metrics (a ``Joint``), beside those of its families
JOINT_SETTINGS = {s.name: s for s in (
    Setting("directions", str, None, many=True, choices=DIRECTIONS, help="max or min for each metric"),
    Setting("reference", float, None, many=True, help="hypervolume reference point, one number per metric"),
)}


def _per_metric(setting: Setting, value, k: int) -> tuple | None:
    """A ``JOINT_SETTINGS`` value with one entry per metric."""
    out = setting.coerce(value, "objective")
    if out is not None and len(out) != k:
        raise UserError(f"objective.{setting.name} needs one entry per metric ({k}), got {len(out)}: {shorten(value)}")
    return out


def _check_params(params: dict[str, Any], used: list[Objective]) -> None:
    """Every ``objective.<param>`` must be taken by one of the objective families in use."""
    classes = {type(o) for o in used if not isinstance(o, SpaceMetrics)}
    taken = {p.name for cls in classes for p in registry.parameters(cls)}
    unknown = sorted(set(params) - taken)
    if unknown:
        raise UserError(f"no objective of these metrics has a parameter {unknown[0]!r}; valid: "
                        f"{', '.join(f'objective.{p}' for p in sorted(taken | {'directions', 'reference'}))}")


def _family_objective(spec: str, space: Space, params: dict[str, Any], task: Task) -> Objective:
    """One family's objective for ``spec`` (``zc.naswot``, ``id``), given the parameters that family takes."""
    family, metric = split_objective(spec)
    takes = {p.name for p in registry.parameters(registry.load("objective", family))}
    args = (space,) if metric is None else (space, metric)
    return registry.create("objective", family, {k: v for k, v in params.items() if k in takes}, *args, task=task)


def _measurer(metric: str, primary: Objective, space: Space, params: dict[str, Any], task: Task) -> Objective:
    """The objective that measures ``metric`` beside ``primary``: another family's when the metric names one,
    else ``primary`` if it can, else the space's closed form, else the default (tabular) family."""
    family, _ = split_objective(metric)
    explicit = metric.partition(".")[0] == family
    if explicit and family != primary.family:
        return _family_objective(metric, space, params, task)
    if primary.can_measure(metric):
        return primary
    closed = SpaceMetrics(space)
    if closed.can_measure(metric):
        return closed
    if not explicit:
        return _family_objective(metric, space, params, task)
    primary.measure(metric, np.empty((0, space.dim), dtype=np.int64))  # raises the family's own sentence
    raise UserError(f"objective {primary.name!r} cannot measure {metric!r}")
