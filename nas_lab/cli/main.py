"""The ``nas-lab`` command: ``run`` one search, ``study`` a grid of them, ``report`` it, ``list`` plug-ins;
``precompute`` zero-cost proxies into their cache and ``correlate`` them with a benchmark metric; ``lut`` builds
and validates a latency look-up table (``cli/lut.py``).

Bad input of any kind ends in one sentence on stderr and exit status 2; a
traceback means a bug in nas_lab (or in a plug-in), never a user mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from nas_lab.cli import lut
from nas_lab.core import registry
from nas_lab.core.config import RunConfig, build
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.record import config_of
from nas_lab.core.settings import Setting
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import Progress, run_study
from nas_lab.study.store import DAMAGED_FILE, RUNS_FILE, FolderLock, Store, key_of

RUN_HELP = """\
Run one search and print what it found.

Settings are key=value overrides (Hydra style), applied to these defaults:
  space=hyvitas searcher=rea objective=id seed=0 budget=100
  table=NAME|PATH          benchmark table (default: the space's own, hyvitas-sim on hyvitas)
  searcher.<param>=VALUE   e.g. searcher.population=50 searcher.tournament=10
  objective.<param>=VALUE  e.g. objective.seeds=random (one training seed per query)
Objectives on a tabular benchmark are metric names: id, ood, id+ood, ood.c1..ood.c5,
ood.sketch, ood.stylized, ood.c.<corruption>.<severity>, latency.<device>, params, flops.
Other families: zc.<proxy> (zero-cost proxies), supernet.<metric> (inherited weights).
  constraint=METRIC<=X     bound any metric (<=, >=, <, >; several separated by commas)
Several metrics separated by commas are searched together (multi-objective); the run
prints its Pareto front, hypervolume and, on a tabulated space, IGD against the true front:
  objective.directions=max,min   override each metric's default direction
  objective.reference=a,b        hypervolume reference point in the metrics' units
`nas-lab list` shows every space, objective and searcher with its parameters.

examples:
  nas-lab run searcher=rea objective=id+ood
  nas-lab run searcher=random budget=50 seed=3 --json
  nas-lab run space=nb201 table=PATH objective=test.cifar10,latency.pixel3 searcher=nsga2 budget=1000
  nas-lab run objective=zc.naswot constraint=flops<=6e8
"""


STUDY_HELP = """\
Run a comparison study: every searcher x every objective x repeats, in parallel,
recorded run by run in STUDY_DIR/runs.jsonl (resumable: run the same command
again after a crash to finish), then report it (Markdown, CSV, LaTeX, plots).

Overrides (key=value):
  repeats=N budget=N seed=N space=NAME table=NAME|PATH   change the study
  searchers=a,b objectives=x,y                          run a subset
  objectives=[a,b],[c,d]                                 several-metric objectives, in brackets
  report=params,test.cifar10                            the report's columns (default: the table's accuracies)
  out=DIR            study folder (default results/studies/<name>)
  workers=N          parallel workers (default: number of cores)
  executor=local|ray executor.address=auto              Ray: local, or join a cluster

examples:
  nas-lab study experiments/hyvitas_table4.yaml
  nas-lab study experiments/hyvitas_table4.yaml repeats=20 executor=ray
"""

#: what `nas-lab list` shows, in this order
LISTED = ("space", "objective", "searcher", "dataset", "table", "proxy")

EXECUTION_DEFAULTS = {"out": "", "workers": "", "executor": "local", "executor.address": ""}

PRECOMPUTE_HELP = """\
Compute zero-cost proxy values into the on-disk cache before a zero-shot study, in parallel;
values already cached are skipped, so an interrupted precompute resumes when run again.

Settings (key=value):
  space=hyvitas proxies=a,b        required: the proxies, e.g. naswot,synflow (`nas-lab list proxy`)
  sample=N seed=0                  N random archs drawn with seed (default: the whole space)
  resolution=PX batch_size=N      input side and batch (default: the space's, e.g. 64 px and 64); seed fixes weights too
  device=cpu|cuda                  where models run
  workers=N executor=local|ray executor.address=auto   parallelism (default: every core)
  cache=PATH                       cache file (default $NAS_LAB_CACHE/zero_cost.sqlite, else ~/.cache/nas_lab/)

examples:
  nas-lab precompute space=hyvitas proxies=naswot,snip,synflow,jacob_cov,params,logsynflow
  nas-lab precompute space=nb201 proxies=naswot sample=1000 workers=8
"""

CORRELATE_HELP = """\
Rank correlation (Kendall tau, Spearman rho) of zero-cost proxies with a benchmark-table metric
over a fixed sample of archs (HyViTas-Bench Table 5): printed, written as CSV, plotted as PNG+PDF.
Proxy values come from the cache; missing ones are computed in parallel as by `nas-lab precompute`.

Settings (key=value): those of `nas-lab precompute` (sample defaults to 1000), and
  metric=NAME                      table metric (default: the table's first accuracy: id, test.cifar10)
  table=NAME|PATH                  benchmark table (default: the space's own)
  stratify=true                    one arch per equal-count stratum of the metric instead of a random sample
  reference=DIR                    also Spearman rho with published values: DIR/<proxy>.csv (index, value)
  out=DIR                          default results/correlate/<space>_<metric>

examples:
  nas-lab correlate space=hyvitas proxies=params,naswot,synflow metric=ood.sketch
  nas-lab correlate space=nb201 proxies=naswot,synflow metric=test.cifar10 sample=1000 table=../shared/data
  nas-lab correlate space=nb201 proxies=naswot,synflow,logsynflow sample=200 stratify=true table=../shared/data
      reference=../shared/data/freerea_nats/cifar10     (one command: our values against FreeREA's)
"""

#: settings of `nas-lab precompute` and their defaults; `correlate` adds CORRELATE_SETTINGS
PRECOMPUTE_SETTINGS = {p.name: p for p in (
    Setting("space", str, "hyvitas"), Setting("proxies", str, ""), Setting("sample", int, None), Setting("seed", int, 0, ge=0),
    Setting("resolution", int, None), Setting("batch_size", int, None), Setting("device", str, "cpu"),
    Setting("workers", int, None), Setting("executor", str, "local"), Setting("executor.address", str, None),
    Setting("cache", str, None),
)}
CORRELATE_SETTINGS = {**PRECOMPUTE_SETTINGS, "sample": Setting("sample", int, 1000), **{p.name: p for p in (
    Setting("metric", str, None), Setting("table", str, None), Setting("out", str, None), Setting("stratify", bool, False),
    Setting("reference", str, None),
)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas-lab", description="Neural architecture search research framework.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_run = sub.add_parser("run", help="run one search", description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_run.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. searcher=rea objective=id+ood")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p_run.add_argument("--out", default="results/runs", metavar="DIR", help="where the run record is written (default: %(default)s)")
    p_run.add_argument("--no-save", action="store_true", help="do not write a run record")
    p_run.add_argument("--no-progress", action="store_true",
                       help="no progress bars (shown on stderr while a supernet trains and a one-shot search runs)")

    p_study = sub.add_parser("study", help="run a comparison study (searchers x objectives x repeats) and report it",
                             description=STUDY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_study.add_argument("config", metavar="CONFIG.yaml", help="study config, e.g. experiments/hyvitas_table4.yaml")
    p_study.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. repeats=50 workers=2 executor=ray")
    p_study.add_argument("--no-progress", action="store_true", help="no progress bar")

    for name, text, blurb in (("precompute", PRECOMPUTE_HELP, "fill the zero-cost proxy cache ahead of a zero-shot study"),
                                 ("correlate", CORRELATE_HELP, "rank-correlate zero-cost proxies with a table metric")):
        p_zc = sub.add_parser(name, help=blurb, description=text, formatter_class=argparse.RawDescriptionHelpFormatter)
        p_zc.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=nb201 proxies=naswot,synflow")
        p_zc.add_argument("--no-progress", action="store_true", help="no progress bar")

    lut.add_parser(sub)

    p_report = sub.add_parser("report", help="(re)write the report and plots of a study folder")
    p_report.add_argument("directory", metavar="STUDY_DIR", help="folder a study wrote, e.g. results/studies/hyvitas_table4")

    p_list = sub.add_parser("list", help="list registered spaces, objectives, searchers and tables with their parameters")
    p_list.add_argument("kind", nargs="?", choices=LISTED, help="only this kind")

    # overrides may come after options (``run --json seed=3``): gather the stragglers
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {shorten(' '.join(stray))}")
    if extra:
        args.overrides += extra
    try:
        return {"run": _run, "study": _study, "report": _report, "list": _list, "precompute": _precompute,
                "correlate": _correlate, "lut": lut.command}[args.command](args)
    except UserError as err:
        print(f"nas-lab: error: {_short_words(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a terminated command cleans up as after Ctrl-C."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    """While the block runs, SIGTERM raises ``Terminated``: workers are stopped and finished work kept, as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_status(exc: KeyboardInterrupt) -> int:
    """The shell's status for a command ended by a signal: 128 + 15 for SIGTERM, 128 + 2 for SIGINT (Ctrl-C)."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def _short_words(message: str, limit: int = 200) -> str:
    """``message`` with any run of over ``limit`` non-blank characters cut by ``shorten``: whatever a message
    echoes, a pasted 100 KB value never comes back whole."""
    return re.sub(r"\S{%d,}" % (limit + 1), lambda m: shorten(m.group(0)), message)


def _run(args) -> int:
    cfg = RunConfig().apply(args.overrides)
    cfg.progress = not args.no_progress
    try:
        with _terminate_as_interrupt():
            space, objective, searcher = build(cfg)
            with _search_bar(cfg.budget, show=cfg.progress and not objective.cheap) as hook:
                result = run(space, objective, searcher, budget=cfg.budget, seed=cfg.seed, progress=hook)
            result.config = config_of(cfg)
    except KeyboardInterrupt as exc:
        print("nas-lab: interrupted; a run keeps nothing until it ends, so nothing was recorded; run the same command "
              "again to start it afresh", file=sys.stderr)
        return _interrupted_status(exc)
    saved = None if args.no_save else _save(result, Path(args.out))
    if args.json:
        print(json.dumps(result.to_record(), allow_nan=False))  # the record holds no NaN (null)
    else:
        print(summary(result, space, objective, saved))
    return 0


@contextlib.contextmanager
def _search_bar(budget: int, show: bool):
    """A progress hook for the runner: a bar over distinct archs evaluated (on stderr), for objectives that are
    not lookups (zero-cost, supernet), whose runs take minutes; ``None`` (no bar) otherwise."""
    if not show:
        yield None
        return
    from tqdm import tqdm

    bars = []  # opened at the first step, so a run refused before it starts prints only its sentence

    def hook(evaluated: int, _budget: int, best: float) -> None:
        if not bars:
            bars.append(tqdm(total=budget, unit="arch", desc="search", file=sys.stderr, dynamic_ncols=True,
                             mininterval=0.5))
        bars[0].update(evaluated - bars[0].n)
        bars[0].set_postfix_str(f"best {best:.4g}", refresh=False)

    try:
        yield hook
    finally:
        for bar in bars:
            bar.close()


def _save(result: RunResult, out: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{result.space}_{result.searcher}_{result.objective}_seed{result.seed}_{stamp}.json"
    try:
        return result.save(out / name)
    except OSError as err:
        raise UserError(f"cannot write the run record to {out}: {err.strerror}; choose another --out DIR or use --no-save") from None


def summary(result: RunResult, space, objective, saved: Path | None) -> str:
    """The few readable lines ``nas-lab run`` prints."""
    info = result.objective_info
    lines = [f"space      {space.name} ({space.cardinality:,} architectures)", f"objective  {objective.describe()}"]
    if "table" in info:
        lines.append(f"table      {info['table']}: {info['table_description']}")
    lines += [
        f"searcher   {result.searcher} ({_params(result.searcher_params)})",
        f"budget     {result.evaluations} of {result.budget} distinct architectures evaluated, seed {result.seed}, "
        f"{result.wall_time * 1e3:.1f} ms",
    ]
    if result.note:
        lines.append(f"note       {result.note}")
    for key, value in result.searcher_report.items():
        lines.append(f"{result.searcher:<10} {key}: {value:.4g}" if isinstance(value, float) else f"{result.searcher:<10} {key}: {value}")
    if result.front is not None:
        lines += front_lines(result, objective)
    elif result.best_arch is None:
        lines.append("best       none: no evaluated architecture was feasible with a finite value")
    else:
        lines.append(f"best       architecture {result.best_index}: {_params(result.best_arch, sep='  ')}")
        width = max(len(objective.label(m)) for m in result.best_metrics)
        for m, v in result.best_metrics.items():
            lines.append(f"  {objective.label(m):<{width}}  {_fmt(m, v)}")
    lines.append(
        f"cost       {result.total_cost:,.0f} {result.cost_unit} of simulated training for the evaluated architectures"
        if result.cost_unit == "GPU-hours"
        else f"cost       {result.total_cost:,.0f} {result.cost_unit}"
    )
    if saved is not None:
        lines.append(f"record     {saved}")
    return "\n".join(lines)


#: a printed front shows at most this many architectures (its first and last ones), and says how many it left out
FRONT_LINES = 12


def front_lines(result: RunResult, objective) -> list[str]:
    """The Pareto front of a run with several targets: one line per arch, sorted by the first target, then its
    hypervolume (and IGD, share of the true front and the true front's hypervolume where the space is tabulated)."""
    f = result.front
    n = len(f["index"])
    if n == 0:
        return ["front      empty: no evaluated architecture was feasible with finite values"]
    labels = [objective.label(t) for t in result.targets]
    lines = [f"front      {n} non-dominated architecture{'s' * (n != 1)} (" +
             ", ".join(f"{d} {lab}" for d, lab in zip(result.directions, labels)) + ")"]
    shown = list(range(n)) if n <= FRONT_LINES else [*range(FRONT_LINES // 2), None, *range(n - FRONT_LINES // 2, n)]
    for i in shown:
        if i is None:
            lines.append(f"  ... {n - FRONT_LINES // 2 * 2} more ...")
            continue
        metrics = "  ".join(f"{lab} {_fmt(t, v)}" for t, lab, v in zip(result.targets, labels, f["values"][i]))
        lines.append(f"  {f['index'][i]:>8}  {metrics}  [{_params(f['archs'][i], sep=' ')}]")
    scale = f["scale"]
    hv = f"hypervolume {f['hypervolume']:.4g}"
    if "true_hypervolume" in f:
        hv += (f" of the true front's {f['true_hypervolume']:.4f} ({f['hypervolume'] / f['true_hypervolume']:.1%}); "
               f"IGD {f['igd']:.4f}; {f['recovered']:.0%} of the true front's {f['true_size']} archs found")
    lines.append(f"quality    {hv}")
    ref = ", ".join(f"{v:.4g}" for v in scale["reference"])
    how = {"true front": "normalised by the true front's ideal and nadir; reference = nadir",
           "objective.reference": "reference point from objective.reference",
           "run": "reference = this run's worst feasible values (comparable only within the run; set objective.reference=)"}
    lines.append(f"           reference ({ref}): {how.get(scale['source'], scale['source'])}")
    return lines


def _params(params: dict, sep: str = ", ") -> str:
    return sep.join(f"{k}={v}" for k, v in params.items()) or "no parameters"


def _fmt(metric: str, value: float) -> str:
    if metric == "params":
        return f"{value / 1e6:.2f} M"
    if metric == "flops":
        return f"{value / 1e9:.3f} GFLOPs"
    if metric.startswith("latency."):
        return f"{value:.2f} ms"
    if metric.startswith(("id", "ood", "test.")):
        return f"{value:.2f} %"
    return f"{value:.4g}"


def _study(args) -> int:
    settings = dict(EXECUTION_DEFAULTS)
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. repeats=50 workers=2")
        (settings if key.strip() in EXECUTION_DEFAULTS else overrides)[key.strip()] = value.strip()
    study = StudyConfig.load(args.config, overrides)
    directory = Path(settings["out"] or Path("results/studies") / study.name)
    workers = Setting("workers", int, 0).coerce(settings["workers"], "") if settings["workers"] else None
    keys = {spec.key for spec in study.runs()}
    FolderLock(directory).acquire().release()  # a folder in use is refused before any bar is drawn (run_study locks it)
    already = [r for r in Store(directory).records() if key_of(r) in keys]
    progress = Progress(len(keys), already, enabled=not args.no_progress)
    try:
        with _terminate_as_interrupt():
            outcome = run_study(study, directory, workers, settings["executor"], settings["executor.address"] or None,
                                on_records=progress.update)
    except KeyboardInterrupt as exc:
        progress.close()
        print(f"nas-lab: interrupted; finished runs are kept in {directory}; run the same command again to complete the study",
              file=sys.stderr)
        return _interrupted_status(exc)
    finally:
        progress.close()
    if outcome.damaged:
        print(f"nas-lab: note: {outcome.damaged} damaged line(s) of {directory / RUNS_FILE} (blank, or not a JSON run "
              f"record) were moved to {directory / DAMAGED_FILE} and their runs run again", file=sys.stderr)
    print(f"study {study.name}: {outcome.ran} runs now, {outcome.skipped} already recorded, {outcome.total} in all; folder {directory}")
    return _print_report(directory)


def _report(args) -> int:
    return _print_report(Path(args.directory))


def _print_report(directory: Path) -> int:
    from nas_lab.study.report import write_report

    report = write_report(directory)
    store = Store(directory)
    for _ in store.records():  # the report skips damaged lines too: say how many
        pass
    if store.damaged:
        print(f"nas-lab: warning: {store.damaged_note()}", file=sys.stderr)
    print(report.markdown)
    print("written: " + ", ".join(str(p) for p in report.paths))
    return 0


def _settings(overrides: list[str], known: dict[str, Setting], command: str) -> dict:
    """``key=value`` overrides over the defaults of ``known``, each coerced to its type."""
    values = {name: p.default for name, p in known.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. space=nb201 proxies=naswot,synflow")
        if key not in known:
            raise UserError(f"unknown setting {shorten(repr(key))} of `nas-lab {command}`; valid: {', '.join(known)}")
        values[key] = known[key].coerce(value.strip(), "")
    return values


def _zero_cost_job(args, known: dict[str, Setting]):
    """The space, proxies, archs and compute options shared by ``precompute`` and ``correlate``."""
    from nas_lab.objectives.zero_cost.precompute import sample_indices

    s = _settings(args.overrides, known, args.command)
    proxies = [p.strip() for p in s["proxies"].split(",") if p.strip()]
    space = registry.create("space", s["space"], {})
    options = {k: s[k] for k in ("seed", "resolution", "batch_size", "device", "cache", "workers", "executor")}
    options.update(address=s["executor.address"], progress=not args.no_progress)
    return s, space, proxies, sample_indices(space, s["sample"], s["seed"]), options


def _precompute(args) -> int:
    from nas_lab.objectives.zero_cost.precompute import precompute

    _, space, proxies, indices, options = _zero_cost_job(args, PRECOMPUTE_SETTINGS)
    try:
        done = precompute(space, proxies, indices, **options)
    except KeyboardInterrupt:
        print("nas-lab: interrupted; every value computed so far is in the cache; run the same command again to finish",
              file=sys.stderr)
        return 130
    print(done.summary())
    return 0


def _correlate(args) -> int:
    from nas_lab.objectives.tabular.objective import TabularObjective
    from nas_lab.objectives.zero_cost.correlate import correlate, stratified_indices
    from nas_lab.objectives.zero_cost.objective import reference_table
    from nas_lab.objectives.zero_cost.precompute import sample_indices

    s, space, proxies, indices, options = _zero_cost_job(args, CORRELATE_SETTINGS)
    metric = s["metric"]
    if metric is None:
        reference = reference_table(space, s["table"])
        if reference is None:
            raise UserError(f"space {space.name!r} has no benchmark table here; give one with table=PATH and a metric=")
        metric = reference.metric
    if s["stratify"]:
        valid = sample_indices(space, None, s["seed"])
        values = TabularObjective(space, metric, table=s["table"]).measure(metric, space.arch(valid))
        indices = stratified_indices(values, valid, s["sample"], s["seed"])
    out = Path(s["out"] or Path("results/correlate") / f"{space.name}_{metric}")
    try:
        result = correlate(space, proxies, metric, indices, out, table=s["table"], reference=s["reference"], **options)
    except KeyboardInterrupt:
        print("nas-lab: interrupted; the proxy values computed so far are in the cache; run the same command again",
              file=sys.stderr)
        return 130
    print(result.text())
    print("written: " + ", ".join(str(p) for p in result.paths))
    return 0


def _list(args) -> int:
    for k in [args.kind] if args.kind else LISTED:
        print(f"{k.replace('proxy', 'proxie')}s:")
        for name in registry.names(k):
            obj = registry.load(k, name)
            summary = obj.summary if isinstance(getattr(obj, "summary", None), str) else registry.summary(obj)
            print(f"  {name:<12} {summary}")
            if k in ("table", "proxy"):  # fixed data, nothing to set
                continue
            params = {p.name: p.default for p in registry.parameters(obj)}
            if registry.metric_default(obj) is not None:
                print(f"  {'':<12} objective={name}.<metric> or objective=<metric>, default metric {registry.metric_default(obj)}")
            print(f"  {'':<12} parameters: {_params(params, sep=' ')}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
