"""Study configs: a YAML file naming space, searchers, objectives, repeats and seed, plus overrides.

```yaml
name: hyvitas_table4
space: hyvitas
table: hyvitas-sim          # optional: the space's default table
budget: 100                 # or a list, e.g. [100, 150]: one grid axis more
repeats: 500
seed: 0
objectives: [id, id+ood]     # several metrics in one objective: a nested list, [[test.cifar10, latency.pixel3]]
constraints: []             # optional bounds for every run, e.g. [latency.pixel3<=5]
searchers:                  # label: parameters (``searcher:`` picks another registered name)
  random: {}
  rea: {population: 50, tournament: 10}
  spos: {repeats: 5, objectives: [id]}   # own repeats (at most the study's), objectives and budgets (budgets: [100])
  rea_small: {searcher: rea, space_params: {setting: cpu}}   # a row's own space and objective parameters
report: [params, test.cifar10]   # optional: the report's columns (default: the benchmark table's accuracies)
```

A row's ``space_params`` and ``objective_params`` override the study's for that
row only, so one study can compare variants of a space (an ablation) under the
same searcher. A parameter value ``${repeat}`` is the run's repeat number:
``objective_params: {seed: "${repeat}"}`` (quoted in braces) trains one supernet per repeat, so the
spread over repeats includes the supernet's training seed.

An objective with several metrics (a multi-objective search) is a list inside the
list, ``[[test.cifar10, latency.pixel3]]``, and ``[a,b]`` in brackets on the command
line (``objectives=[test.cifar10,latency.pixel3],[test.cifar100,params]``), since a
bare comma there already separates objectives; a quoted ``"a,b"`` entry in YAML is
refused as ambiguous. A study's objectives are all single metrics or all several.

The grid is settings (objective x budget) x searchers x repeats; run ``repeat``
of every cell gets the seed ``[seed, repeat]``, so a run's result does not
depend on which worker ran it or when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas_lab.core.config import RunConfig, build, check_seed
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Setting
from nas_lab.study.store import run_key

_KEYS = ("name", "space", "table", "budget", "repeats", "seed", "objectives", "constraints", "searchers",
         "space_params", "objective_params", "report")
_INTS = ("repeats", "seed")
#: a grid larger than this is refused (Table 4 of HyViTas-Bench is 4,010 runs): it is a typo, and listing it would
#: exhaust memory before the first run
MAX_RUNS = 1_000_000
#: a parameter value that stands for the run's repeat number
REPEAT = "${repeat}"


@dataclass(frozen=True)
class RunSpec:
    """One cell x repeat of the grid: everything needed to run it anywhere."""

    searcher: str  # the study's label
    searcher_name: str  # registered name
    searcher_params: tuple
    objective: str
    budget: int
    repeat: int
    study: "StudyConfig"
    #: the row's own space and objective parameters (over the study's)
    space_params: tuple = ()
    objective_params: tuple = ()

    @property
    def key(self) -> str:
        return run_key(self.searcher, self.objective, self.budget, self.repeat)

    @property
    def seed(self) -> list[int]:
        return [self.study.seed, self.repeat]

    def run_config(self) -> RunConfig:
        cfg = RunConfig(space=self.study.space, searcher=self.searcher_name, objective=self.objective, budget=self.budget,
                        constraints=list(self.study.constraints))
        cfg.params["searcher"] = dict(self.searcher_params)
        cfg.params["space"] = self.merged("space")
        cfg.params["objective"] = {**self.merged("objective"), **({"table": self.study.table} if self.study.table else {})}
        return cfg

    def merged(self, kind: str) -> dict[str, Any]:
        """The study's ``<kind>_params`` with this row's over them, ``${repeat}`` replaced by the repeat number."""
        params = {**getattr(self.study, f"{kind}_params"), **dict(getattr(self, f"{kind}_params"))}
        return {k: self.repeat if v == REPEAT else v for k, v in params.items()}

    def describe(self) -> dict[str, Any]:
        """The run's config as stored beside its result."""
        return {
            "space": self.study.space,
            "table": self.study.table,
            "searcher": self.searcher_name,
            "searcher_params": dict(self.searcher_params),
            "objective": self.objective,
            "space_params": self.merged("space"),
            "objective_params": self.merged("objective"),
            "constraints": list(self.study.constraints),
            "budget": self.budget,
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
    budget: int | list[int] = 100
    repeats: int = 500
    seed: int = 0
    constraints: list[str] = field(default_factory=list)
    space_params: dict[str, Any] = field(default_factory=dict)
    objective_params: dict[str, Any] = field(default_factory=dict)
    #: the report's columns, metrics of each run's found arch; None: the benchmark table's accuracies the runs reported
    report: list[str] | None = None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, str] | None = None) -> "StudyConfig":
        """Read a YAML study config and apply ``key=value`` overrides; every error is a ``UserError``."""
        path = Path(path)
        if path.is_dir():
            hint = f" (it is a study folder: `nas-lab report {path}` reports it)" if (path / "study.yaml").is_file() else ""
            raise UserError(f"study config {path} is a folder, not a YAML file; give a study config such as "
                            f"experiments/hyvitas_table4.yaml{hint}")
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
                    data[key] = parse_objectives(str(value))
                else:
                    have = data.get("searchers") if isinstance(data.get("searchers"), dict) else {}
                    _no_repeats("searchers", wanted)
                    missing = [w for w in wanted if w not in have]
                    if missing:
                        raise UserError(f"searchers={shorten(value)}: {shorten(', '.join(missing))} not in the study; "
                                        f"valid: {', '.join(have)}")
                    data[key] = {w: have[w] for w in wanted}
            else:
                data[key] = value
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise UserError(f"{source}: unknown key {shorten(repr(unknown[0]))}; valid: {', '.join(_KEYS)}")
        data["name"] = check_name(data.get("name", "study"), source)
        for key in _INTS:
            if key in data:
                data[key] = Setting(key, int, 0).coerce(data[key], "")
        check_seed(data.get("seed", 0))
        if "budget" in data:
            budgets = data["budget"]
            if isinstance(budgets, str):
                budgets = budgets.strip("[]").split(",")
            budgets = [Setting("budget", int, 0).coerce(b, "") for b in (budgets if isinstance(budgets, list) else [budgets])]
            data["budget"] = budgets[0] if len(budgets) == 1 else budgets
            _no_repeats("budget", budgets)
        for key, values in (("budget", _as_list(data.get("budget", 1))), ("repeats", [data.get("repeats", 1)])):
            for value in values:
                if value < 1:
                    raise UserError(f"{key} must be at least 1, got {value}")
        constraints = data.get("constraints") or []
        if isinstance(constraints, str):
            constraints = [c for c in constraints.split(",") if c.strip()]
        if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
            raise UserError(f"{source}: 'constraints' must be a list of bounds, e.g. constraints: [latency.pixel3<=5], "
                            f"got {shorten(constraints)}")
        data["constraints"] = constraints
        data["report"] = _report_columns(data.get("report"), source)
        for key in ("space_params", "objective_params"):
            data[key] = _mapping(data.get(key), key, source, f"{key}: {{table: hyvitas-sim}}" if key == "objective_params"
                                 else f"{key}: {{}}")
        searchers = data.get("searchers")
        if not isinstance(searchers, dict) or not searchers:
            raise UserError(f"{source}: 'searchers' must map labels to parameters, e.g. searchers: {{rea: {{population: 50}}}}")
        data["searchers"] = {str(k): _searcher_params(str(k), v, source) for k, v in searchers.items()}
        objectives = data.get("objectives")
        if isinstance(objectives, str):
            objectives = [objectives]
        if not isinstance(objectives, list) or not objectives:
            raise UserError(f"{source}: 'objectives' must be a list of objective names, e.g. objectives: [id, id+ood]")
        data["objectives"] = [objective_spec(o, source) for o in objectives]
        _no_repeats("objectives", data["objectives"])
        if len({"," in o for o in data["objectives"]}) > 1:
            raise UserError(f"{source}: objectives mix single metrics and several-metric lists; a study reports one "
                            "or the other, so split it into two studies")
        study = cls(**data)
        size = study.size()
        if size > MAX_RUNS:
            raise UserError(f"the study's grid holds {size:,} runs; at most {MAX_RUNS:,} are allowed, so lower repeats "
                            f"(now {study.repeats:,}) or split the study")
        study.validate()
        return study

    def validate(self) -> None:
        """Build every searcher and objective once, so a bad name or value fails before any run; so does a
        ``report:`` column some row's objective can neither record nor measure (what a run records of its arch
        is what its objective measures: ``Objective.report``)."""
        for spec in self.runs(repeats=1):
            _, objective, _ = build(spec.run_config())
            for metric in self.report or ():
                if not objective.can_measure(metric):
                    raise UserError(f"report column {shorten(repr(metric))} cannot be given for the {spec.searcher} "
                                    f"runs: objective {objective.name!r} neither records nor measures it; report "
                                    f"metrics it measures, such as {', '.join(objective.targets)}")

    @property
    def budgets(self) -> list[int]:
        return _as_list(self.budget)

    def settings(self) -> list[tuple[str, int]]:
        """The grid's (objective, budget) pairs, in config order: a report's groups of rows."""
        return [(o, b) for o in self.objectives for b in self.budgets]

    def size(self) -> int:
        """The number of runs in the grid, counted without listing them."""
        total = 0
        for objective, budget in self.settings():
            for label, params in self.searchers.items():
                if _in_cell(label, params, objective, budget):
                    total += min(int(params.get("repeats", self.repeats)), self.repeats)
        return total

    def runs(self, repeats: int | None = None) -> list[RunSpec]:
        """The grid, settings outermost and repeats innermost."""
        out = []
        for objective, budget in self.settings():
            for label, params in self.searchers.items():
                params = dict(params)
                name = str(params.pop("searcher", label))
                own_repeats = int(params.pop("repeats", self.repeats))
                if not _in_cell(label, params, objective, budget):
                    continue
                params.pop("objectives", None), params.pop("budgets", None)
                own = {k: tuple(sorted(params.pop(f"{k}_params", {}).items())) for k in ("space", "objective")}
                for repeat in range(min(own_repeats, self.repeats) if repeats is None else repeats):
                    out.append(RunSpec(label, name, tuple(sorted(params.items())), objective, budget, repeat, self,
                                       own["space"], own["objective"]))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML would write it (several-metric objectives as lists again)."""
        out = {k: getattr(self, k) for k in _KEYS}
        out["objectives"] = [o.split(",") if "," in o else o for o in self.objectives]
        return out

    def same_grid(self, other: "StudyConfig") -> bool:
        """True if ``other`` is this study with possibly another number of repeats (so it may resume it)."""
        mine, theirs = self.to_dict(), other.to_dict()
        for key in ("repeats", "report"):  # neither changes what a run is
            mine.pop(key), theirs.pop(key)
        return mine == theirs


def check_name(name, source: str) -> str:
    """A study name is its folder's name under the results root: one plain folder name, nothing that walks elsewhere."""
    text = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else None
    if not text or text.strip() != text or text in (".", "..") or any(c in text for c in '/\\\0'):
        raise UserError(f"{source}: name must be a plain folder name such as hyvitas_table4 (no path separators, not "
                        f"'.' or '..'), got {shorten(repr(name))}; put the folder elsewhere with out=DIR")
    return text


def _no_repeats(key: str, values: list, noun: str | None = None, place: str = "the grid") -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise UserError(f"{key} lists {shorten(repeated[0])} more than once; each {noun or key.rstrip('s')} may "
                        f"appear once in {place}")


def _report_columns(value, source: str) -> list[str] | None:
    """The ``report:`` key as a list of metric names (a comma-separated string from the command line too)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise UserError(f"{source}: 'report' must list the metrics to report, e.g. report: [params, test.cifar10], "
                        f"got {shorten(value)}")
    _no_repeats("report", value, "metric", "the report")
    return value


def _mapping(value, key: str, source: str, example: str) -> dict:
    """``value`` as a dict of parameters (None is none), else ``UserError``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(f"{source}: '{key}' must map parameter names to values, e.g. {example}, got {shorten(value)}")
    return {str(k): v for k, v in value.items()}


def _in_cell(label: str, params: dict, objective: str, budget: int) -> bool:
    """Whether a searcher runs at this setting: its own ``objectives:`` and ``budgets:`` (default: all) include it."""
    own = params.get("objectives")
    if own is not None and objective not in [objective_spec(o, f"searcher {label}") for o in _as_list(own)]:
        return False
    budgets = params.get("budgets")
    return budgets is None or budget in _as_list(budgets)


def _searcher_params(label: str, params, source: str) -> dict:
    """A searcher's entry of ``searchers:``: its parameters, with ``repeats``, ``objectives``, ``budgets``,
    ``searcher``, ``space_params`` and ``objective_params`` checked."""
    params = _mapping(params, f"searchers.{label}", source, f"{label}: {{}} or rea: {{population: 50}}")
    for key in ("space_params", "objective_params"):
        if key in params:
            example = "space_params: {setting: cpu}" if key == "space_params" else "objective_params: {seed: 1}"
            params[key] = _mapping(params[key], f"searchers.{label}.{key}", source, example)
    if "repeats" in params:
        params["repeats"] = Setting("repeats", int, 0).coerce(params["repeats"], f"searchers.{label}")
        if params["repeats"] < 1:
            raise UserError(f"searchers.{label}.repeats must be at least 1, got {params['repeats']}")
    if "searcher" in params and not isinstance(params["searcher"], str):
        raise UserError(f"searchers.{label}.searcher must be a registered searcher name, got {shorten(params['searcher'])}")
    if "budgets" in params:
        params["budgets"] = [Setting("budgets", int, 0).coerce(b, f"searchers.{label}") for b in _as_list(params["budgets"])]
    own = params.get("objectives")
    if own is not None and not (isinstance(own, str) or isinstance(own, list) and own):
        raise UserError(f"searchers.{label}.objectives must list objectives of the study, e.g. objectives: [id], "
                        f"got {shorten(own)}")
    return params


def objective_spec(entry, source: str) -> str:
    """One study objective as the run's ``objective=`` string: a metric, or a YAML list of metrics joined by commas."""
    if isinstance(entry, list):
        if not entry or not all(isinstance(m, str) and m.strip() and "," not in m for m in entry):
            raise UserError(f"{source}: a several-metric objective is a list of metric names, e.g. "
                            f"[test.cifar10, latency.pixel3]; got {shorten(entry)}")
        return ",".join(m.strip() for m in entry)
    if not isinstance(entry, str) or not entry.strip():
        raise UserError(f"{source}: each objective is a metric name or a list of metric names; got {shorten(entry)}")
    if "," in entry:
        raise UserError(f"{source}: objective {shorten(entry)} is ambiguous: write several metrics as a list, "
                        f"[{', '.join(m.strip() for m in entry.split(','))}], or separate objectives as list entries")
    return entry.strip()


def parse_objectives(text: str) -> list:
    """``objectives=`` on the command line: entries separated by commas, a bracketed ``[a,b]`` being one
    several-metric objective."""
    out, depth, current = [], 0, ""
    for ch in text + ",":
        if ch == "[":
            depth += 1
            if depth > 1:
                break
            current = current.strip()
            if current:
                break
            group = []
        elif ch == "]":
            depth -= 1
            if depth < 0:
                break
            group.append(current.strip())
            current = None
        elif ch == "," and depth == 1:
            group.append(current.strip())
            current = ""
        elif ch == "," and depth == 0:
            if current is None:
                out.append(group)
            elif current.strip():
                out.append(current.strip())
            current = ""
        elif current is None:
            if not ch.isspace():
                depth = -1
                break
        else:
            current += ch
    if depth != 0:
        raise UserError(f"objectives={shorten(text)} is not a list of objectives; e.g. objectives=id,id+ood or "
                        "objectives=[test.cifar10,latency.pixel3],[test.cifar100,params]")
    return out


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
