"""The torch modules of AutoViT's latency blocks (``blocks.py``), built from ``model.py``'s layers.

The MobileViT block is timed in three parts: ``Enter`` (local conv, embedding, unfold)
and ``Leave`` (norm, fold, projection, concatenation, fusion) around its transformer
layers. ``Leave`` has one input where the model's has two (the layers' tokens and
the block's input, concatenated before the fusion): it concatenates the projected
map with itself, the same shapes and operations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_lab.spaces.autovit.cost import IN_CHANNELS, KERNEL
from nas_lab.spaces.autovit.model import (
    ConvBN,
    Head,
    MBConv,
    TransformerLayer,
    fold,
    unfold,
)


class Enter(nn.Module):
    """A MobileViT block up to its transformer: ``(B, d, H, W)`` -> ``(B, p^2, HW / p^2, d)`` tokens."""

    def __init__(self, width: int, patch: int):
        super().__init__()
        self.patch = patch
        self.local = ConvBN(width, width, KERNEL)
        self.embed = nn.Conv2d(width, width, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold(self.embed(self.local(x)), self.patch)


class Leave(nn.Module):
    """A MobileViT block after its transformer: tokens -> ``(B, d, H, W)`` (square maps)."""

    def __init__(self, width: int, patch: int):
        super().__init__()
        self.patch = patch
        self.norm = nn.LayerNorm(width)
        self.project = ConvBN(width, width)
        self.fuse = ConvBN(2 * width, width, KERNEL)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        side = self.patch * math.isqrt(tokens.shape[2])
        y = self.project(fold(self.norm(tokens), self.patch, side, side))
        return self.fuse(torch.cat([y, y], dim=1))


def block(spec: tuple, skeleton) -> nn.Module:
    """The module of one block spec of ``blocks.catalogue``."""
    kind, *n = spec
    if kind == "stem":
        return ConvBN(IN_CHANNELS, n[0], KERNEL, skeleton.strides[0])
    if kind == "mb":
        return MBConv(n[0], n[1], n[3], n[2])
    if kind == "enter":
        return Enter(n[0], skeleton.patch)
    if kind == "layer":
        return TransformerLayer(n[0], n[1], n[2], n[3])
    if kind == "leave":
        return Leave(n[0], skeleton.patch)
    return Head(n[0], n[1], n[2])
