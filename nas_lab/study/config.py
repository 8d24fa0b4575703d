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
dataset: folder             # optional: what runs that train networks train on (default digits), and where
dataset_params: {root: /data/imagenet}
device: cuda                # (default cpu); see executor.gpus_per_run for how runs get their GPUs
```

A row's ``space_params`` and ``objective_params`` override the study's for that
row only, so one study can compare variants of a space (an ablation) under the
same searcher. A parameter value ``${repeat}`` is the run's repeat number:
``objective_params: {seed: "${repeat}"}`` (quoted in braces) trains one supernet per repeat, so the
spread over repeats includes the supernet's training seed.

An objective with several metrics (a multi-objective search) is a list inside the
list, ``[[test.cifar10, latency.pixel3]]``, and ``[a,b]`` in brackets on the command
line (``'objectives=[test.cifar10,latency.pixel3],[test.cifar100,params]'``), since a
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

from nas_lab.core.config import RUN_SETTINGS, RunConfig, build, objective_metrics
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.files import reason
from nas_lab.core.record import config_of
from nas_lab.core.settings import Setting, read_yaml, split_list
from nas_lab.study.store import run_key

#: a grid larger than this is refused (Table 4 of HyViTas-Bench is 4,010 runs): it is a typo, and listing it would
#: exhaust memory before the first run
MAX_RUNS = 1_000_000
#: the keys of a study config, declared once (``searchers`` and ``objectives`` are read by their own functions)
STUDY_SETTINGS = {s.name: s for s in (
    Setting("name", str, "study", help="the study's folder name under results/studies"),
    Setting("space", str, "hyvitas", help="search space of every run"),
    Setting("table", str, None, help="benchmark table (default: the space's own)"),
    Setting("budget", int, (100,), many=True, ge=1, le=10**12, help="budget of every run; several make a grid axis"),
    Setting("repeats", int, 500, ge=1, le=MAX_RUNS, help="runs per searcher and setting, seeded [seed, repeat]"),
    Setting("seed", int, 0, ge=0, le=2**32 - 1, help="the study's seed"),
    Setting("objectives", str, ("id",), many=True, help="objectives, each a metric or a list of metrics [a,b]"),
    Setting("constraints", str, (), many=True, help="bounds for every run, e.g. [latency.pixel3<=5]"),
    Setting("searchers", dict, None, help="label: parameters of each searcher row"),
    Setting("space_params", dict, None, help="space parameters of every row"),
    Setting("objective_params", dict, None, help="objective parameters of every row"),
    RUN_SETTINGS["dataset"], RUN_SETTINGS["device"],
    Setting("dataset_params", dict, None, help="dataset parameters of every run, e.g. {root: /data/imagenet}"),
    Setting("report", str, None, many=True, help="the report's columns (default: the table's accuracies)"),
)}
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
    study: StudyConfig
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
        cfg = RunConfig(space=self.study.space, searcher=self.searcher_name, objective=self.objective,
                        budget=self.budget, seed=self.seed, constraints=list(self.study.constraints),
                        dataset=self.study.dataset,
                        device=self.study.device)
        cfg.params["dataset"] = dict(self.study.dataset_params)
        cfg.params["searcher"] = dict(self.searcher_params)
        cfg.params["space"] = self.merged("space")
        cfg.params["objective"] = {**self.merged("objective"),
                                   **({"table": self.study.table} if self.study.table else {})}
        return cfg

    def merged(self, kind: str) -> dict[str, Any]:
        """The study's ``<kind>_params`` with this row's over them, ``${repeat}`` replaced by the repeat number."""
        params = {**getattr(self.study, f"{kind}_params"), **dict(getattr(self, f"{kind}_params"))}
        return {k: self.repeat if v == REPEAT else v for k, v in params.items()}

    def describe(self) -> dict[str, Any]:
        """The run's config as its record keeps it: the run config, and the study's fields under ``study``."""
        return {**config_of(self.run_config()),
                "study": {"key": self.key, "label": self.searcher, "repeat": self.repeat}}


@dataclass
class StudyConfig:
    """A grid of runs: searchers x objectives x repeats on one space."""

    name: str
    searchers: dict[str, dict[str, Any]]
    objectives: list[str]
    space: str = STUDY_SETTINGS["space"].default
    table: str | None = STUDY_SETTINGS["table"].default
    budget: int | list[int] = STUDY_SETTINGS["budget"].default[0]
    repeats: int = STUDY_SETTINGS["repeats"].default
    seed: int = STUDY_SETTINGS["seed"].default
    constraints: list[str] = field(default_factory=list)
    space_params: dict[str, Any] = field(default_factory=dict)
    objective_params: dict[str, Any] = field(default_factory=dict)
    #: what runs that train networks (one-shot searchers, supernet objectives) train on, and where
    dataset: str = STUDY_SETTINGS["dataset"].default
    device: str = STUDY_SETTINGS["device"].default
    dataset_params: dict[str, Any] = field(default_factory=dict)
    #: the report's columns, metrics of each run's found arch; None: the benchmark table's accuracies the runs reported
    report: list[str] | None = None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, str] | None = None, check: bool = True) -> StudyConfig:
        """Read a YAML study config and apply ``key=value`` overrides; every error is a ``UserError``. ``check``
        builds every plug-in once (``validate``); a report reads a finished study's config without (it works from
        the run records alone)."""
        path = Path(path)
        if path.is_dir():
            hint = (f" (it is a study folder: `nas-lab report {path}` reports it)"
                    if (path / "study.yaml").is_file() else "")
            raise UserError(f"study config {path} is a folder, not a YAML file; give a study config such as "
                            f"experiments/hyvitas_table4.yaml{hint}")
        if not path.is_file():
            raise UserError(f"study config {path} does not exist; "
                            "give a YAML file such as experiments/hyvitas_table4.yaml")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot read the study config {path}: {reason(err)}") from None
        except UnicodeDecodeError:
            raise UserError(f"study config {path} is not a text file (it holds bytes that are not UTF-8); give a YAML "
                            "file such as experiments/hyvitas_table4.yaml") from None
        data = read_yaml(text, f"study config {path}")
        if not isinstance(data, dict):
            raise UserError(f"study config {path} must be a mapping with keys {', '.join(STUDY_SETTINGS)}")
        data.setdefault("name", path.stem)
        return cls.from_dict(data, overrides or {}, str(path), check)

    @classmethod
    def from_dict(cls, data: dict[str, Any], overrides: dict[str, str], source: str = "study config",
                  check: bool = True) -> StudyConfig:
        """A study from a YAML mapping and command-line overrides, every value read by its ``STUDY_SETTINGS``
        declaration (the same text means the same as in ``nas-lab run``); ``check`` as in ``load``."""
        data = dict(data)
        for key, value in overrides.items():
            if key == "objective":  # one objective, written as in `nas-lab run`
                data["objectives"] = [list(RUN_SETTINGS["objective"].coerce(value))]
            elif key == "searchers":
                have = data.get("searchers") if isinstance(data.get("searchers"), dict) else {}
                wanted = list(Setting("searchers", str, (), many=True).coerce(value))
                _no_repeats("searchers", wanted)
                missing = [w for w in wanted if w not in have]
                if missing:
                    raise UserError(f"searchers={shorten(value)}: {shorten(', '.join(missing))} not in the study; "
                                    f"valid: {', '.join(have)}")
                data[key] = {w: have[w] for w in wanted}
            else:
                data[key] = value
        unknown = sorted(set(data) - set(STUDY_SETTINGS))
        if unknown:
            raise UserError(f"{source}: unknown key {shorten(repr(unknown[0]))}; valid: {', '.join(STUDY_SETTINGS)}")
        if "objectives" not in data:
            raise UserError(f"{source}: 'objectives' must be a list of objective names, e.g. objectives: [id, id+ood]")
        if not isinstance(data.get("searchers"), dict) or not data["searchers"]:
            raise UserError(f"{source}: 'searchers' must map labels to parameters, "
                            "e.g. searchers: {rea: {population: 50}}")
        data["name"] = check_name(data.get("name", "study"), source)
        for key in ("space", "table", "repeats", "seed", "space_params", "objective_params", "dataset", "device",
                    "dataset_params"):
            if key in data:
                data[key] = STUDY_SETTINGS[key].coerce(data[key], source if data[key] is None else "")
        for key in ("budget", "constraints", "report"):
            if data.get(key) is not None:
                data[key] = list(STUDY_SETTINGS[key].coerce(data[key]))
                if not data[key] and key != "constraints":
                    raise UserError(f"{source}: '{key}' must list at least one value ({STUDY_SETTINGS[key].help})")
                _no_repeats(key, data[key], "metric" if key == "report" else None,
                            "the report" if key == "report" else "the grid")
        for key in ("space_params", "objective_params", "dataset_params"):
            data[key] = data.get(key) or {}
        if "budget" in data and len(data["budget"]) == 1:
            data["budget"] = data["budget"][0]
        data["searchers"] = {str(k): _searcher_params(str(k), v, source) for k, v in data["searchers"].items()}
        data["objectives"] = objective_list(data["objectives"], source)
        _no_repeats("objectives", data["objectives"])
        if len({len(objective_metrics(o)) > 1 for o in data["objectives"]}) > 1:
            raise UserError(f"{source}: objectives mix single metrics and several-metric lists; a study reports one "
                            "or the other, so split it into two studies")
        study = cls(**data)
        size = study.size()
        if size > MAX_RUNS:
            raise UserError(f"the study's grid holds {size:,} runs; at most {MAX_RUNS:,} are allowed, so lower repeats "
                            f"(now {study.repeats:,}) or split the study")
        if check:
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
        out = {k: getattr(self, k) for k in STUDY_SETTINGS}
        metrics = [objective_metrics(o) for o in self.objectives]
        out["objectives"] = [list(m) if len(m) > 1 else o for o, m in zip(self.objectives, metrics)]
        return out

    def same_grid(self, other: StudyConfig) -> bool:
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
    if own is not None and objective not in objective_list(_as_list(own), f"searcher {label}"):
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
        params["repeats"] = STUDY_SETTINGS["repeats"].coerce(params["repeats"], f"searchers.{label}")
    if "searcher" in params and not isinstance(params["searcher"], str):
        raise UserError(f"searchers.{label}.searcher must be a registered searcher name, "
                        f"got {shorten(params['searcher'])}")
    if "budgets" in params:
        params["budgets"] = list(STUDY_SETTINGS["budget"].coerce(params["budgets"], f"searchers.{label}"))
    own = params.get("objectives")
    if own is not None and not (isinstance(own, str) or isinstance(own, list) and own):
        raise UserError(f"searchers.{label}.objectives must list objectives of the study, e.g. objectives: [id], "
                        f"got {shorten(own)}")
    return params


def objective_list(value, source: str) -> list[str]:
    """A study's ``objectives``: a list whose entries are objectives as ``nas-lab run`` takes them (a metric, or a
    list of metrics searched together), from YAML or from the command line (``[a,b],[c,d]``; ``a,b`` is two
    one-metric objectives there, since the comma separates entries); each as its label, the metrics joined by
    commas."""
    entries = split_list(value, unwrap=False) if isinstance(value, str) else value
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{source}: 'objectives' must be a list of objective names, e.g. objectives: [id, id+ood]")
    out = []
    for entry in entries:
        if isinstance(entry, str) and "," in entry:
            raise UserError(f"{source}: objective {shorten(entry)} is ambiguous: write several metrics as a list, "
                            f"[{', '.join(m.strip() for m in entry.split(','))}], "
                            "or separate objectives as list entries")
        if not (isinstance(entry, str) and entry.strip() or isinstance(entry, list) and entry
                and all(isinstance(m, str) and m.strip() for m in entry)):
            raise UserError(f"{source}: each objective is a metric name or a list of metric names, e.g. "
                            f"[test.cifar10, latency.pixel3]; got {shorten(entry)}")
        out.append(",".join(RUN_SETTINGS["objective"].coerce(entry)))
    return out


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
