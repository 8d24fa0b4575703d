"""HyViTas models as a sequence of keyed blocks, for a latency look-up table (numpy only, no torch).

The model of ``model.build_model`` runs 17 blocks: the stem, the 3 ConvNeXt
blocks of stages 1 and 2 and the 3 hybrid blocks of stages 3 and 4, the
downsampling (BatchNorm and 2x2 conv) before stages 2-4, and the head. A block is
fixed by the decisions that size it (a stage's dim, its kind's kernel and
expansion; a downsampling's two dims), so the space has 3 + 4 x 27 + 3 x 9 + 3 =
141 distinct blocks. Implements the block contract of
``nas_lab.objectives.latency.contract`` together with ``HyViTasSpace``.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from nas_lab.core.space import Space
from nas_lab.spaces.hyvitas.cost import DEPTH, PATCH


def _stage_kind(i: int) -> str:
    return "conv" if i < 2 else "attn"


@functools.cache
def catalogue(space: Space) -> tuple[tuple[str, tuple, str, tuple[int, ...]], ...]:
    """Every block as ``(name, spec, shape stage, decisions)``: ``spec`` is what ``model.block`` builds, the
    shape stage says where the block's input lives (``-1`` the image, else after stage ``i``'s stem or
    downsampling), ``decisions`` the decision names whose options number it (first most significant)."""
    opts = {d.name: d.options for d in space.decisions}
    out = [(f"stem(dim={d})", ("stem", d), -1, ("stage1.dim",)) for d in opts["stage1.dim"]]
    for i in range(4):
        dims, kind = f"stage{i + 1}.dim", _stage_kind(i)
        if i:
            prev = f"stage{i}.dim"
            out += [(f"down(in={p},dim={d})", ("down", p, d), i - 1, (prev, dims))
                    for p, d in itertools.product(opts[prev], opts[dims])]
        block = "convnext" if kind == "conv" else "hybrid"
        names = (dims, f"{kind}.kernel", f"{kind}.expansion")
        out += [(f"{block}(dim={d},kernel={k},expansion={e})", (block, d, k, e), i, names)
                for d, k, e in itertools.product(*(opts[n] for n in names))]
    out += [(f"head(dim={d},classes=500)", ("head", d, 500), 3, ("stage4.dim",)) for d in opts["stage4.dim"]]
    return tuple(out)


def blocks(space: Space, side: int) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, input shape)`` of every block at ``side x side`` images (the contract's ``latency_blocks``)."""
    sides = [side // PATCH >> i for i in range(4)]
    return [(name, (3, side, side) if where < 0 else (spec[1], sides[where], sides[where]))  # spec[1]: input channels
            for name, spec, where, _ in catalogue(space)]


def _code(space: Space, archs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Mixed-radix code of the option indices of ``names``, first most significant."""
    code = np.zeros(len(archs), dtype=np.int64)
    for name in names:
        i = space.names.index(name)
        code = code * space.sizes[i] + archs[:, i]
    return code


def slots(space: Space, archs) -> np.ndarray:
    """``(n, 17)`` positions in ``blocks`` of each arch's blocks, in the order the model runs them."""
    archs = space.check(archs)
    starts, groups = {}, {}
    for position, (_, spec, where, names) in enumerate(catalogue(space)):
        group = (spec[0], where)
        starts.setdefault(group, position)
        groups[group] = names
    column = {g: starts[g] + _code(space, archs, names) for g, names in groups.items()}
    order = [column[("stem", -1)]]
    for i in range(4):
        if i:
            order.append(column[("down", i - 1)])
        order += [column[("convnext" if i < 2 else "hybrid", i)]] * DEPTH
    order.append(column[("head", 3)])
    return np.stack(order, axis=1)
