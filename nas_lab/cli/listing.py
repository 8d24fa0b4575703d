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
    p.add_argument("kind", nargs="?", choices=LISTED, help="only this kind")


def command(args) -> int:
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
            print(f"  {'':<12} parameters: {format_params(params, sep=' ')}")
    return 0
