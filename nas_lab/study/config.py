"""Study configs: a YAML file naming space, searchers, objectives, repeats and seed, plus overrides.

```yaml
name: hyvitas_table4
space: hyvitas
table: hyvitas-sim          # optional: the space's default table
budget: 100
repeats: 500
seed: 0
objectives: [id, id+ood]
searchers:                  # label: parameters (``searcher:`` picks another registered name)
  random: {}
  rea: {population: 50, tournament: 10}
```

The grid is objectives x searchers x repeats; run ``repeat`` of every cell gets
the seed ``[seed, repeat]``, so a run's result does not depend on which worker
ran it or when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.registry import Param
from nas_lab.study.store import run_key

_KEYS = ("name", "space", "table", "budget", "repeats", "seed", "objectives", "searchers", "space_params", "objective_params")
_INTS = ("budget", "repeats", "seed")


@dataclass(frozen=True)
class RunSpec:
    """One cell x repeat of the grid: everything needed to run it anywhere."""

    searcher: str  # the study's label
    searcher_name: str  # registered name
    searcher_params: tuple
    objective: str
    repeat: int
    study: "StudyConfig"

    @property
    def key(self) -> str:
        return run_key(self.searcher, self.objective, self.repeat)

    @property
    def seed(self) -> list[int]:
        return [self.study.seed, self.repeat]

    def run_config(self) -> RunConfig:
        cfg = RunConfig(space=self.study.space, searcher=self.searcher_name, objective=self.objective, budget=self.study.budget)
        cfg.params["searcher"] = dict(self.searcher_params)
        cfg.params["space"] = dict(self.study.space_params)
        cfg.params["objective"] = {**self.study.objective_params, **({"table": self.study.table} if self.study.table else {})}
        return cfg

    def describe(self) -> dict[str, Any]:
        """The run's config as stored beside its result."""
        return {
            "space": self.study.space,
            "table": self.study.table,
            "searcher": self.searcher_name,
            "searcher_params": dict(self.searcher_params),
            "objective": self.objective,
            "objective_params": dict(self.study.objective_params),
            "budget": self.study.budget,
            "seed": self.seed,
        }


@dataclass
class StudyConfig:
    """A grid of runs: searchers x objectives x repeats on one space."""

    name: str
    searchers: dict[str, dict[str, Any]]
    objectives: list[str]
    space: str = "hyvitas"
    table: str | None = None
    budget: int = 100
    repeats: int = 500
    seed: int = 0
    space_params: dict[str, Any] = field(default_factory=dict)
    objective_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, str] | None = None) -> "StudyConfig":
        """Read a YAML study config and apply ``key=value`` overrides; every error is a ``UserError``."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"study config {path} does not exist; give a YAML file such as experiments/hyvitas_table4.yaml")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise UserError(f"study config {path} is not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise UserError(f"study config {path} must be a mapping with keys {', '.join(_KEYS)}")
        data.setdefault("name", path.stem)
        return cls.from_dict(data, overrides or {}, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], overrides: dict[str, str], source: str = "study config") -> "StudyConfig":
        data = dict(data)
        for key, value in overrides.items():
            if key in ("searchers", "objectives"):
                wanted = [v.strip() for v in str(value).split(",") if v.strip()]
                if key == "objectives":
                    data[key] = wanted
                else:
                    have = data.get("searchers") or {}
                    missing = [w for w in wanted if w not in have]
                    if missing:
                        raise UserError(f"searchers={value}: {', '.join(missing)} not in the study; valid: {', '.join(have)}")
                    data[key] = {w: have[w] for w in wanted}
            else:
                data[key] = value
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise UserError(f"{source}: unknown key {unknown[0]!r}; valid: {', '.join(_KEYS)}")
        for key in _INTS:
            if key in data:
                data[key] = Param(key, 0, int).coerce(data[key], "")
        for key in ("budget", "repeats"):
            if key in data and data[key] < 1:
                raise UserError(f"{key} must be at least 1, got {data[key]}")
        searchers = data.get("searchers")
        if not isinstance(searchers, dict) or not searchers:
            raise UserError(f"{source}: 'searchers' must map labels to parameters, e.g. searchers: {{rea: {{population: 50}}}}")
        data["searchers"] = {str(k): dict(v or {}) for k, v in searchers.items()}
        objectives = data.get("objectives")
        if isinstance(objectives, str):
            objectives = [objectives]
        if not isinstance(objectives, list) or not objectives:
            raise UserError(f"{source}: 'objectives' must be a list of objective names, e.g. objectives: [id, id+ood]")
        data["objectives"] = [str(o) for o in objectives]
        study = cls(**data)
        study.validate()
        return study

    def validate(self) -> None:
        """Build every searcher and objective once, so a bad name or value fails before any run."""
        for spec in self.runs(repeats=1):
            build(spec.run_config())

    def runs(self, repeats: int | None = None) -> list[RunSpec]:
        """The grid, objectives outermost and repeats innermost."""
        out = []
        for objective in self.objectives:
            for label, params in self.searchers.items():
                params = dict(params)
                name = str(params.pop("searcher", label))
                for repeat in range(self.repeats if repeats is None else repeats):
                    out.append(RunSpec(label, name, tuple(sorted(params.items())), objective, repeat, self))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _KEYS}

    def same_grid(self, other: "StudyConfig") -> bool:
        """True if ``other`` is this study with possibly another number of repeats (so it may resume it)."""
        mine, theirs = self.to_dict(), other.to_dict()
        mine.pop("repeats"), theirs.pop("repeats")
        return mine == theirs
