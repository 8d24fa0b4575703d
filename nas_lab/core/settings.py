"""Settings: every user-settable parameter is declared once, and one parser reads them all.

A plug-in (space, objective, searcher, dataset) declares its parameters in its constructor signature: the default
is the signature's, the type and the rest come from an ``Annotated`` hint::

    def __init__(self, population: Annotated[int, Setting(ge=1, le="space.cardinality",
                                                       help="members kept alive")] = 50): ...

A command declares its settings as a tuple of ``Setting`` objects with names. Bounds are numbers or the name of
another setting of the same owner (``le="population"``) or a property of the space the plug-in meets
(``"space.dim"``, ``"space.cardinality"``); they are checked as soon as the value they refer to is known.
Validation, ``nas-lab list``, ``--help`` and the docs all read these declarations, so none of them can drift.

The same text means the same thing wherever it is written (command line, study YAML, Python): a list is
``a,b`` or ``[a,b]`` (brackets nest: ``[a,b],[c]`` is a list of two lists), a mapping is ``k=v,k=v``, and
``none`` or ``null`` clears a setting whose default is none.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from dataclasses import dataclass, replace
from typing import Any

import yaml

from nas_lab.core.errors import UserError, shorten

_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclass(frozen=True)
class Setting:
    """One declared parameter: its name, type, default, bounds or choices, whether it is a list, and one line of
    help. ``ge``/``gt``/``le``/``lt`` bound numbers (a number, the name of what the bound depends on, or a tuple of
    such limits, all of which hold);
    ``choices`` lists the valid values of a string; ``many`` makes the setting a tuple of ``type``."""

    name: str = ""
    type: type = str
    default: Any = None
    ge: float | str | tuple | None = None
    gt: float | str | tuple | None = None
    le: float | str | tuple | None = None
    lt: float | str | tuple | None = None
    choices: tuple | None = None
    many: bool = False
    help: str = ""

    # --- reading a value -------------------------------------------------------------------------------------
    def coerce(self, value: Any, owner: str = "", context: dict[str, Any] | None = None) -> Any:
        """``value`` (command-line text, a YAML or Python value) as this setting's type, checked against its
        choices and every bound whose reference ``context`` (or a plain number) gives; ``UserError`` if not."""
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")
                             and value.strip() not in (self.choices or ())):  # a choice named none is that choice
            if self.default is None:
                return None
            raise UserError(f"{self.label(owner)} needs a value ({self.describe()}); it has no 'none'")
        if self.many:
            items = split_list(value) if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                items = [items]
            out = tuple(self._one(v, owner) for v in items)
        else:
            out = self._one(value, owner)
        self.check(out, owner, context or {})
        return out

    def _one(self, value: Any, owner: str) -> Any:
        try:
            out = _convert(value, self.type)
        except UserError as err:  # a mapping's own sentence
            raise UserError(f"{self.label(owner)}={shorten(value)}: {err}") from None
        except (TypeError, ValueError):
            raise UserError(f"{self.label(owner)} must be {_WORDS.get(self.type, self.type.__name__)}, "
                            f"got {shorten(repr(value))}") from None
        return out

    def check(self, value: Any, owner: str, context: dict[str, Any]) -> None:
        """``UserError`` if ``value`` is not one of the choices or breaks a bound that is a number or whose
        reference ``context`` holds. A value of another type than the declared one (an object a plug-in also
        takes from Python, such as AutoViT's ``Variant``) is the plug-in's to check."""
        if value is None:
            return
        values = value if self.many else (value,)
        if self.choices is not None:
            for v in values:
                if isinstance(v, self.type) and v not in self.choices:
                    raise UserError(f"{self.label(owner)} must be one of {', '.join(map(str, self.choices))}, "
                                    f"got {shorten(repr(v))}")
        if self.type not in (int, float):
            return
        for v in values:
            for op, bounds in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt)):
                for bound in bounds if isinstance(bounds, tuple) else (bounds,):
                    limit = context.get(bound) if isinstance(bound, str) else bound
                    if limit is not None and not _holds(op, v, limit):
                        raise UserError(f"{self.label(owner)} must {self.requirement(context)}"
                                        f"{self._resolved(context)}, got {shorten(_number(v))}")

    # --- describing it ---------------------------------------------------------------------------------------
    def label(self, owner: str = "") -> str:
        return f"{owner}.{self.name}" if owner else self.name

    def describe(self) -> str:
        """What a valid value is, in words: 'a whole number in 1..space.cardinality', 'one of a, b'."""
        noun = _WORDS.get(self.type, self.type.__name__)
        if self.choices is not None:
            noun = f"one of {', '.join(map(str, self.choices))}"
        elif self.type in (int, float) and self.bounds():
            noun = f"{noun} ({self.bounds()})"
        if self.many:
            plural = {"a whole number": "whole numbers", "a number": "numbers", "a string": "strings",
                      "true or false": "true/false values"}
            noun = f"a list of {plural.get(noun, noun)}"
        return noun + (" or none" if self.default is None else "")

    def bounds(self, context: dict[str, Any] | None = None) -> str:
        """The bounds in words ('>= 1', 'in 1..50', '> 0', 'in [0, 1)'), references resolved where known."""
        def show(b, tightest=min):
            if isinstance(b, tuple):  # several limits: the tightest, once all are known
                values = [(context or {}).get(x) if isinstance(x, str) else x for x in b]
                if None in values:
                    return f"{tightest.__name__}({', '.join(show(x) for x in b)})"
                return _number(tightest(values))
            value = (context or {}).get(b) if isinstance(b, str) else b
            return b if value is None else _number(value)

        low, low_op = (self.ge, ">=") if self.ge is not None else (self.gt, ">")
        high, high_op = (self.le, "<=") if self.le is not None else (self.lt, "<")
        if low is not None and high is not None:
            if low_op == ">=" and high_op == "<=" and self.type is int:
                return f"in {show(low, max)}..{show(high)}"
            return f"in {'[' if low_op == '>=' else '('}{show(low, max)}, {show(high)}{']' if high_op == '<=' else ')'}"
        if low is not None:
            return f"{low_op} {show(low, max)}"
        if high is not None:
            return f"{high_op} {show(high)}"
        return ""

    def _resolved(self, context: dict[str, Any]) -> str:
        """' (population)': the names of the bounds ``context`` resolved to numbers, for messages."""
        def value(b):
            return context.get(b) if isinstance(b, str) else b

        limits = []
        for bound, tightest in ((self.ge, max), (self.gt, max), (self.le, min), (self.lt, min)):
            if isinstance(bound, tuple):  # the limit that binds, if all are known
                bound = tightest(bound, key=value) if None not in map(value, bound) else None
            limits.append(bound)
        names = [b for b in limits if isinstance(b, str) and b in context]
        return f" ({', '.join(names)})" if names else ""

    def requirement(self, context: dict[str, Any] | None = None) -> str:
        """The bounds as a sentence's predicate: 'be at least 1', 'lie in 1..population (5)', 'be > 0'."""
        text = self.bounds(context)
        if text.startswith("in "):
            return "lie " + text
        return {">=": "be at least", "<=": "be at most"}.get(text.split()[0], "be " + text.split()[0]) + \
            text[len(text.split()[0]):]

    def type_name(self) -> str:
        """The type as ``nas-lab list`` prints it: ``int``, ``float?`` (may be none), ``[str]`` (a list)."""
        name = self.type.__name__
        return f"[{name}]" if self.many else name + ("?" if self.default is None else "")


def _holds(op: str, value: float, limit: float) -> bool:
    return {"ge": value >= limit, "gt": value > limit, "le": value <= limit, "lt": value < limit}[op]


def _number(x) -> str:
    """A number as messages print it: whole numbers with thousands separators, others as Python writes them."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return repr(x)
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    return repr(x)


def _convert(value: Any, kind: type) -> Any:
    """One value as ``kind``: text is parsed, YAML and Python values are checked (a float is no whole number
    unless it is one; a bool is no number)."""
    if kind is dict:
        return parse_mapping(value) if isinstance(value, str) else _as_mapping(value)
    if isinstance(value, (list, tuple, dict)):
        raise ValueError
    if isinstance(value, bool) and kind is not bool:
        raise ValueError
    text = str(value).strip()
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError
    if kind is int:
        number = float(text) if not isinstance(value, int) else value
        if isinstance(number, float) and not (math.isfinite(number) and number.is_integer()):
            raise ValueError
        return int(number)
    if kind is float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError
        return number
    return kind(text)


def _as_mapping(value: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError
    return dict(value)


def split_list(text: str, unwrap: bool = True) -> list:
    """``a,b`` or ``[a,b]`` as ``['a', 'b']``; brackets nest (``[a,b],[c]`` → ``[['a', 'b'], ['c']]``);
    empty entries are refused. ``unwrap=False`` keeps one bracketed entry as a list of one list (a study's
    ``'objectives=[a,b]'`` is one objective of two metrics)."""
    text = text.strip()
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise UserError(f"{shorten(text)} is not a list: a ']' has no '['")
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise UserError(f"{shorten(text)} is not a list: a '[' has no ']'")
    if unwrap and len(items) == 1 and items[0].startswith("[") and items[0].endswith("]"):
        return split_list(items[0][1:-1])  # one bracketed list is that list
    if any(not item for item in items):
        raise UserError(f"{shorten(text)} is not a list: it has an empty entry; separate entries by single commas, "
                        "e.g. a,b")
    bracketed = [item.startswith("[") and item.endswith("]") for item in items]
    if any(("[" in item or "]" in item) and not whole for item, whole in zip(items, bracketed)):
        raise UserError(f"{shorten(text)} is not a list: text stands outside a [...] entry; e.g. [a,b],[c]")
    return [split_list(item[1:-1]) if whole else item for item, whole in zip(items, bracketed)]


def parse_mapping(text: str) -> dict:
    """``k=v,k=v`` (or ``{k: v}`` in YAML flow style) as a dict; values are YAML scalars (numbers, true/false,
    none, text)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            return _as_mapping(yaml.safe_load(text))
        except (yaml.YAMLError, ValueError):
            raise UserError("not a mapping; write key=value,key=value") from None
    out = {}
    for item in text.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key.isidentifier():
            raise UserError("not key=value,key=value (e.g. n_startup_trials=10,multivariate=true)")
        if key in out:
            raise UserError(f"{key!r} is given twice; give each key once")
        out[key] = _scalar(value)
    return out


def _scalar(text: str) -> Any:
    """A mapping's value as text gives it: a whole number, a number (``1e9`` too, which YAML 1.1 leaves a
    string), true/false, none, or the text itself."""
    lowered = text.lower()
    if lowered in ("", "none", "null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives a key twice (YAML would keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(text: str, source: str) -> Any:
    """The YAML document ``text``; ``UserError`` naming ``source`` and the line for invalid YAML or a key given
    twice in one mapping."""
    try:
        return yaml.load(text, Loader=_UniqueKeys)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None)
        detail = f": {problem}" if problem and "twice" in problem else ""
        raise UserError(f"{source} is not valid YAML{where}{detail}") from None


def parse_overrides(items: list[str]) -> list[tuple[str, str]]:
    """``key=value`` texts as ``(key, value)`` pairs, in order (the value is everything after the first ``=``,
    so ``'constraint=params<=1e6'`` is fine); ``UserError`` for anything else."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not all(part.isidentifier() for part in key.strip().split(".")):
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. searcher=rea budget=100 "
                            "searcher.population=50 (quote bounds in bash: 'constraint=params<=1e6')")
        out.append((key.strip(), value.strip()))
    return out


def read_overrides(settings: dict[str, Setting], overrides: list[str], command: str,
                   passed: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """A command's ``key=value`` overrides: ``(values of settings, defaults filled in; texts of the keys that
    start with a prefix in ``passed``, e.g. ``space.``, for the plug-in that reads them)``."""
    values, rest = {}, {}
    for key, value in parse_overrides(overrides):
        if any(key.startswith(prefix) and len(key) > len(prefix) for prefix in passed):
            rest[key] = value
        elif key in settings:
            values[key] = value
        else:
            valid = [*settings, *(f"{p}<param>" for p in passed)]
            raise UserError(f"unknown setting {shorten(repr(key))} of `nas-lab {command}`; valid: {', '.join(valid)}")
    out = read(settings, values, "")
    return {**{n: s.default for n, s in settings.items()}, **out}, rest


def help_text(settings: dict[str, Setting]) -> str:
    """The settings as ``--help`` lists them: name=TYPE, help, default and bounds, one line each."""
    rows = []
    for s in settings.values():
        shown = ",".join(map(str, s.default)) if isinstance(s.default, tuple) else s.default
        facts = [f"default {shown}" if shown not in (None, "", ()) else ""]
        facts.append(f"one of {', '.join(map(str, s.choices))}" if s.choices else s.bounds())
        note = "; ".join(f for f in facts if f)
        rows.append((f"{s.name}={s.type_name().upper().rstrip('?')}", s.help + (f" ({note})" if note else "")))
    width = max(len(r[0]) for r in rows) + 2
    return "\n".join(f"  {name:<{width}}{text}" for name, text in rows)


def read(settings: dict[str, Setting], values: dict[str, Any], owner: str,
         context: dict[str, Any] | None = None, who: str = "") -> dict[str, Any]:
    """``values`` coerced and checked against ``settings`` (names unknown to them refused, listing the valid
    ones); a bound may name another setting of the same owner, whose value (given or default) is used.
    ``owner`` prefixes names in messages (``searcher.population``); ``who`` names the owner (``searcher 'rea'``)."""
    unknown = sorted(set(values) - set(settings))
    if unknown:
        valid = ", ".join(f"{owner}.{n}" if owner else n for n in settings) or "none"
        raise UserError(f"{who or owner or 'the command'} has no parameter {shorten(', '.join(unknown))}; "
                        f"valid: {valid}")
    out = {k: settings[k].coerce(v, owner, context) for k, v in values.items()}
    check_all(settings, {**{n: s.default for n, s in settings.items()}, **out}, owner, context, tuple(out))
    return out


def check_all(settings: dict[str, Setting], values: dict[str, Any], owner: str,
              context: dict[str, Any] | None = None, given: tuple[str, ...] = ()) -> None:
    """Check every bound of ``settings`` on ``values`` with references to ``values`` and ``context`` resolved;
    the ``given`` ones first, so a message names the value the user set rather than one it pushed out of range."""
    known = {**values, **(context or {})}
    for name, s in sorted(settings.items(), key=lambda item: item[0] not in given):
        s.check(values.get(name), owner, known)


# --- declarations in signatures --------------------------------------------------------------------------------
#: constructor arguments supplied by the framework, not by the user
PROVIDED = {"self", "space", "metric", "task"}


@functools.cache
def declared(cls) -> dict[str, Setting]:
    """The settings a plug-in class (or factory function) declares in its signature, by name: every parameter
    with a default that the framework does not supply itself."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    hints = typing.get_type_hints(target, include_extras=True)
    out = {}
    for p in inspect.signature(cls).parameters.values():
        if p.name in PROVIDED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty:
            continue
        out[p.name] = from_hint(p.name, hints.get(p.name, type(p.default)), p.default)
    return out


class Declared:
    """Base of the plug-in classes (spaces, objectives, searchers): constructing one, from the command line or
    from Python, checks its declared bounds and choices, bounds between its settings included (``owner``
    prefixes the names in messages); bounds on the space are checked when the plug-in meets it.

    ``given`` holds the setting values the outermost constructor was called with (defaults filled in), before
    the plug-in resolves any (a ``None`` that means "the setting's own"): a space's name is built from them."""

    owner: str = ""
    given: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__

        @functools.wraps(init)
        def checked(self, *args, **kw):
            values = _arguments(init, (self, *args), kw, declared(cls), cls.owner)
            if "given" not in self.__dict__:  # a subclass's constructor was called first: its values are the ones
                self.given = values
            init(self, *args, **kw)

        cls.__init__ = checked


def checked(owner: str):
    """Decorator of a plug-in factory function (a dataset loader): a call from Python checks its declared bounds
    and choices, as constructing a ``Declared`` plug-in does."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kw):
            _arguments(fn, args, kw, declared(fn), owner)
            return fn(*args, **kw)

        return call

    return wrap


def _arguments(fn, args: tuple, kw: dict, settings: dict[str, Setting], owner: str) -> dict[str, Any]:
    """The values of ``settings`` in a call of ``fn`` (defaults filled in), checked."""
    bound = inspect.signature(fn).bind(*args, **kw)
    bound.apply_defaults()
    check_all(settings, bound.arguments, owner)
    return {name: bound.arguments[name] for name in settings if name in bound.arguments}


def from_hint(name: str, hint: Any, default: Any) -> Setting:
    """The ``Setting`` of one annotated parameter: ``Annotated[T, Setting(...)]`` gives bounds and help; ``T`` may
    be ``X | None``, ``tuple[X, ...]`` (a list) or ``dict[str, Any]`` (a mapping)."""
    spec = Setting()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
        spec = next((e for e in extras if isinstance(e, Setting)), spec)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    many = typing.get_origin(hint) in (tuple, list)
    if many:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is dict:
        hint = dict
    kind = hint if isinstance(hint, type) else str
    return replace(spec, name=name, type=kind, default=default, many=many)


def space_bounds(space) -> dict[str, Any]:
    """The properties of ``space`` a bound may name (``le="space.cardinality"``), for ``check_all``'s context;
    they are known once a plug-in meets its space."""
    return {"space.dim": space.dim, "space.cardinality": space.cardinality}


def current(obj) -> dict[str, Any]:
    """The values of a plug-in instance's settings (kept as attributes of the same names), for records."""
    return {name: getattr(obj, name) for name in declared(type(obj))}
