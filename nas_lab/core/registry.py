"""Plug-in registry over Python entry points.

Built-ins register exactly as a third-party package would, under the groups in
``GROUPS``; ``nas-lab list`` and the CLI only ever see names through here. A
plug-in's parameters are its constructor's keyword arguments with their
defaults and type annotations: the signature is the single source of truth, so
there is no separate defaults file to drift out of date.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from nas_lab.core.errors import UserError, shorten

GROUPS = {
    "space": "nas_lab.spaces",
    "objective": "nas_lab.objectives",
    "searcher": "nas_lab.searchers",
    "table": "nas_lab.tables",
    "proxy": "nas_lab.proxies",
    "dataset": "nas_lab.datasets",
}

#: constructor arguments supplied by the framework, not by the user
_PROVIDED = {"self", "space", "metric", "task"}


@lru_cache(maxsize=None)
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


@dataclass(frozen=True)
class Param:
    """One user-settable parameter of a plug-in."""

    name: str
    default: Any
    type: type

    def coerce(self, value: Any, owner: str) -> Any:
        """Convert an override (a string from the command line, or a YAML/Python value) to this type."""
        text = str(value).strip()
        if self.default is None and text.lower() in ("none", "null"):
            return None
        try:
            if self.type is bool:
                if text.lower() in ("true", "yes", "1", "on"):
                    return True
                if text.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            if self.type is int:
                as_float = float(text)
                if not as_float.is_integer():
                    raise ValueError
                return int(as_float)
            return self.type(text)
        except (TypeError, ValueError):
            raise UserError(f"{owner + '.' if owner else ''}{self.name} must be {_article(self.type)}, "
                            f"got {shorten(repr(value))}") from None


def _article(t: type) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(t, t.__name__)


def parameters(cls) -> list[Param]:
    """User-settable parameters of a plug-in class, from its constructor signature."""
    sig = inspect.signature(cls)
    hints = typing.get_type_hints(cls.__init__) if inspect.isclass(cls) else typing.get_type_hints(cls)
    out = []
    for p in sig.parameters.values():
        if p.name in _PROVIDED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{cls.__name__}: parameter {p.name!r} needs a default to be a plug-in parameter")
        t = hints.get(p.name, type(p.default))
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if args:  # Optional[X] / X | None
            t = args[0]
        out.append(Param(p.name, p.default, t if isinstance(t, type) else str))
    return out


def create(kind: str, name: str, params: dict[str, Any], *args, task=None):
    """Instantiate ``name`` with user ``params`` (coerced and checked) after positional ``args``;
    ``task`` is passed to plug-ins whose constructor takes one."""
    cls = load(kind, name)
    known = {p.name: p for p in parameters(cls)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        valid = ", ".join(f"{kind}.{p}" for p in known) or "none"
        raise UserError(f"{kind} {name!r} has no parameter {shorten(', '.join(unknown))}; valid: {valid}")
    kwargs = {k: known[k].coerce(v, kind) for k, v in params.items()}
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
