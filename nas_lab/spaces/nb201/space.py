"""The NAS-Bench-201 cell space: 6 edges x 5 ops = 15,625 cells.

NAS-Bench-201 (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible
Neural Architecture Search", ICLR 2020), reused as the topology space of
NATS-Bench (Dong et al., TPAMI 2021), searches one cell: a DAG of four nodes in
which each node j > 0 sums one op of each earlier node. The six edges are the
decisions, in the order of the benchmark's arch string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (groups are nodes 1-3, ``~i`` is the
source node). The network around the cell is fixed (see ``model.py``); ``blocks.py``
states it as a sequence of keyed blocks for a latency look-up table (the block
contract of ``nas_lab.objectives.latency.contract``).

Arch index = NB201/NATS-Bench index. The benchmark enumerated the cells in
mixed-radix order over the edges above (first edge most significant, ops in the
order of ``OPS``) and then shuffled that list with Python's ``random.seed(88)``;
row i of its tables is the i-th cell after the shuffle. ``index_order``
replays that shuffle, checked against all 15,625 rows of the released table.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterable, Sequence

import numpy as np

from nas_lab.core.errors import UserError, shorten
from nas_lab.core.space import Decision, Space
from nas_lab.spaces.nb201 import blocks, cost

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NODES = 4  # node 0 is the cell's input, node 3 its output
#: (target node, source node) of each decision, in arch-string order
EDGES = tuple((j, i) for j in range(1, NODES) for i in range(j))
NOTIONS = ("nb201", "function")

_OP = "([A-Za-z0-9_]+)"
_STRING = re.compile(rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|")
_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


@functools.cache
def _index_of_code() -> np.ndarray:
    """NATS index of each mixed-radix code, by replaying the benchmark's seeded shuffle once."""
    codes = list(range(len(OPS) ** len(EDGES)))
    random.Random(88).shuffle(codes)
    out = np.empty(len(codes), dtype=np.int64)
    out[codes] = np.arange(len(codes))
    out.flags.writeable = False
    return out


def _graph_key(ops: Sequence[str], notion: str) -> str:
    """The cell's output as an expression over its input ``0``; equal keys = equivalent cells.

    A term ``(e)@op`` is ``op`` applied to the expression ``e``; a node is the sum
    of its incoming terms, sorted because summing commutes; ``skip_connect``
    passes its input through, so a skip and the edges behind it collapse into
    one expression, and a node whose edges to the output are all ``none``
    appears nowhere. The notions differ only in how they treat zeros and sums:

    - ``function``: a ``none`` edge, or any op applied to a zero node, adds no
      term, and a skipped sum joins the target's sum term by term. Keys are
      equal exactly when the cells sum the same chains of ops.
    - ``nb201``: the benchmark's own notion, which defines its 6,466 unique
      cells. A zero is a term ``#`` that still counts; an op of a node is zero
      only when that node's whole expression is one zero (node 1 behind a
      ``none``); a skipped sum is a single term, sorted among the others by its
      text. It is finer than ``function``: the cells that pass their input
      straight through fall into 5 NB201 classes (``#+#+0``, ``#+#+#+0``,
      ``#+(#+#)@nor_conv_3x3+0``, ...), and so do the cells with no path
      from input to output.
    """
    nodes = [["0"]]
    edge = 0
    for j in range(1, NODES):
        terms = []
        for src in nodes[:j]:
            op, text = ops[edge], "+".join(src)
            edge += 1
            if notion == "function":
                if op == "skip_connect":
                    terms += src
                elif op != "none" and src:
                    terms.append(f"({text})@{op}")
            elif op == "none" or text == "#":
                terms.append("#")
            else:
                terms.append(text if op == "skip_connect" else f"({text})@{op}")
        nodes.append(sorted(terms))
    return "+".join(nodes[-1])


@functools.cache
def _class_ids(notion: str) -> np.ndarray:
    """Per mixed-radix code, the smallest NATS index among the cells equivalent to it."""
    keys = [_graph_key(ops, notion) for ops in itertools.product(OPS, repeat=len(EDGES))]
    _, inverse = np.unique(keys, return_inverse=True)
    index = _index_of_code()
    first = np.full(inverse.max() + 1, len(index), dtype=np.int64)
    np.minimum.at(first, inverse, index)
    out = first[inverse]
    out.flags.writeable = False
    return out


class NB201Space(Space):
    """NAS-Bench-201's cell space (5^6 = 15,625 archs, indexed as in NB201/NATS-Bench)."""

    name = "nb201"
    default_table = "nb201"
    decisions = tuple(Decision(f"node{j}.in{i}", OPS, "topology") for j, i in EDGES)
    #: two reduction blocks halve the side; an odd side would leave the residual shortcut one pixel short
    min_side = side_step = 4
    num_classes = 10  # CIFAR-10's, the benchmark's first dataset
    #: the recipe NB201's models were trained with, which ``nas-lab train`` follows (the space has no supernet):
    #: SGD with Nesterov momentum and cosine decay (the default), CIFAR's crop and flip (``oneshot.augment``)
    supernet_recipe = {"augment": "cifar"}

    def index_order(self) -> np.ndarray:
        """NATS index of each mixed-radix code (the benchmark's seeded shuffle)."""
        return _index_of_code()

    # -- arch strings ----------------------------------------------------------
    def to_string(self, arch) -> str:
        """The benchmark's arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of one arch."""
        ops = [OPS[i] for i in self.check(arch)[0]]
        groups, edge = [], 0
        for j in range(1, NODES):
            groups.append("|" + "|".join(f"{op}~{i}" for i, op in enumerate(ops[edge : edge + j])) + "|")
            edge += j
        return "+".join(groups)

    def from_strings(self, strings: str | Iterable[str]) -> np.ndarray:
        """Archs ``(n, 6)`` of arch strings (one string gives ``(1, 6)``); ``UserError`` if malformed."""
        strings = [strings] if isinstance(strings, str) else list(strings)
        option = {op: i for i, op in enumerate(OPS)}
        out = np.empty((len(strings), len(EDGES)), dtype=np.int64)
        for row, text in enumerate(strings):
            match = _STRING.fullmatch(text.strip())
            if match is None:
                raise UserError(
                    f"{shorten(repr(text))} is not an NB201 arch string; the valid form is {_FORM} "
                    f"with op one of {', '.join(OPS)}"
                )
            for col, op in enumerate(match.groups()):
                if op not in option:
                    raise UserError(f"unknown op {shorten(repr(op))} in NB201 arch string {shorten(repr(text))}; "
                                    f"valid ops: {', '.join(OPS)}")
                out[row, col] = option[op]
        return out

    # -- equivalent cells ---------------------------------------------------------
    def canonical(self, archs, notion: str = "nb201") -> np.ndarray:
        """Id of each arch's computation graph, ``int64 (n,)``: equal ids = equivalent cells.

        The id is the smallest NATS index among the equivalent cells, so
        ``space.arch(id)`` is the class's representative. ``notion="nb201"`` is
        the benchmark's own (6,466 classes over the space, as in the paper);
        ``notion="function"`` merges every cell that computes the same sum of
        op chains (4,930 classes). See ``_graph_key`` for the two rule sets.
        """
        if notion not in NOTIONS:
            raise UserError(f"unknown notion of equivalent cells {shorten(repr(notion))}; valid: {', '.join(NOTIONS)}")
        return _class_ids(notion)[self.check(archs) @ self.strides]

    # -- models and their size ------------------------------------------------------
    def build(self, arch, num_classes: int = 10, **task):
        """The NB201 network of one arch (``(B, 3, H, W)`` -> ``(B, num_classes)``).

        The network ends in global average pooling, so other task keys (such as
        the input resolution: 32 for CIFAR, 16 for ImageNet16-120) do not change it.
        """
        from nas_lab.spaces.nb201.model import build_model

        return build_model([OPS[i] for i in self.check(arch)[0]], num_classes)

    def params(self, archs, num_classes: int = 10) -> np.ndarray:
        """Parameter count of each arch of a batch, ``int64 (n,)`` (closed form, no torch)."""
        return cost.param_counts(self, archs, num_classes)

    # -- the block contract of a latency look-up table (objectives/latency/contract.py) --------------
    def latency_blocks(self, side: int) -> list[tuple[str, tuple[int, ...]]]:
        """The 19 distinct blocks (stem, the 5 ops at each of the 3 widths, 2 reductions, head) with input shapes."""
        return blocks.blocks(self, side)

    def latency_slots(self, archs) -> np.ndarray:
        """``(n, 94)`` positions in ``latency_blocks`` of each arch's blocks (a cell counts as its six edges)."""
        return blocks.slots(self, archs)

    def latency_module(self, name: str):
        """The torch module of one block of ``latency_blocks``, as ``build`` builds it."""
        from nas_lab.spaces.nb201.model import block

        return block(next(spec for n, spec, _ in blocks.catalogue(self) if n == name))
