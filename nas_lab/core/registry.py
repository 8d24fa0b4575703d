"""Plug-in registry over Python entry points.

Built-ins register exactly as a third-party package would, under the groups in
``GROUPS``; ``nas-lab list`` and the CLI only ever see names through here. A
plug-in's parameters are its constructor's keyword arguments with their
defaults and annotated settings (``core/settings.py``): the signature is the single source of truth, so
there is no separate defaults file to drift out of date.
"""

from __future__ import annotations

import inspect
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from nas_lab.core import settings
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Setting, declared

GROUPS = {
    "space": "nas_lab.spaces",
    "objective": "nas_lab.objectives",
    "searcher": "nas_lab.searchers",
    "table": "nas_lab.tables",
    "proxy": "nas_lab.proxies",
    "dataset": "nas_lab.datasets",
}


@cache
def _entry_points(kind: str) -> dict:
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def names(kind: str) -> list[str]:
    """Registered names of a kind (``space``, ``objective``, ``searcher``, ``table``, ``proxy``)."""
    return sorted(_entry_points(kind))


def check(kind: str, name: str) -> None:
    """``UserError`` listing valid names if ``name`` is not registered (imports nothing)."""
    eps = _entry_points(kind)
    if name not in eps:
        raise UserError(f"unknown {kind} {shorten(repr(name))}; valid: {', '.join(sorted(eps)) or '(none registered)'}")


def load(kind: str, name: str):
    """The class (or factory) registered as ``name``; ``UserError`` listing valid names if unknown."""
    check(kind, name)
    return _entry_points(kind)[name].load()


def parameters(cls) -> list[Setting]:
    """The settings a plug-in class declares in its constructor signature."""
    return list(declared(cls).values())


def create(kind: str, name: str, params: dict[str, Any], *args, task=None, context: dict[str, Any] | None = None):
    """Instantiate ``name`` with user ``params`` (coerced and checked against its declared settings, bounds on
    ``context`` such as ``space.dim`` included) after positional ``args``; ``task`` is passed to plug-ins whose
    constructor takes one."""
    cls = load(kind, name)
    kwargs = settings.read(declared(cls), params, kind, context, who=f"{kind} {name!r}")
    if task is not None and "task" in inspect.signature(cls).parameters:
        kwargs["task"] = task
    return cls(*args, **kwargs)


def metric_default(cls) -> str | None:
    """Default metric of an objective family (its ``metric`` argument), if it takes one."""
    p = inspect.signature(cls).parameters.get("metric")
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def summary(cls) -> str:
    """First line of a plug-in's docstring."""
    return (inspect.getdoc(cls) or "").strip().splitlines()[0] if inspect.getdoc(cls) else ""
