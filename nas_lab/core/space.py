"""Search spaces: finite sets of architectures as vectors of categorical decisions.

An *arch* is a tuple of option indices, one per decision; a batch of archs is an
``np.ndarray[int]`` of shape ``(n, d)``. The arch *index* is by default the
mixed-radix number whose digits are the option indices (last decision varies
fastest); a space whose benchmark numbers its archs otherwise (NAS-Bench-201)
supplies that numbering through ``index_order``. The index doubles as the row
of a tabular benchmark. Every batch operation here is vectorised: the
tabular search path never creates a Python object per arch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nas_lab.core.errors import UserError, shorten

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


class Space:
    """Base class of every search space.

    A subclass sets ``name`` and ``decisions``; it inherits sampling, mutation,
    crossover, neighbourhoods, one-hot encoding and index conversion. It may
    override ``is_valid`` (space constraints), ``build`` (arch -> torch model)
    and ``supernet``; searchers and objectives that need those declare it, and
    ``capabilities()`` says which ones a space provides.
    """

    name: str = ""
    decisions: tuple[Decision, ...] = ()
    #: name of the built-in table a tabular objective uses when none is given
    default_table: str | None = None
    #: input sides (px) the space's models take: ``min_side`` to ``max_side``, a multiple of ``side_step``
    min_side: int = 1
    side_step: int = 1
    max_side: int = 2048  # larger is a typo: one 64-image batch alone would not fit in memory

    def __init__(self):
        if not self.decisions:
            raise TypeError(f"{type(self).__name__} defines no decisions")
        self.sizes = np.array([len(d.options) for d in self.decisions], dtype=np.int64)
        self.names = tuple(d.name for d in self.decisions)
        # mixed radix, last decision fastest: index = sum(arch[i] * strides[i])
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
        """Number of architectures (including any that ``is_valid`` rejects)."""
        return int(np.prod(self.sizes))

    # -- index <-> arch --------------------------------------------------------
    def index(self, archs) -> np.ndarray:
        """Arch index of each arch of a batch ``(n, d)`` (or of one arch)."""
        code = np.asarray(archs, dtype=np.int64) @ self.strides
        return code if self._code_to_index is None else self._code_to_index[code]

    def arch(self, index) -> np.ndarray:
        """Archs ``(n, d)`` of an array of indices (or ``(d,)`` for a scalar)."""
        code = np.asarray(index, dtype=np.int64)
        if self._index_to_code is not None:
            code = self._index_to_code[code]
        return (code[..., None] // self.strides) % self.sizes

    def all_archs(self) -> np.ndarray:
        """Every arch of the space, in index order."""
        return self.arch(np.arange(self.cardinality))

    # -- random operators -----------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` archs drawn uniformly (with replacement) among valid ones."""
        out = (rng.random((n, self.dim)) * self.sizes).astype(np.int64)
        bad = ~self.is_valid(out)
        while bad.any():
            out[bad] = (rng.random((int(bad.sum()), self.dim)) * self.sizes).astype(np.int64)
            bad[bad] = ~self.is_valid(out[bad])
        return out

    def mutate(self, archs, rng: np.random.Generator, k: int = 1) -> np.ndarray:
        """Copy of each arch with ``k`` distinct decisions set to a different option."""
        archs = np.array(archs, dtype=np.int64, ndmin=2)
        out = archs.copy()
        n = len(out)
        rows = np.arange(n)
        order = np.argsort(rng.random((n, self.dim)), axis=1)[:, :k]
        for j in range(k):
            cols = order[:, j]
            size = self.sizes[cols]
            # shift by 1..size-1 so the new option always differs from the old one
            shift = 1 + (rng.random(n) * (size - 1)).astype(np.int64)
            out[rows, cols] = (out[rows, cols] + shift) % size
        bad = ~self.is_valid(out)
        if bad.any():
            out[bad] = self.mutate(archs[bad], rng, k)
        return out

    def crossover(self, a, b, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover: each decision taken from ``a`` or ``b`` with p = 1/2."""
        a = np.array(a, dtype=np.int64, ndmin=2)
        b = np.array(b, dtype=np.int64, ndmin=2)
        out = np.where(rng.random(a.shape) < 0.5, a, b)
        bad = ~self.is_valid(out)
        if bad.any():
            out[bad] = a[bad]
        return out

    def neighbors(self, arch) -> np.ndarray:
        """All valid archs that differ from ``arch`` in exactly one decision."""
        arch = np.asarray(arch, dtype=np.int64)
        rows = []
        for i, size in enumerate(self.sizes):
            block = np.repeat(arch[None, :], size - 1, axis=0)
            block[:, i] = [o for o in range(size) if o != arch[i]]
            rows.append(block)
        out = np.concatenate(rows)
        return out[self.is_valid(out)]

    # -- features and checks --------------------------------------------------
    def encode(self, archs) -> np.ndarray:
        """One-hot features ``(n, sum(options))`` for predictors."""
        archs = np.array(archs, dtype=np.int64, ndmin=2)
        out = np.zeros((len(archs), int(self.sizes.sum())), dtype=np.float32)
        out[np.arange(len(archs))[:, None], archs + self._offsets] = 1.0
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
            raise UserError(f"option index {archs[r, c]} is out of range for {d.name!r}; valid: 0..{len(d.options) - 1}")
        return archs

    # -- human-readable form ---------------------------------------------------
    def describe(self, arch) -> dict[str, Any]:
        """``{decision name: option value}`` of one arch."""
        return {d.name: d.options[int(i)] for d, i in zip(self.decisions, np.asarray(arch).ravel())}

    def from_values(self, values: dict[str, Any]) -> np.ndarray:
        """Inverse of ``describe``: the arch whose decisions take these values."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise UserError(f"missing decision(s) {', '.join(missing)}; space {self.name!r} has {', '.join(self.names)}")
        arch = []
        for d in self.decisions:
            v = values[d.name]
            matches = [i for i, o in enumerate(d.options) if o == v or str(o) == str(v)]
            if not matches:
                raise UserError(f"{shorten(repr(v))} is not an option of {d.name!r}; "
                                f"valid: {', '.join(map(str, d.options))}")
            arch.append(matches[0])
        return np.array(arch, dtype=np.int64)

    # -- optional capabilities -------------------------------------------------
    def build(self, arch, **task):
        """The real ``torch.nn.Module`` of an arch (spaces that can build override)."""
        raise NotImplementedError(f"space {self.name!r} cannot build models")

    def supernet(self, **task):
        """One weight-sharing module for every arch (spaces with one override)."""
        raise NotImplementedError(f"space {self.name!r} has no supernet")

    def capabilities(self) -> frozenset[str]:
        """What this space offers: the base operators plus any overridden extras."""
        caps = {"sample", "mutate", "crossover", "neighbors", "encode", "index"}
        for extra in ("build", "supernet"):
            if getattr(type(self), extra) is not getattr(Space, extra):
                caps.add(extra)
        return frozenset(caps)

    def __eq__(self, other) -> bool:
        """Spaces are values: the same class with the same decisions is the same space."""
        return type(other) is type(self) and other.decisions == self.decisions

    def __hash__(self) -> int:
        return hash((type(self), self.decisions))

    def __repr__(self) -> str:
        return f"<space {self.name}: {self.dim} decisions, {self.cardinality} archs>"


def option_values(space: Space, archs: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectorised option values ``{name: (n,) array}`` of numeric decisions."""
    out = {}
    for name in names:
        i = space.names.index(name)
        table = np.asarray(space.decisions[i].options)
        out[name] = table[np.asarray(archs)[:, i]]
    return out
