"""The ``nas-lab`` command: ``run`` one search, ``list`` what is registered.

Bad input of any kind ends in one sentence on stderr and exit status 2; a
traceback means a bug in nas_lab (or in a plug-in), never a user mistake.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nas_lab.core import registry
from nas_lab.core.config import PLUGIN_KINDS, RunConfig, build
from nas_lab.core.errors import UserError
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run

RUN_HELP = """\
Run one search and print what it found.

Settings are key=value overrides (Hydra style), applied to these defaults:
  space=hyvitas searcher=rea objective=id seed=0 budget=100
  table=NAME|PATH          benchmark table (default: the space's own, hyvitas-sim on hyvitas)
  searcher.<param>=VALUE   e.g. searcher.population=50 searcher.tournament=10
  objective.<param>=VALUE  e.g. objective.seeds=random (one training seed per query)
Objectives on a tabular benchmark are metric names: id, ood, id+ood, ood.c1..ood.c5,
ood.sketch, ood.stylized, ood.c.<corruption>.<severity>, latency.<device>, params, flops.
`nas-lab list` shows every space, objective and searcher with its parameters.

examples:
  nas-lab run searcher=rea objective=id+ood
  nas-lab run searcher=random budget=50 seed=3 --json
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas-lab", description="Neural architecture search research framework.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_run = sub.add_parser("run", help="run one search", description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_run.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. searcher=rea objective=id+ood")
    p_run.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p_run.add_argument("--out", default="results/runs", metavar="DIR", help="where the run record is written (default: %(default)s)")
    p_run.add_argument("--no-save", action="store_true", help="do not write a run record")

    p_list = sub.add_parser("list", help="list registered spaces, objectives, searchers and tables with their parameters")
    p_list.add_argument("kind", nargs="?", choices=[*PLUGIN_KINDS, "table"], help="only this kind")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _list(args.kind)
    except UserError as err:
        print(f"nas-lab: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    cfg = RunConfig().apply(args.overrides)
    space, objective, searcher = build(cfg)
    result = run(space, objective, searcher, budget=cfg.budget, seed=cfg.seed)
    saved = None if args.no_save else _save(result, Path(args.out))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(summary(result, space, objective, saved))
    return 0


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
    if result.best_arch is None:
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


def _params(params: dict, sep: str = ", ") -> str:
    return sep.join(f"{k}={v}" for k, v in params.items()) or "no parameters"


def _fmt(metric: str, value: float) -> str:
    if metric == "params":
        return f"{value / 1e6:.2f} M"
    if metric == "flops":
        return f"{value / 1e9:.3f} GFLOPs"
    if metric.startswith("latency."):
        return f"{value:.2f} ms"
    if metric.startswith(("id", "ood")):
        return f"{value:.2f} %"
    return f"{value:.4g}"


def _list(kind: str | None) -> int:
    for k in [kind] if kind else [*PLUGIN_KINDS, "table"]:
        print(f"{k}s:")
        for name in registry.names(k):
            obj = registry.load(k, name)
            print(f"  {name:<12} {registry.summary(obj)}")
            if k == "table":
                continue
            params = {p.name: p.default for p in registry.parameters(obj)}
            if registry.metric_default(obj) is not None:
                print(f"  {'':<12} objective={name}.<metric> or objective=<metric>, default metric {registry.metric_default(obj)}")
            print(f"  {'':<12} parameters: {_params(params, sep=' ')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
