"""Build the torch model of a HyViTas arch.

Seed 000 fixes the skeleton (see ``space.py``) but not every detail; these are
*our reading* of the paper, chosen among plausible alternatives because they
reproduce both size figures quoted for the space (largest ~4.04 M, smallest
~0.50 M parameters with 500 classes):

- stem: ``Conv2d(3, d1, 4, stride=4)`` with bias, then ``BatchNorm2d(d1)``
  (EdgeNeXt-style patchify, BatchNorm as everywhere in the benchmark);
- downsampling at the start of stages 2-4: ``BatchNorm2d(d_prev)`` then a
  non-overlapping ``Conv2d(d_prev, d, 2, stride=2)`` with bias (ConvNeXt-style);
- blocks: ``nas_lab.nn.blocks`` with biases on every conv and linear, no layer
  scale; attention is 8-head with a BatchNorm pre-norm;
- head: ``BatchNorm2d(d4)``, a 1x1 ``Conv2d(d4, num_classes)`` producing class
  maps, global average pooling, flatten.

Largest arch: 4,036,916 parameters, smallest: 498,884 (both within 0.3% of the
paper's figures). Alternatives we rejected: an overlapping 3x3 stride-2
downsampling conv (+7.5% / +10.6%), a head with a hidden 1x1 expansion of 2x the
last dim (+6.4% / +19.2%) or of 1024 channels (+16% / +116%). Dropping the head
norm or adding ConvNeXt layer scale moves either figure by under 0.2%, so the
two figures cannot tell those apart.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from nas_lab.nn.blocks import ConvNeXtBlock, HybridBlock
from nas_lab.spaces.hyvitas.cost import DEPTH, HEADS, PATCH


def build_model(values: dict[str, Any], num_classes: int = 500) -> nn.Sequential:
    """The model of one arch, given its ``describe()`` dict.

    Returns an ``nn.Sequential`` with children ``stem``, ``stage1`` ... ``stage4``
    and ``head``, mapping ``(B, 3, H, W)`` images to ``(B, num_classes)`` logits.
    """
    dims = [int(values[f"stage{i}.dim"]) for i in range(1, 5)]
    parts = OrderedDict(stem=block(("stem", dims[0])))
    for i, dim in enumerate(dims):
        layers = [] if i == 0 else list(block(("down", dims[i - 1], dim)))
        kind, name = ("conv", "convnext") if i < 2 else ("attn", "hybrid")
        spec = (name, dim, int(values[f"{kind}.kernel"]), int(values[f"{kind}.expansion"]))
        layers += [block(spec) for _ in range(DEPTH)]
        parts[f"stage{i + 1}"] = nn.Sequential(*layers)
    parts["head"] = block(("head", dims[-1], num_classes))
    return nn.Sequential(parts)


def block(spec: tuple) -> nn.Module:
    """One block of the model by its spec (``blocks.catalogue``): ``("stem", dim)``, ``("down", in, dim)``,
    ``("convnext" | "hybrid", dim, kernel, expansion)`` or ``("head", dim, num_classes)``."""
    kind, *n = spec
    if kind == "stem":
        return nn.Sequential(nn.Conv2d(3, n[0], PATCH, stride=PATCH), nn.BatchNorm2d(n[0]))
    if kind == "down":
        return nn.Sequential(nn.BatchNorm2d(n[0]), nn.Conv2d(n[0], n[1], 2, stride=2))
    if kind == "convnext":
        return ConvNeXtBlock(*n)
    if kind == "hybrid":
        return HybridBlock(*n, HEADS)
    return nn.Sequential(nn.BatchNorm2d(n[0]), nn.Conv2d(n[0], n[1], 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
