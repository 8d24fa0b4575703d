"""Run configuration: defaults, Hydra-style ``key=value`` overrides, and building the plug-ins.

``space=``, ``searcher=``, ``objective=``, ``seed=``, ``budget=`` pick the run;
``searcher.<param>=``, ``objective.<param>=`` and ``space.<param>=`` set plug-in
parameters; ``table=`` is short for ``objective.table=``; ``constraint=``
bounds a metric (``latency.pixel3<=5``; repeat it or separate with commas);
``dataset=``, ``dataset.<param>=`` and ``device=`` define the task that
one-shot searchers and supernet objectives train on. An objective is named
``<family>.<metric>`` (``tabular.id+ood``) or by its metric alone, which means
the tabular family (``id+ood``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas_lab.core import registry
from nas_lab.core.constraint import Constrained, Constraint
from nas_lab.core.errors import UserError
from nas_lab.core.task import Task

DEFAULT_OBJECTIVE_FAMILY = "tabular"
SHORTHANDS = {"table": ("objective", "table")}
PLUGIN_KINDS = ("space", "searcher", "objective")
#: settings with their own ``<kind>.<param>=`` overrides
PARAM_KINDS = (*PLUGIN_KINDS, "dataset")


@dataclass
class RunConfig:
    """Everything that defines one run."""

    space: str = "hyvitas"
    searcher: str = "rea"
    objective: str = "id"
    seed: int = 0
    budget: int = 100
    constraints: list[str] = field(default_factory=list)
    dataset: str = "digits"
    device: str = "cpu"
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in PARAM_KINDS})

    def apply(self, overrides: list[str]) -> "RunConfig":
        """Apply ``key=value`` strings in order; ``UserError`` for anything malformed or unknown."""
        for item in overrides:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise UserError(f"override {item!r} is not key=value; e.g. searcher=rea budget=100 searcher.population=50")
            self.set(key, value.strip())
        return self

    def set(self, key: str, value: Any) -> None:
        key = ".".join(SHORTHANDS.get(key, (key,)))
        kind, dot, param = key.partition(".")
        if dot and kind in PARAM_KINDS and param:
            self.params[kind][param] = value
        elif key in ("space", "searcher", "objective", "dataset", "device"):
            setattr(self, key, str(value))
        elif key == "constraint":
            self.constraints += [c for c in str(value).split(",") if c.strip()]
        elif key in ("seed", "budget"):
            setattr(self, key, registry.Param(key, 0, int).coerce(value, ""))
        else:
            raise UserError(
                f"unknown setting {key!r}; valid: space, searcher, objective, seed, budget, table, constraint, "
                "dataset, device, space.<param>, searcher.<param>, objective.<param>, dataset.<param>"
            )

    def task(self) -> Task:
        """The dataset and device one-shot searchers and supernet objectives learn on."""
        registry.check("dataset", self.dataset)  # an unknown name fails here, before any run
        return Task(self.dataset, tuple(sorted(self.params["dataset"].items())), self.device)


def split_objective(spec: str) -> tuple[str, str | None]:
    """``(family, metric)`` of an objective spec; a bare metric belongs to the tabular family."""
    families = registry.names("objective")
    head, _, rest = spec.partition(".")
    if head in families:
        return head, rest or None
    return DEFAULT_OBJECTIVE_FAMILY, spec


def build(cfg: RunConfig):
    """``(space, objective, searcher)`` of a config, every name and value checked."""
    space = registry.create("space", cfg.space, cfg.params["space"])
    family, metric = split_objective(cfg.objective)
    args = (space,) if metric is None else (space, metric)
    task = cfg.task()
    objective = registry.create("objective", family, cfg.params["objective"], *args, task=task)
    if cfg.constraints:
        objective = Constrained(objective, [Constraint.parse(c) for c in cfg.constraints])
    searcher = registry.create("searcher", cfg.searcher, cfg.params["searcher"], task=task)
    return space, objective, searcher
