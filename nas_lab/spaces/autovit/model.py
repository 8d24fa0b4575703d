"""The hybrid MobileNetV2 / MobileViT model every AutoViT arch builds (``AutoViT(shape, skeleton)``).

An ``nn.Sequential`` of named parts, run in order (``cost.py`` counts them the same way):

- ``stem``: 3 x 3 conv (stride per setting), BatchNorm, SiLU;
- ``mb1`` … ``mb3``: MobileNetV2 inverted residual blocks (``MBConv``: 1 x 1 expansion
  when the expansion is above 1, 3 x 3 depthwise, linear 1 x 1 projection, each with
  BatchNorm; SiLU after the first two, as MobileViT's MV2 blocks; a residual add
  when the block keeps shape); the first block of a stage strides;
- ``t1`` … ``t4``: ``down``, an ``MBConv`` into the stage's width at the stage's
  stride (MobileViT puts an MV2 block before each of its transformer blocks), then
  ``block``, a MobileViT block (``MobileViTBlock``, below);
- ``head``: MBPool (``Head``).

**MobileViT block** (Mehta et al. 2021, as the paper describes it; ``C`` = the stage
width = the transformer dim ``d``): a 3 x 3 conv + BN + SiLU (local features), a
1 x 1 conv to ``d`` without norm, *unfold* into ``p x p`` patches (``p = 2``) so that
the ``p^2`` pixels of a patch position form ``p^2`` sequences of ``HW / p^2`` tokens,
pre-norm transformer layers across patches (multi-head attention with
``heads x head_dim`` wide q, k, v, then an MLP ``d -> hidden -> d`` with SiLU, each
with a residual), a final LayerNorm, *fold* back to ``d x H x W``, a 1 x 1 conv + BN +
SiLU back to ``C``, and *fusion*: the block's input concatenated with that, through a
3 x 3 conv + BN + SiLU to ``C`` (MobileViT v1's fusion; no residual around the block).
The block keeps its input's side: downsampling happens in the stem, in the first
block of a MobileNetV2 stage and in a transformer stage's ``down`` (strides in
``space.py``).

Attention is written as explicit matmuls (``nn.blocks.attend``) so that torch's
FLOP counter counts it on every device. Linear layers carry biases and start from
DeiT's truncated normal; convs have no bias (a BatchNorm follows) and keep torch's
initialisation.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nas_lab.nn.blocks import attend, init_weights
from nas_lab.spaces.autovit.cost import IN_CHANNELS, KERNEL, POOL_EXPANSION


class ConvBN(nn.Module):
    """``k x k`` conv without bias (``groups`` for depthwise), BatchNorm, then SiLU unless ``act`` is false."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConv(nn.Module):
    """MobileNetV2's inverted residual block ``cin -> cout`` (hidden width ``cin x expansion``)."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = ConvBN(cin, hidden) if expansion > 1 else None
        self.dw = ConvBN(hidden, hidden, KERNEL, stride, groups=hidden)
        self.project = ConvBN(hidden, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.dw(x if self.expand is None else self.expand(x)))
        return x + y if self.residual else y


def unfold(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, patch^2, HW / patch^2, C)``: one sequence per pixel position within a patch,
    whose tokens are that pixel of every patch."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch).permute(0, 3, 5, 2, 4, 1)
    return x.reshape(b, patch * patch, (h // patch) * (w // patch), c)


def fold(x: torch.Tensor, patch: int, h: int, w: int) -> torch.Tensor:
    """Inverse of ``unfold`` for an ``h x w`` map."""
    b, _, _, c = x.shape
    return x.reshape(b, patch, patch, h // patch, w // patch, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)


def multi_head(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """Attention output ``(..., N, a)`` of fused ``(..., N, 3a)`` q, k, v; heads are contiguous groups of
    ``a / heads`` channels."""
    q, k, v = qkv.unflatten(-1, (3, heads, -1)).movedim(-3, 0).transpose(-3, -2)  # 3 x (..., heads, N, head_dim)
    return attend(q, k, v).transpose(-3, -2).flatten(-2)


class Attention(nn.Module):
    """Multi-head self-attention: fused ``Linear(d, 3a)`` with ``a = heads x head_dim``, output ``Linear(a, d)``."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(multi_head(self.qkv(x), self.heads))


class Mlp(nn.Module):
    """``Linear(d, hidden)``, SiLU, ``Linear(hidden, d)`` (MobileViT's activation)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer on ``(..., N, d)`` tokens."""

    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MobileViTBlock(nn.Module):
    """Local conv, unfold, transformer layers across patches, fold, fuse (see the module docstring)."""

    def __init__(self, width: int, layers, head_dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.local = ConvBN(width, width, KERNEL)
        self.embed = nn.Conv2d(width, width, 1, bias=False)
        self.layers = nn.ModuleList(TransformerLayer(width, heads, head_dim, hidden) for heads, hidden in layers)
        self.norm = nn.LayerNorm(width)
        self.project = ConvBN(width, width)
        self.fuse = ConvBN(2 * width, width, KERNEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(self.local(x))
        h, w = y.shape[-2:]
        tokens = unfold(y, self.patch)
        for layer in self.layers:
            tokens = layer(tokens)
        y = fold(self.norm(tokens), self.patch, h, w)
        return self.fuse(torch.cat([x, self.project(y)], dim=1))


class Head(nn.Module):
    """MBPool: 1 x 1 conv to ``6 x cin`` + BN + SiLU, global average pooling, 1 x 1 conv to ``width`` (no bias,
    no norm) + SiLU, then the linear classifier."""

    def __init__(self, cin: int, width: int, num_classes: int):
        super().__init__()
        self.expand = ConvBN(cin, POOL_EXPANSION * cin)
        self.mix = nn.Conv2d(POOL_EXPANSION * cin, width, 1, bias=False)
        self.act = nn.SiLU()
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(self.act(self.mix(x)).flatten(1))


class AutoViT(nn.Sequential):
    """The model of one arch: ``(B, 3, S, S)`` images -> ``(B, num_classes)`` logits."""

    def __init__(self, shape, skeleton):
        s, t = skeleton.strides, skeleton.mb_expansion
        parts = OrderedDict(stem=ConvBN(IN_CHANNELS, shape.stem, KERNEL, s[0]))
        prev = shape.stem
        for i, (width, depth) in enumerate(shape.mb):
            parts[f"mb{i + 1}"] = nn.Sequential(*(MBConv(prev if k == 0 else width, width, t, s[1 + i] if k == 0 else 1)
                                                  for k in range(depth)))
            prev = width
        for j, (width, layers) in enumerate(shape.transformer):
            parts[f"t{j + 1}"] = nn.Sequential(OrderedDict(
                down=MBConv(prev, width, t, s[4 + j]),
                block=MobileViTBlock(width, layers, skeleton.head_dim, skeleton.patch)))
            prev = width
        parts["head"] = Head(prev, shape.pool, skeleton.num_classes)
        super().__init__(parts)
        self.shape = shape
        init_weights(self)
