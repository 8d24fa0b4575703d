"""AutoViT models as a sequence of keyed blocks, for a latency look-up table (numpy only, no torch).

The model of ``model.AutoViT`` runs, in order: the stem; up to 2, 3 and 3 MBConv
blocks in MB-1..3 (the first of a stage takes the previous stage's width and
strides); per transformer stage its ``down`` MBConv, then the MobileViT block cut
in three: *enter* (local 3 x 3 conv, 1 x 1 embedding, unfold into patches), one
*layer* block per transformer layer (width, heads and MLP width: with
``space.per_layer`` every layer is priced by its own), and *leave* (LayerNorm,
fold, 1 x 1 projection, concatenation with the block's input and the 3 x 3
fusion); then the MBPool head. That is 42 slots (-1 where an arch skips a layer or
T-4). Blocks are enumerated from the options each slot can take, pairs of
widths the width rule rejects left out, so every listed block occurs in some arch
(the paper's own table has 46 entries and covers about XXS only; ours covers each
variant and setting). Implements the block contract of
``nas_lab.objectives.latency.contract`` together with ``AutoViTSpace``; the torch
modules are ``parts.block``.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from nas_lab.spaces.autovit.cost import out_side


def _widths_ok(cin: int, cout: int, rule: str, between_transformers: bool) -> bool:
    """Whether a stage of width ``cout`` may follow one of ``cin`` under the width rule."""
    if rule == "none":
        return True
    return cout > cin if rule == "increasing" and between_transformers else cout >= cin


def _name(spec: tuple) -> str:
    kind, *n = spec
    return {"stem": "stem(out={})", "mb": "mbconv(in={},out={},stride={},expansion={})", "enter": "enter(dim={})",
            "layer": "layer(dim={},heads={},head_dim={},hidden={})", "leave": "leave(dim={})",
            "head": "head(in={},width={},classes={})"}[kind].format(*n)


def _sides(space, side: int) -> list[int]:
    """Map side after the stem, MB-1..3 and T-1..T-4 for ``side x side`` images."""
    out, s = [], side
    for stride in space.skeleton.strides:
        s = int(out_side(s, stride))
        out.append(s)
    return out


def _map(space, where: int) -> int:
    """The first map index with the same side as map ``where`` (stages of stride 1 keep the side), so that one
    block reading equal maps after different stages is one block."""
    while where >= 1 and space.skeleton.strides[where] == 1:
        where -= 1
    return where


def _slot_specs(space):
    """Per slot, every spec it can take with its map side index (``-1``: the image; else the index into
    ``_sides`` of the map the block reads), as a list of ``[(spec, where), ...]``."""
    v, sk, rule = space.spec, space.skeleton, space.width_rule
    t, st = sk.mb_expansion, sk.strides
    slots = [[(("stem", w), -1) for w in v.stem]]
    prev_widths = v.stem
    for i in range(3):
        pairs = [(a, b) for a, b in itertools.product(prev_widths, v.mb_widths[i]) if _widths_ok(a, b, rule, False)]
        slots.append([(("mb", a, b, st[1 + i], t), i) for a, b in pairs])
        for _ in range(max(v.mb_depths[i]) - 1):
            slots.append([(("mb", b, b, 1, t), 1 + i) for b in v.mb_widths[i]])
        prev_widths = v.mb_widths[i]
    ratios = v.mlp_ratios
    for j in range(space.max_stages):
        widths = v.t_widths[j]
        pairs = [(a, b) for a, b in itertools.product(prev_widths, widths) if _widths_ok(a, b, rule, j > 0)]
        slots.append([(("mb", a, b, st[4 + j], t), 3 + j) for a, b in pairs])
        slots.append([(("enter", w), 4 + j) for w in widths])
        layers = [(("layer", w, h, sk.head_dim, int(np.rint(w * r))), 4 + j)
                  for w, h, r in itertools.product(widths, v.heads, ratios)]
        slots += [layers] * space.max_depth
        slots.append([(("leave", w), 4 + j) for w in widths])
        prev_widths = widths
    last = [(w, 3 + s) for s in v.stages for w in v.t_widths[s - 1]]  # the head reads T-3's or T-4's map
    slots.append([(("head", w, p, sk.num_classes), where) for (w, where), p in itertools.product(last, v.pool)])
    return slots


@functools.cache
def catalogue(space) -> tuple[tuple[str, tuple, int], ...]:
    """Every distinct block as ``(name, spec, where)`` (``where``: see ``_slot_specs``), in slot order."""
    seen = {}
    for options in _slot_specs(space):
        for spec, where in options:
            where = _map(space, where)
            seen.setdefault((spec, where), (_name(spec), spec, where))
    return tuple(seen.values())


def _shape(space, spec: tuple, where: int, sides: list[int]) -> tuple[int, ...]:
    """The input shape of block ``spec`` reading map ``where`` (>= 0): a ``(C, H, W)`` map, or ``(p^2, N, d)``
    tokens for a transformer layer and for *leave*."""
    side = sides[where]
    if spec[0] in ("layer", "leave"):
        p = space.skeleton.patch
        return (p * p, side * side // (p * p), spec[1])
    return (spec[1], side, side)


def blocks(space, side: int) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, input shape)`` of every block at ``side x side`` images (the contract's ``latency_blocks``)."""
    sides = _sides(space, side)
    return [(name, (3, side, side) if where < 0 else _shape(space, spec, where, sides))
            for name, spec, where in catalogue(space)]


@functools.cache
def _index(space) -> dict:
    return {(spec, where): i for i, (_, spec, where) in enumerate(catalogue(space))}


def slots(space, archs) -> np.ndarray:
    """``(n, 42)`` positions in ``blocks`` of each arch's blocks, in the order the model runs them (-1: absent)."""
    p = space.plan(archs)
    n, v, sk = len(p["stem"]), space.spec, space.skeleton
    t, st = sk.mb_expansion, sk.strides
    columns = [[("stem", p["stem"]), -1, None]]  # (kind, value columns...), where, present mask
    prev = p["stem"]
    for i in range(3):
        width, depth = p["mb_width"][:, i], p["mb_depth"][:, i]
        columns.append([("mb", prev, width, st[1 + i], t), i, None])
        columns += [[("mb", width, width, 1, t), 1 + i, depth > k] for k in range(1, max(v.mb_depths[i]))]
        prev = width
    for j in range(space.max_stages):
        width, on = p["t_width"][:, j], p["t_depth"][:, j] > 0
        columns.append([("mb", prev, width, st[4 + j], t), 3 + j, on])
        columns.append([("enter", width), 4 + j, on])
        columns += [[("layer", width, p["heads"][:, j, k], sk.head_dim, p["hidden"][:, j, k]), 4 + j,
                     p["hidden"][:, j, k] > 0] for k in range(space.max_depth)]
        columns.append([("leave", width), 4 + j, on])
        prev = np.where(on, width, prev)
    last_stage = (p["t_depth"] > 0).sum(axis=1)  # 3 or 4: the head reads that stage's map
    columns.append([("head", prev, p["pool"], sk.num_classes), 3 + last_stage, None])
    index = _index(space)
    maps = np.array([_map(space, w) for w in range(len(st))] + [-1])  # canonical map per index; [-1]: the image
    out = np.full((n, len(columns)), -1, dtype=np.int64)
    for c, (spec, where, present) in enumerate(columns):
        rows = np.ones(n, dtype=bool) if present is None else present
        where = maps[np.broadcast_to(np.asarray(where, dtype=np.int64), (n,))]
        table = np.stack([np.broadcast_to(np.asarray(x, dtype=np.int64), (n,)) for x in spec[1:]] + [where],
                         axis=1)[rows]
        unique, inverse = np.unique(table, axis=0, return_inverse=True)
        ids = np.array([index[((spec[0], *map(int, u[:-1])), int(u[-1]))] for u in unique], dtype=np.int64)
        out[rows, c] = ids[inverse.ravel()]
    return out
