"""Search spaces: finite sets of architectures as vectors of categorical decisions.

An *arch* is a tuple of option indices, one per decision; a batch of archs is an
``np.ndarray[int]`` of shape ``(n, d)``. The arch *index* is by default the
mixed-radix number whose digits are the option indices (last decision varies
fastest); a space whose benchmark numbers its archs otherwise (NAS-Bench-201)
supplies that numbering through ``index_order``. The index doubles as the row
of a tabular benchmark. Every batch operation here is vectorised: the
tabular search path never creates a Python object per arch.

Spaces too large for int64 (ViTAS: 3 · 10 · 401^16 ≈ 1.3 × 10^43 archs) get exact
Python-int indices (a numpy object array): the decisions are split into groups
whose codes fit int64, each group is coded vectorised, and only the combination
of the groups is done with Python ints. Small spaces never take that path.

Conditional decisions: a space may say which decisions are *active* for an arch
(``active``); an inactive one (the widths of a block set to identity) does not
change the network. Archs equal on their active decisions are one arch: every
operator returns, and ``index`` numbers, the *representative* whose inactive
decisions take option 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.settings import Declared, current, declared

#: indices of spaces with more archs than this are Python ints (object arrays), not int64
INT64_LIMIT = 2**62
#: a space with at most this many option combinations may be enumerated (listed, or counted when conditional);
#: larger ones are only ever sampled
ENUMERATE_COMBINATIONS = 2_000_000
#: the most parameters a space's largest model may have: 4 GB of float32 weights, 16 GB to train with Adam
#: (weights, gradients, two moments), already past one workstation GPU; GPT-2 XL has 1.5 billion
MAX_PARAMS = 1_000_000_000
#: the most multiply-accumulates of one forward pass of one image: 57 x ViT-B/16's 17.6 G at 224 px; past it a
#: ViT's attention maps alone outgrow a machine (ViTAS at 1,024 px with 4 px patches: 65,536 tokens)
MAX_MACS = 1_000_000_000_000
#: the closed-form metrics a space may compute, by the name of its method
CLOSED_FORM = ("params", "flops", "macs")
#: the members of the latency block contract (``objectives/latency/contract.py``)
LATENCY = ("latency_blocks", "latency_slots", "latency_module")
#: the base operators every space offers
OPERATORS = ("sample", "mutate", "crossover", "neighbors", "encode", "index")

TAGS = ("topology", "size")


@dataclass(frozen=True)
class Decision:
    """One named choice of a space, with its options and a tag.

    The tag says whether the choice changes the network's topology or only its
    size; decoupled searchers (Entropic Score paper) treat the two separately.
    """

    name: str
    options: tuple
    tag: str

    def __post_init__(self):
        if self.tag not in TAGS:
            raise ValueError(f"decision {self.name!r}: tag must be one of {TAGS}, got {self.tag!r}")
        if len(self.options) < 2:
            raise ValueError(f"decision {self.name!r} needs at least two options")


class Space(Declared):
    """Base class of every search space.

    A subclass sets ``name`` and ``decisions``; it inherits sampling, mutation,
    crossover, neighbourhoods, one-hot encoding and index conversion. It may
    override ``is_valid`` (space constraints). Its optional parts are declared
    here with their defaults, and a space offers one by overriding it: ``build``
    (arch -> torch model), ``supernet`` (with ``supernet_recipe``), closed-form
    ``params``/``flops``/``macs`` with their extent (``lowest``, ``highest``),
    ``default_constraints``, the latency block contract, and the task hints
    ``resolution``, ``num_classes``, ``zero_cost_batch``. ``capabilities()``
    lists what a space offers, and the runner refuses a searcher or objective
    that needs more before anything runs.
    """

    owner = "space"
    name: str = ""
    decisions: tuple[Decision, ...] = ()
    #: name of the built-in table a tabular objective uses when none is given
    default_table: str | None = None
    #: True when some decisions can be inactive (the space overrides ``active``)
    conditional: bool = False
    #: constraints every run on the space gets unless it bounds the same metric itself (e.g. ``("params<=100000",)``)
    default_constraints: tuple[str, ...] = ()
    #: the input side (px) the space's models are trained and costed at; None: not stated (tasks use 32, CIFAR's)
    resolution: int | None = None
    #: classes of the models ``build`` and ``supernet`` make unless told; None: the space builds no classifier
    num_classes: int | None = None
    #: the zero-cost proxies' input batch on this space; None: the proxies' own (64)
    zero_cost_batch: int | None = None
    #: the one-shot layer's training recipe for the supernet (``optimizer``, ``epochs``, ``recalibration``; see
    #: ``oneshot.training``); empty: its defaults
    supernet_recipe: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: whether the models have ReLU or GELU units, whose on/off codes NASWOT reads (AutoViT's SiLU ones are not)
    rectifiers: bool = True
    #: input sides (px) the space's models take: ``min_side`` to ``max_side``, a multiple of ``side_step``
    min_side: int = 1
    side_step: int = 1
    max_side: int = 2048  # larger is a typo: one 64-image batch alone would not fit in memory

    def __init__(self):
        if not self.decisions:
            raise TypeError(f"{type(self).__name__} defines no decisions")
        self.sizes = np.array([len(d.options) for d in self.decisions], dtype=np.int64)
        self.names = tuple(d.name for d in self.decisions)
        self._cardinality = math.prod(int(x) for x in self.sizes)
        self.big = self._cardinality > INT64_LIMIT
        # mixed radix, last decision fastest: index = sum(arch[i] * strides[i])
        if self.big:
            self._groups = _int64_groups(self.sizes)
        else:
            self.strides = np.ones(len(self.sizes), dtype=np.int64)
            self.strides[:-1] = np.cumprod(self.sizes[::-1])[::-1][1:]
        self._offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self._code_to_index = self.index_order()
        self._index_to_code = None if self._code_to_index is None else np.argsort(self._code_to_index)

    def check_side(self, side: int | None, name: str = "resolution") -> int | None:
        """``side`` if this space's models take side x side images (None: the default), else ``UserError``."""
        if side is None or (self.min_side <= side <= self.max_side and side % self.side_step == 0):
            return side
        step = f"a multiple of {self.side_step} " if self.side_step > 1 else ""
        raise UserError(f"{name} must be {step}from {self.min_side} to {self.max_side} px for space {self.name!r} "
                        f"(its models downsample the input by {self.min_side}), got {side}")

    def index_order(self) -> np.ndarray | None:
        """Public index of each mixed-radix code, for spaces with a benchmark's own numbering.

        ``None`` (the default) means the index is the mixed-radix code itself.
        """
        return None

    # -- sizes ---------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of decisions."""
        return len(self.decisions)

    @property
    def cardinality(self) -> int:
        """Number of architectures, an exact Python int (including any that ``is_valid`` rejects). For a
        conditional space, option combinations that differ only in inactive decisions count once: such a space
        overrides this with its closed form, or it is counted by enumeration when it has few combinations."""
        if not self.conditional:
            return self._cardinality
        if self._cardinality > ENUMERATE_COMBINATIONS:
            raise NotImplementedError(f"space {self.name!r} is conditional and too large to count by enumeration; "
                                      "it must override cardinality")
        return len(self.all_archs())

    @property
    def combinations(self) -> int:
        """Number of option combinations (the index range): ``cardinality`` unless the space is conditional."""
        return self._cardinality

    @property
    def enumerable(self) -> bool:
        """Whether every arch may be listed (``all_archs``): at most ``ENUMERATE_COMBINATIONS`` option combinations.
        Tools take samples of larger spaces instead."""
        return self._cardinality <= ENUMERATE_COMBINATIONS

    # -- index <-> arch --------------------------------------------------------
    def index(self, archs) -> np.ndarray:
        """Arch index of each arch of a batch ``(n, d)`` (or of one arch): int64, or Python ints in an object
        array for a space too large for int64. A conditional space numbers the representative."""
        archs = np.asarray(archs, dtype=np.int64)
        if self.conditional:
            archs = self.representative(archs)
        if self.big:  # one arch gives one Python int, as the int64 path gives one scalar
            out = _big_index(archs, self._groups)
            return out[0] if archs.ndim == 1 else out
        code = archs @ self.strides
        return code if self._code_to_index is None else self._code_to_index[code]

    def arch(self, index) -> np.ndarray:
        """Archs ``(n, d)`` of an array of indices (or ``(d,)`` for a scalar)."""
        if self.big:
            return _big_arch(index, self._groups, self.sizes)
        code = np.asarray(index, dtype=np.int64)
        if self._index_to_code is not None:
            code = self._index_to_code[code]
        return (code[..., None] // self.strides) % self.sizes

    # -- conditional decisions ---------------------------------------------------
    def active(self, archs) -> np.ndarray:
        """``(n, d)`` bool: which decisions matter for each arch (all of them, unless the space is conditional)."""
        return np.ones(np.atleast_2d(archs).shape, dtype=bool)

    def representative(self, archs) -> np.ndarray:
        """The archs with every inactive decision set to option 0: one arch per class of equivalent ones."""
        archs = np.asarray(archs, dtype=np.int64)
        if not self.conditional:
            return archs
        flat = np.atleast_2d(archs)
        return np.where(self.active(flat), flat, 0).reshape(archs.shape)

    def all_archs(self) -> np.ndarray:
        """Every arch of the space, in index order (for a conditional space: every representative); ``UserError``
        past ``ENUMERATE_COMBINATIONS``, where the list alone would outgrow memory (AutoViT's: 500 GB)."""
        if not self.enumerable:
            raise UserError(f"space {self.name!r} has {self.cardinality:,} archs, too many to list every one")
        if not self.conditional:
            return self.arch(np.arange(self.cardinality))
        every = self.arch(np.arange(self._cardinality))
        return every[np.all(self.representative(every) == every, axis=1)]

    # -- random operators -----------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` archs drawn uniformly (with replacement) among valid ones (each decision uniform; a conditional
        space returns representatives)."""
        out = (rng.random((n, self.dim)) * self.sizes).astype(np.int64)
        bad = ~self.is_valid(out)
        while bad.any():
            out[bad] = (rng.random((int(bad.sum()), self.dim)) * self.sizes).astype(np.int64)
            bad[bad] = ~self.is_valid(out[bad])
        return self.representative(out)

    def mutate(self, archs, rng: np.random.Generator, k: int = 1, mask=None) -> np.ndarray:
        """Copy of each arch with ``k`` distinct decisions set to a different option; only active decisions
        move (a move on an inactive one would give back the same arch), at most as many as are active.
        ``mask`` (``(d,)`` bool) limits the moves to the decisions it marks (a decoupled search's topology or
        size phase); the others keep their options."""
        archs = self.representative(np.array(archs, dtype=np.int64, ndmin=2))
        out = archs.copy()
        n = len(out)
        rows = np.arange(n)
        if self.conditional or mask is not None:  # decisions that may not move sort last, so the first k picks can
            movable = self.active(archs) if self.conditional else np.ones((n, self.dim), dtype=bool)
            if mask is not None:
                movable &= np.asarray(mask, dtype=bool)
            order = np.argsort(rng.random((n, self.dim)) + ~movable, axis=1)[:, :k]
            moves = np.minimum(movable.sum(axis=1), k)
        else:
            order = np.argsort(rng.random((n, self.dim)), axis=1)[:, :k]
            moves = None
        for j in range(k):
            cols = order[:, j]
            size = self.sizes[cols]
            # shift by 1..size-1 so the new option always differs from the old one
            shift = 1 + (rng.random(n) * (size - 1)).astype(np.int64)
            if moves is not None:
                shift = np.where(j < moves, shift, 0)
            out[rows, cols] = (out[rows, cols] + shift) % size
        out = self.representative(out)
        bad = ~self.is_valid(out)
        if bad.any():
            out[bad] = self.mutate(archs[bad], rng, k, mask)
        return out

    def crossover(self, a, b, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover: each decision taken from ``a`` or ``b`` with p = 1/2."""
        a = np.array(a, dtype=np.int64, ndmin=2)
        b = np.array(b, dtype=np.int64, ndmin=2)
        out = self.representative(np.where(rng.random(a.shape) < 0.5, a, b))
        bad = ~self.is_valid(out)
        if bad.any():
            out[bad] = self.representative(a[bad])
        return out

    def neighbors(self, arch) -> np.ndarray:
        """All valid archs that differ from ``arch`` in exactly one active decision (distinct representatives)."""
        arch = self.representative(np.asarray(arch, dtype=np.int64).reshape(1, -1))[0]
        active = self.active(arch[None])[0]
        rows = []
        for i, size in enumerate(self.sizes):
            if not active[i]:
                continue
            block = np.repeat(arch[None, :], size - 1, axis=0)
            block[:, i] = [o for o in range(size) if o != arch[i]]
            rows.append(block)
        out = self.representative(np.concatenate(rows))
        return out[self.is_valid(out)]

    # -- features and checks --------------------------------------------------
    def encode(self, archs) -> np.ndarray:
        """One-hot features ``(n, sum(options))`` for predictors; inactive decisions are all zeros."""
        archs = np.array(archs, dtype=np.int64, ndmin=2)
        out = np.zeros((len(archs), int(self.sizes.sum())), dtype=np.float32)
        out[np.arange(len(archs))[:, None], archs + self._offsets] = self.active(archs) if self.conditional else 1.0
        return out

    def is_valid(self, archs) -> np.ndarray:
        """Space constraints per arch; the base space accepts everything."""
        return np.ones(len(np.atleast_2d(archs)), dtype=bool)

    def check(self, archs) -> np.ndarray:
        """Archs as an int array, or ``UserError`` naming the first bad option."""
        archs = np.array(archs, dtype=np.int64, ndmin=2)
        if archs.shape[1] != self.dim:
            raise UserError(f"an arch of space {self.name!r} has {self.dim} decisions, got {archs.shape[1]}")
        bad = (archs < 0) | (archs >= self.sizes)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            d = self.decisions[c]
            raise UserError(f"option index {archs[r, c]} is out of range for {d.name!r}; "
                            f"valid: 0..{len(d.options) - 1}")
        return archs

    # -- human-readable form ---------------------------------------------------
    def describe(self, arch) -> dict[str, Any]:
        """``{decision name: option value}`` of one arch; a conditional space leaves out inactive decisions."""
        arch = np.asarray(arch, dtype=np.int64).ravel()
        active = self.active(arch[None])[0] if self.conditional else np.ones(self.dim, dtype=bool)
        return {d.name: d.options[int(i)] for d, i, on in zip(self.decisions, arch, active) if on}

    def from_values(self, values: dict[str, Any]) -> np.ndarray:
        """Inverse of ``describe``: the arch whose decisions take these values (inactive ones may be left out)."""
        missing = [n for n in self.names if n not in values]
        if missing and not self.conditional:
            raise UserError(f"missing decision(s) {', '.join(missing)}; "
                            f"space {self.name!r} has {', '.join(self.names)}")
        arch = []
        for d in self.decisions:
            if d.name not in values:
                arch.append(0)
                continue
            v = values[d.name]
            matches = [i for i, o in enumerate(d.options) if o == v or str(o) == str(v)]
            if not matches:
                raise UserError(f"{shorten(repr(v))} is not an option of {d.name!r}; "
                                f"valid: {', '.join(map(str, d.options))}")
            arch.append(matches[0])
        arch = np.array(arch, dtype=np.int64)
        if missing:
            needed = [n for n, on in zip(self.names, self.active(arch[None])[0]) if on and n in missing]
            if needed:
                raise UserError(f"missing decision(s) {', '.join(needed)}, active for this arch of space {self.name!r}")
        return self.representative(arch)

    # -- optional capabilities -------------------------------------------------
    def build(self, arch, **task):
        """The real ``torch.nn.Module`` of an arch (spaces that can build override)."""
        raise NotImplementedError(f"space {self.name!r} cannot build models")

    def supernet(self, **task):
        """One weight-sharing module for every arch (spaces with one override)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet")

    def params(self, archs) -> np.ndarray:
        """Parameter count of each arch's model, ``int64 (n,)``, in closed form (spaces that know it override)."""
        raise NotImplementedError(f"space {self.name!r} has no closed-form params")

    def flops(self, archs) -> np.ndarray:
        """FLOPs (2 x MACs) of one forward pass of one image per arch, in closed form (spaces that know it override)."""
        raise NotImplementedError(f"space {self.name!r} has no closed-form flops")

    def macs(self, archs) -> np.ndarray:
        """Multiply-accumulates of one forward pass of one image per arch, in closed form (spaces that know it
        override)."""
        raise NotImplementedError(f"space {self.name!r} has no closed-form macs")

    def lowest(self, metric: str) -> float | None:
        """The smallest value of the closed-form ``metric`` over valid archs, where the space knows it exactly (None
        otherwise); every objective's ``extent`` reports it, so an upper bound no arch meets is refused before a run
        starts (``Constrained``)."""
        return None

    def highest(self, metric: str) -> float | None:
        """An upper bound of the closed-form ``metric`` over the space's archs where the space knows one (None
        otherwise); ``check_fits`` refuses a space whose largest model no machine holds, and every objective's
        ``extent`` reports it, so a lower bound above it is refused before a run."""
        return None

    def latency_blocks(self, side: int) -> list[tuple[str, tuple[int, ...]]]:
        """Every distinct block of the models with its input shape at ``side`` px: the latency look-up table's
        contract (``objectives/latency/contract.py``), with ``latency_slots`` and ``latency_module``."""
        raise NotImplementedError(f"space {self.name!r} does not describe its models as blocks")

    def latency_slots(self, archs) -> np.ndarray:
        """``(n, slots)`` positions in ``latency_blocks`` of each arch's blocks, -1 where it skips one."""
        raise NotImplementedError(f"space {self.name!r} does not describe its models as blocks")

    def latency_module(self, name: str):
        """The torch module of one block of ``latency_blocks``."""
        raise NotImplementedError(f"space {self.name!r} does not describe its models as blocks")

    def check_fits(self) -> None:
        """``UserError`` if the largest model of the space (``highest``) has more than ``MAX_PARAMS`` parameters or
        ``MAX_MACS`` multiply-accumulates per image: settings within their bounds can still combine into one."""
        for metric, limit, what in (("params", MAX_PARAMS, "parameters"), ("macs", MAX_MACS, "multiply-accumulates "
                                                                                           "per image")):
            top = self.highest(metric)
            if top is not None and top > limit:
                raise UserError(f"space {self.name!r} is too large for any machine: its largest model has {top:.3g} "
                                f"{what}, beyond the limit of {limit:.0e}; choose smaller settings")

    def capabilities(self) -> frozenset[str]:
        """What this space offers, by name: the base operators (``sample``, ``mutate``, ``crossover``,
        ``neighbors``, ``encode``, ``index``); the methods it overrides (``build``, ``supernet``, ``params``,
        ``flops``, ``macs``, ``lowest``, ``highest``; ``latency`` for the whole block contract); and the parts it
        declares (``default_constraints``, ``resolution``, ``num_classes``, ``zero_cost_batch``,
        ``supernet_recipe``, ``rectifiers``)."""
        caps = set(OPERATORS)
        caps.update(m for m in ("build", "supernet", *CLOSED_FORM, "lowest", "highest") if overrides(type(self), m))
        if all(overrides(type(self), m) for m in LATENCY):
            caps.add("latency")
        caps.update(a for a in ("default_constraints", "resolution", "num_classes", "zero_cost_batch",
                                "supernet_recipe", "rectifiers") if getattr(self, a))
        return frozenset(caps)

    # -- identity ------------------------------------------------------------------
    def settings_name(self, family: str, **given) -> str:
        """``family``, then ``-<setting>=<value>`` for each setting given a value off its declared default, in
        declaration order (a list as ``a,b``, a float as ``%g``): caches of proxy values and trained supernets
        are keyed by the name. ``given`` replaces values the constructor was given (``None`` drops one)."""
        values = {**self.given, **given}
        parts = [f"{name}={_text(values[name])}" for name, s in declared(type(self)).items()
                 if values.get(name) is not None and values[name] != s.default]
        return "-".join([family, *parts])

    def __eq__(self, other) -> bool:
        """Spaces are values: the same class, name, settings and decisions is the same space."""
        return (type(other) is type(self) and other.name == self.name and current(other) == current(self)
                and other.decisions == self.decisions)

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    def __repr__(self) -> str:
        return f"<space {self.name}: {self.dim} decisions, {self.cardinality} archs>"


def overrides(cls: type, member: str) -> bool:
    """Whether space class ``cls`` overrides ``Space``'s ``member``, that is, offers it (no instance needed)."""
    return getattr(cls, member) is not getattr(Space, member)


def _text(value) -> str:
    """A setting's value as a space's name writes it."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _int64_groups(sizes: np.ndarray) -> list[tuple[slice, np.ndarray, int]]:
    """Consecutive groups of decisions whose mixed-radix codes fit int64: ``(columns, strides within the group,
    weight of the group's code in the whole index)``, last group fastest."""
    groups, start = [], len(sizes)
    weight = 1
    while start > 0:
        end, product = start, 1
        while start > 0 and product * int(sizes[start - 1]) <= INT64_LIMIT:
            start -= 1
            product *= int(sizes[start])
        part = sizes[start:end]
        strides = np.ones(len(part), dtype=np.int64)
        strides[:-1] = np.cumprod(part[::-1])[::-1][1:]
        groups.append((slice(start, end), strides, weight))
        weight *= product
    return groups[::-1]


def _big_index(archs: np.ndarray, groups) -> np.ndarray:
    """Exact indices (Python ints, object array) of a batch of a space too large for int64."""
    archs = np.atleast_2d(archs)
    total = np.zeros(len(archs), dtype=object)
    for cols, strides, weight in groups:
        total = total + (archs[:, cols] @ strides).astype(object) * weight
    return total


def _big_arch(index, groups, sizes: np.ndarray) -> np.ndarray:
    """Inverse of ``_big_index``: archs ``(n, d)`` (or ``(d,)`` for a scalar) of exact indices."""
    scalar = np.ndim(index) == 0
    rest = np.array([int(i) for i in np.atleast_1d(index)], dtype=object)
    out = np.empty((len(rest), len(sizes)), dtype=np.int64)
    for cols, strides, weight in groups:
        code, rest = (rest // weight, rest % weight) if weight > 1 else (rest, rest * 0)
        code = code.astype(np.int64)
        out[:, cols] = (code[:, None] // strides) % sizes[cols]
    return out[0] if scalar else out


def option_values(space: Space, archs: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectorised option values ``{name: (n,) array}`` of numeric decisions."""
    out = {}
    for name in names:
        i = space.names.index(name)
        table = np.asarray(space.decisions[i].options)
        out[name] = table[np.asarray(archs)[:, i]]
    return out


class CategoricalSpace(Space):
    """A space whose decisions are given when it is made, not by a subclass: named categorical choices such as the
    parameters of an Optuna study or a Ray Tune search space (``nas_lab.integrations``), with every operator of
    ``Space`` and nothing optional (no models, no closed-form sizes). Each decision is tagged ``topology``: nothing
    says a user's choice only scales a network."""

    def __init__(self, name: str, choices: Mapping[str, Sequence]):
        self.name = name
        self.decisions = tuple(Decision(key, tuple(options), "topology") for key, options in choices.items())
        super().__init__()
