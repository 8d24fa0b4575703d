"""``nas-lab run``: one search, its summary on stdout (or ``--json``) and its run record."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from nas_lab.cli.common import add_command, format_params, interruptible
from nas_lab.core.config import RUN_SETTINGS, RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.files import reason
from nas_lab.core.parallel import limit_threads
from nas_lab.core.record import config_of
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run
from nas_lab.core.settings import help_text

HELP = f"""\
Run one search and print what it found.

Settings are key=value overrides (Hydra style):
{help_text(RUN_SETTINGS)}
  searcher.<param>=VALUE   e.g. searcher.population=50 searcher.tournament=10
  objective.<param>=VALUE  e.g. objective.seeds=random (one training seed per query)
  space.<param>=VALUE, dataset.<param>=VALUE    (`nas-lab list` shows every parameter, its type and bounds)
Objectives on a tabular benchmark are metric names: id, ood, id+ood, ood.c1..ood.c5,
ood.sketch, ood.stylized, ood.c.<corruption>.<severity>, latency.<device>, params, flops.
Other families: zc.<proxy> (zero-cost proxies), supernet.<metric> (inherited weights), latency.lut.
Several metrics (a,b or [a,b]) are searched together (multi-objective); the run prints its
Pareto front, hypervolume and, on a tabulated space, IGD against the true front:
  objective.directions=max,min   override each metric's default direction
  objective.reference=a,b        hypervolume reference point in the metrics' units
Quote bounds for the shell: 'constraint=params<=1e6'.

examples:
  nas-lab run searcher=rea objective=id+ood
  nas-lab run searcher=random budget=50 seed=3 --json
  nas-lab run space=nb201 table=PATH objective=test.cifar10,latency.pixel3 searcher=nsga2 budget=1000
  nas-lab run objective=zc.naswot 'constraint=flops<=6e8'
"""


def add_parser(sub) -> None:
    p = add_command(sub, "run", "run one search", command, HELP)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. searcher=rea objective=id+ood")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("--out", default="results/runs", metavar="DIR",
                   help="where the run record is written (default: %(default)s)")
    p.add_argument("--no-save", action="store_true", help="do not write a run record")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (shown on stderr while a supernet trains and a one-shot search runs)")


def command(args) -> int:
    cfg = RunConfig().apply(args.overrides)
    cfg.progress = not args.no_progress
    with interruptible("a run keeps nothing until it ends, so nothing was recorded; run the same command again (a "
                       "supernet training goes on from its last checkpoint)"), limit_threads(cfg.threads):
        space, objective, searcher = build(cfg)
        with _search_bar(cfg.budget, show=cfg.progress and not objective.cheap) as hook:
            result = run(space, objective, searcher, budget=cfg.budget, seed=cfg.seed, progress=hook)
        result.config = config_of(cfg)
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
        raise UserError(f"cannot write the run record to {out}: {reason(err)}; "
                        "choose another --out DIR or use --no-save") from None


def summary(result: RunResult, space, objective, saved: Path | None) -> str:
    """The few readable lines ``nas-lab run`` prints."""
    info = result.objective_info
    lines = [f"space      {space.name} ({space.cardinality:,} architectures)", f"objective  {objective.describe()}"]
    if "table" in info:
        lines.append(f"table      {info['table']}: {info['table_description']}")
    lines += [
        f"searcher   {result.searcher} ({format_params(result.searcher_params)})",
        f"budget     {result.evaluations} of {result.budget} distinct architectures evaluated, seed {result.seed}, "
        f"{result.wall_time * 1e3:.1f} ms",
    ]
    if result.note:
        lines.append(f"note       {result.note}")
    for key, value in result.searcher_report.items():
        lines.append(f"{result.searcher:<10} {key}: {value:.4g}" if isinstance(value, float)
                     else f"{result.searcher:<10} {key}: {value}")
    if result.front is not None:
        lines += front_lines(result, objective)
    elif result.best_arch is None:
        lines.append("best       none: no evaluated architecture was feasible with a finite value"
                     + unchecked(objective))
    else:
        lines.append(f"best       architecture {result.best_index}: {format_params(result.best_arch, sep='  ')}")
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


def unchecked(objective) -> str:
    """Why a run may have found nothing feasible: its bounds whose reachability only evaluating could tell."""
    if not objective.unchecked:
        return ""
    return (f"; bound{'s' * (len(objective.unchecked) > 1)} {', '.join(map(str, objective.unchecked))} could not be "
            "checked before the run (only evaluating tells which values the space reaches)")


def front_lines(result: RunResult, objective) -> list[str]:
    """The Pareto front of a run with several targets: one line per arch, sorted by the first target, then its
    hypervolume (and IGD, share of the true front and the true front's hypervolume where the space is tabulated)."""
    f = result.front
    n = len(f["index"])
    if n == 0:
        return ["front      empty: no evaluated architecture was feasible with finite values" + unchecked(objective)]
    labels = [objective.label(t) for t in result.targets]
    lines = [f"front      {n} non-dominated architecture{'s' * (n != 1)} (" +
             ", ".join(f"{d} {lab}" for d, lab in zip(result.directions, labels)) + ")"]
    shown = list(range(n)) if n <= FRONT_LINES else [*range(FRONT_LINES // 2), None, *range(n - FRONT_LINES // 2, n)]
    for i in shown:
        if i is None:
            lines.append(f"  ... {n - FRONT_LINES // 2 * 2} more ...")
            continue
        metrics = "  ".join(f"{lab} {_fmt(t, v)}" for t, lab, v in zip(result.targets, labels, f["values"][i]))
        lines.append(f"  {f['index'][i]:>8}  {metrics}  [{format_params(f['archs'][i], sep=' ')}]")
    scale = f["scale"]
    hv = f"hypervolume {f['hypervolume']:.4g}"
    if "true_hypervolume" in f:
        hv += (f" of the true front's {f['true_hypervolume']:.4f} ({f['hypervolume'] / f['true_hypervolume']:.1%}); "
               f"IGD {f['igd']:.4f}; {f['recovered']:.0%} of the true front's {f['true_size']} archs found")
    lines.append(f"quality    {hv}")
    ref = ", ".join(f"{v:.4g}" for v in scale["reference"])
    how = {"true front": "normalised by the true front's ideal and nadir; reference = nadir",
           "objective.reference": "reference point from objective.reference",
           "run": "reference = this run's worst feasible values "
                  "(comparable only within the run; set objective.reference=)"}
    lines.append(f"           reference ({ref}): {how.get(scale['source'], scale['source'])}")
    return lines


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
