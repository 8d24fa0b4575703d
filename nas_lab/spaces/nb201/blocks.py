"""NB201 networks as a sequence of keyed blocks, for a latency look-up table (numpy only, no torch).

A cell is a DAG, but on a CPU at batch 1 its edges run one after another, so we
price a cell by its six edges: the network runs 94 blocks (the stem, 3 stages of
5 cells x 6 edges, 2 residual reductions, the head) out of 5 ops x 3 widths + 4
fixed blocks = 19 distinct ones. The node sums of the cells (6 adds per cell,
the same in every arch) are not blocks: the per-model correction that ``nas-lab
lut build`` calibrates absorbs them. Implements the block contract of
``nas_lab.objectives.latency.contract`` together with ``NB201Space``.
"""

from __future__ import annotations

import functools

import numpy as np

from nas_lab.core.space import Space
from nas_lab.spaces.nb201.cost import CELLS_PER_STAGE, CHANNELS


@functools.cache
def catalogue(space: Space) -> tuple[tuple[str, tuple, int], ...]:
    """Every block as ``(name, spec, stage)``: ``spec`` is what ``model.block`` builds, ``stage`` the index of
    the stage whose resolution the block's input has (``-1``: the image)."""
    ops, widths = space.decisions[0].options, CHANNELS
    out = [(f"stem(width={widths[0]})", ("stem", widths[0]), -1)]
    for i, width in enumerate(widths):
        if i:
            out.append((f"reduce(in={widths[i - 1]},out={width})", ("reduce", widths[i - 1], width), i - 1))
        out += [(f"{op}(width={width})", (op, width), i) for op in ops]
    out.append((f"head(width={widths[-1]},classes=10)", ("head", widths[-1], 10), len(widths) - 1))
    return tuple(out)


def blocks(space: Space, side: int) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, input shape)`` of every block at ``side x side`` images (the contract's ``latency_blocks``)."""
    return [(name, (3, side, side) if stage < 0 else (spec[1], side >> stage, side >> stage))
            for name, spec, stage in catalogue(space)]


def slots(space: Space, archs) -> np.ndarray:
    """``(n, 94)`` positions in ``blocks`` of each arch's blocks, in the order the network runs them."""
    archs = space.check(archs)
    names = [name for name, _, _ in catalogue(space)]
    n, width = len(archs), CHANNELS
    fixed = lambda name: np.full((n, 1), names.index(name), dtype=np.int64)
    parts = [fixed(f"stem(width={width[0]})")]
    for i, w in enumerate(width):
        if i:
            parts.append(fixed(f"reduce(in={width[i - 1]},out={w})"))
        first_op = names.index(f"{space.decisions[0].options[0]}(width={w})")
        parts.append(np.tile(first_op + archs, CELLS_PER_STAGE))  # every cell of a stage runs the same 6 edges
    parts.append(fixed(f"head(width={width[-1]},classes=10)"))
    return np.concatenate(parts, axis=1)
