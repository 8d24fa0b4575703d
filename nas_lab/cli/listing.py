"""``nas-lab list``: the registered plug-ins (spaces, objectives, searchers, datasets, tables, proxies) with
their parameters."""

from __future__ import annotations

from nas_lab.cli.common import add_command, format_params
from nas_lab.core import registry

#: what `nas-lab list` shows, in this order
LISTED = ("space", "objective", "searcher", "dataset", "table", "proxy")


def add_parser(sub) -> None:
    p = add_command(sub, "list", "list registered spaces, objectives, searchers and tables with their parameters",
                    command)
    p.add_argument("kind", nargs="?", choices=LISTED,
                   help="only this kind (then each parameter's type, bounds and help)")


def command(args) -> int:
    verbose = args.kind is not None
    for k in [args.kind] if args.kind else LISTED:
        print(f"{k.replace('proxy', 'proxie')}s:")
        for name in registry.names(k):
            obj = registry.load(k, name)
            summary = obj.summary if isinstance(getattr(obj, "summary", None), str) else registry.summary(obj)
            print(f"  {name:<12} {summary}")
            if k in ("table", "proxy"):  # fixed data, nothing to set
                continue
            if registry.metric_default(obj) is not None:
                print(f"  {'':<12} objective={name}.<metric> or objective=<metric>, "
                      f"default metric {registry.metric_default(obj)}")
            declared = registry.parameters(obj)
            print(f"  {'':<12} parameters: {format_params({p.name: p.default for p in declared}, sep=' ')}")
            for p in declared if verbose else ():
                limits = f"one of {', '.join(map(str, p.choices))}" if p.choices else p.bounds()
                print(f"  {'':<14}{p.name}: {p.type_name()}{', ' + limits if limits else ''}  {p.help}")
    return 0
