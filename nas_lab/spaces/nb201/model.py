"""Build the torch model of an NB201 arch: the benchmark's fixed network around the searched cell.

As in NAS-Bench-201 (Dong & Yang, ICLR 2020): a 3x3 conv stem (3 -> 16, no
bias) with BatchNorm; three stages of 5 identical cells at 16, 32 and 64
channels, separated by residual reduction blocks that halve the resolution and
double the width; then BatchNorm, ReLU, global average pooling and a linear
classifier. Every BatchNorm is affine. With 10 classes the models have
73,306 (no parametric op) to 1,531,546 (six 3x3 convs) parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from nas_lab.nn.cells import CELL_OPS, Cell, ResidualReduction
from nas_lab.spaces.nb201.cost import CELLS_PER_STAGE, CHANNELS


def build_model(ops: Sequence[str], num_classes: int = 10) -> nn.Sequential:
    """The model of one arch, given its op name per edge in decision order.

    Returns an ``nn.Sequential`` with children ``stem``, ``stage1``, ``reduce1``,
    ``stage2``, ``reduce2``, ``stage3`` and ``head``, mapping ``(B, 3, H, W)``
    images to ``(B, num_classes)`` logits.
    """
    widths = CHANNELS
    parts = OrderedDict(stem=block(("stem", widths[0])))
    for i, width in enumerate(widths):
        if i:
            parts[f"reduce{i}"] = block(("reduce", widths[i - 1], width))
        parts[f"stage{i + 1}"] = nn.Sequential(*(Cell(ops, width) for _ in range(CELLS_PER_STAGE)))
    parts["head"] = block(("head", widths[-1], num_classes))
    return nn.Sequential(parts)


def block(spec: tuple) -> nn.Module:
    """One block of the network by its spec (``blocks.catalogue``): ``("stem", width)``, ``("reduce", in,
    out)``, ``("head", width, num_classes)``, or ``(op, width)``: one edge of a cell, an op of ``CELL_OPS``."""
    kind, *n = spec
    if kind == "stem":
        return nn.Sequential(nn.Conv2d(3, n[0], 3, padding=1, bias=False), nn.BatchNorm2d(n[0]))
    if kind == "reduce":
        return ResidualReduction(*n)
    if kind == "head":
        return nn.Sequential(nn.BatchNorm2d(n[0]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(n[0], n[1]))
    return CELL_OPS[kind](n[0])
