"""``nas-lab correlate``: rank correlation of zero-cost proxies with a benchmark-table metric (HyViTas-Bench
Table 5), printed, written as CSV and plotted."""

from __future__ import annotations

from pathlib import Path

from nas_lab.cli import precompute
from nas_lab.cli.common import interruptible
from nas_lab.cli.precompute import MAX_SAMPLE
from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting, help_text

SETTINGS = {**precompute.SETTINGS, **{s.name: s for s in (
    Setting("sample", int, 1000, ge=1, le=MAX_SAMPLE, help="archs correlated, drawn with seed"),
    Setting("metric", str, None, help="table metric (none: the table's first accuracy, id or test.cifar10)"),
    Setting("table", str, None, help="benchmark table, a built-in name or a path (none: the space's own)"),
    Setting("stratify", bool, False, help="one arch per equal-count stratum of the metric instead of a random sample"),
    Setting("reference", str, None, help="folder of published values, <proxy>.csv (index, value): Spearman rho too"),
    Setting("out", str, None, help="output folder (none: results/correlate/<space>_<metric>)"),
)}}

HELP = f"""\
Rank correlation (Kendall tau, Spearman rho) of zero-cost proxies with a benchmark-table metric
over a fixed sample of archs (HyViTas-Bench Table 5): printed, written as CSV, plotted as PNG+PDF.
Proxy values come from the cache; missing ones are computed in parallel as by `nas-lab precompute`.

Settings (key=value):
{help_text(SETTINGS)}

examples:
  nas-lab correlate space=hyvitas proxies=params,naswot,synflow metric=ood.sketch
  nas-lab correlate space=nb201 proxies=naswot,synflow metric=test.cifar10 sample=1000 table=PATH
  nas-lab correlate space=nb201 proxies=naswot,synflow,logsynflow sample=200 stratify=true table=PATH
      reference=DIR     (one command: our values against published ones)
"""


def add_parser(sub) -> None:
    precompute.add_zero_cost_parser(sub, "correlate", "rank-correlate zero-cost proxies with a table metric", command,
                                    HELP)


def command(args) -> int:
    from nas_lab.objectives.tabular.objective import TabularObjective, reference_table
    from nas_lab.objectives.zero_cost.correlate import correlate, stratified_indices
    from nas_lab.objectives.zero_cost.precompute import sample_indices

    s, space, proxies, indices, options = precompute.zero_cost_job(args, SETTINGS)
    metric = s["metric"]
    if metric is None:
        reference = reference_table(space, s["table"])
        if reference is None:
            raise UserError(f"space {space.name!r} has no benchmark table here; give one with table=PATH and a metric=")
        metric = reference.metric
    if s["stratify"]:
        if not space.enumerable:
            raise UserError(f"stratify=true ranks every arch of the space by the metric, and space {space.name!r} has "
                            f"{space.cardinality:,}, too many; leave stratify out to draw a simple random sample")
        valid = sample_indices(space, None, s["seed"])
        values = TabularObjective(space, metric, table=s["table"]).measure(metric, space.arch(valid))
        indices = stratified_indices(values, valid, s["sample"], s["seed"])
    out = Path(s["out"] or Path("results/correlate") / f"{space.name}_{metric}")
    with interruptible("the proxy values computed so far are in the cache; run the same command again"):
        result = correlate(space, proxies, metric, indices, out, table=s["table"], reference=s["reference"], **options)
    print(result.text())
    print("written: " + ", ".join(str(p) for p in result.paths))
    return 0
