"""Metrics of a tabular benchmark: raw table columns plus the derived ones papers report.

HyViTas-Bench reports RedImageNet-C averaged over its 15 core corruptions at a
severity (``ood.c1`` .. ``ood.c5``), the mean of four OoD accuracies (``ood``:
C-1, C-5, Sketch, Stylized) and the combined search target ``id+ood`` (mean of
ID and ``ood``, the caption of its Table 4). Every derived metric keeps the
per-seed axis when its inputs have one, so seed sampling works on all of them.
"""

from __future__ import annotations

import re

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.objectives.tabular.table import Table

#: the metrics a run reports for its best arch, when the table has them
REPORTED = ("id", "ood.c1", "ood.c5", "ood.sketch", "ood.stylized", "ood", "id+ood",
            "test.cifar10", "test.cifar100", "test.imagenet16", "params", "flops")

LABELS = {
    "id": "ID top-1",
    "id.top1": "ID top-1",
    "id.top5": "ID top-5",
    "ood.c1": "RedIN-C 1",
    "ood.c5": "RedIN-C 5",
    "ood.sketch": "RedIN-Sketch",
    "ood.stylized": "RedStylized-IN",
    "ood": "OoD mean",
    "id+ood": "ID+OoD",
    "test.cifar10": "CIFAR-10 test",
    "test.cifar100": "CIFAR-100 test",
    "test.imagenet16": "ImageNet16-120 test",
    "params": "params",
    "flops": "FLOPs",
    "train.hours": "training GPU-hours",
}

#: metrics a benchmark measured without training the arch (on a device, or by counting): free to a searcher, unlike
#: accuracies, which stand for trainings a run is charged for
_FREE = re.compile(r"^(latency\..+|params|flops|macs)$")
_SEVERITY = re.compile(r"^ood\.c([1-5])$")
_OOD_PARTS = ("ood.c1", "ood.c5", "ood.sketch", "ood.stylized")


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


def free(metric: str) -> bool:
    """Whether ``metric`` is a table column measured without training (a device's latency, a size)."""
    return bool(_FREE.match(metric))


def resolve(table: Table, metric: str) -> np.ndarray:
    """``(N,)`` or ``(N, seeds)`` array of a metric, raw or derived; ``UserError`` if unknown."""
    out = _derive(table, metric)
    if out is None:
        raise UserError(f"table {table.name!r} has no metric {shorten(repr(metric))}; "
                        f"valid: {', '.join(available(table))}")
    return out


def known(table: Table, metric: str) -> bool:
    return _derive(table, metric) is not None


def _derive(table: Table, metric: str) -> np.ndarray | None:
    if metric in table.columns:
        return np.asarray(table.columns[metric], dtype=float)
    if metric == "id":
        return _derive(table, "id.top1")
    m = _SEVERITY.match(metric)
    if m:
        cols = [c for c in table.columns if c.startswith("ood.c.") and c.endswith(f".{m.group(1)}")]
        return np.mean([np.asarray(table.columns[c], dtype=float) for c in cols], axis=0) if cols else None
    parts = {"ood": _OOD_PARTS, "id+ood": ("id", "ood")}.get(metric)
    if parts:
        arrays = [_derive(table, p) for p in parts]
        return None if any(a is None for a in arrays) else np.mean(arrays, axis=0)
    return None


def available(table: Table) -> list[str]:
    """Metric names a user can ask for, with long families folded into a pattern."""
    derived = [m for m in ("id", "ood.c1", "ood.c2", "ood.c3", "ood.c4", "ood.c5", "ood", "id+ood")
               if m not in table.columns and known(table, m)]
    folded = []
    for c in table.columns:
        for prefix, pattern in (("ood.c.", "ood.c.<corruption>.<severity>"), ("latency.", "latency.<device>")):
            if c.startswith(prefix):
                c = pattern
        if c not in folded:
            folded.append(c)
    return derived + folded
