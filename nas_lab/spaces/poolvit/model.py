"""The plain models of the poolvit space, and MLPerf Tiny's ResNet-8 built from the same blocks.

Layers, in the order ``cost.py`` counts them (our reading; see ``space.py``):

- ``ConvBN``: ``Conv2d`` with bias (padding ``k // 2``), then ``BatchNorm2d``; the
  owner applies ReLU where the block has one;
- ``ResidualBlock`` (ResNet basic block as MLPerf Tiny's ResNet-8 has it): two
  k x k ``ConvBN`` (stride on the first; ReLU after the first and after the
  add), a 1x1 shortcut conv *without* BatchNorm where stride or width changes;
- ``BottleneckBlock`` (ResNet): 1x1 to ``channels / ratio``, grouped k x k with
  the stride, 1x1 back, the same shortcut;
- ``InvertedBottleneck`` (MobileNetV2): 1x1 to ``channels * ratio``, depthwise
  k x k with the stride, linear 1x1 to ``channels``; identity skip only where
  the shape is kept;
- ``Pooling``: max, average (padding excluded from the mean) or their mean,
  stride 2, no parameters;
- ``LinearAttention``: every pixel is a token; q, k, v are 1x1 convs to
  ``heads x head_dim`` channels, ReLU on q and k, then per head
  ``out_i = sum_j v_j (q_i . k_j) / (sum_j q_i . k_j + eps)`` computed as
  ``Q (K^T V)``, linear in the number of tokens (EfficientViT's ReLU attention);
  a 1x1 ``ConvBN`` back to the input width, ReLU, residual add;
- ``AttentionBlock``: ``LinearAttention``, then a 1x1 ``ConvBN`` + ReLU to the
  output width, plus an identity skip (or a 1x1 conv skip where widths differ);
- ``PoolViTNet``: stem ``ConvBN`` + ReLU, the CNN stage, the pooling block, the
  ViT stage of MHSA (CNN block, then attention) and Pool-ViT (pooling, then
  attention) patterns, global average pooling and a linear classifier.

All attention matmuls are explicit so that ``FlopCounterMode`` counts them. The
activations are ``nn.ReLU`` modules (one per block, called at each of its ReLUs)
so that activation-based proxies (the Entropic Score, NASWOT) see them; the ReLU
feature map on q and k stays functional: like a softmax, it is part of the
attention, not an activation layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.spaces.poolvit.cost import IN_CHANNELS

#: added to the linear attention's denominator, which is 0 when every ReLU(q . k) is
EPS = 1e-6


class ConvBN(nn.Module):
    """``Conv2d`` (bias, padding ``k // 2``) then ``BatchNorm2d``."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def shortcut(cin: int, cout: int, stride: int) -> nn.Conv2d | None:
    """The 1x1 projection of a ResNet skip where stride or width changes (no BatchNorm, as in MLPerf Tiny)."""
    return nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, channels: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv1 = ConvBN(cin, channels, kernel, stride, groups)
        self.conv2 = ConvBN(channels, channels, kernel, 1, groups)
        self.shortcut = shortcut(cin, channels, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.act(self.conv1(x)))
        return self.act(y + (x if self.shortcut is None else self.shortcut(x)))


class BottleneckBlock(nn.Module):
    def __init__(self, cin: int, channels: int, kernel: int = 3, stride: int = 1, groups: int = 1, ratio: int = 4):
        super().__init__()
        mid = channels // ratio
        self.reduce = ConvBN(cin, mid)
        self.conv = ConvBN(mid, mid, kernel, stride, groups)
        self.expand = ConvBN(mid, channels)
        self.shortcut = shortcut(cin, channels, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.act(self.conv(self.act(self.reduce(x)))))
        return self.act(y + (x if self.shortcut is None else self.shortcut(x)))


class InvertedBottleneck(nn.Module):
    def __init__(self, cin: int, channels: int, kernel: int = 3, stride: int = 1, ratio: int = 2):
        super().__init__()
        hidden = channels * ratio
        self.expand = ConvBN(cin, hidden)
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, hidden)
        self.project = ConvBN(hidden, channels)
        self.skip = stride == 1 and cin == channels
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.act(self.depthwise(self.act(self.expand(x)))))
        return x + y if self.skip else y


def pool(x: torch.Tensor, kind: str, kernel: int, stride: int = 2) -> torch.Tensor:
    """Max, average (padding not counted) or the mean of both, ``kernel`` with padding ``kernel // 2``."""
    pad = kernel // 2
    if kind == "max":
        return F.max_pool2d(x, kernel, stride, pad)
    mean = F.avg_pool2d(x, kernel, stride, pad, count_include_pad=False)
    return mean if kind == "avg" else (mean + F.max_pool2d(x, kernel, stride, pad)) / 2


class Pooling(nn.Module):
    """The searchable pooling layer (no parameters)."""

    def __init__(self, kind: str, kernel: int, stride: int = 2):
        super().__init__()
        self.kind, self.kernel, self.stride = kind, kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pool(x, self.kind, self.kernel, self.stride)


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """ReLU linear attention of ``(b, heads * d, H, W)`` maps -> ``(b, heads * d, H, W)``, as three counted matmuls."""
    b, _, h, w = q.shape
    q, k, v = (t.reshape(b, heads, -1, h * w).transpose(-2, -1) for t in (q, k, v))  # (b, heads, N, d)
    q, k = F.relu(q), F.relu(k)
    numerator = q @ (k.transpose(-2, -1) @ v)
    denominator = q @ k.sum(dim=2, keepdim=True).transpose(-2, -1)
    return (numerator / (denominator + EPS)).transpose(-2, -1).reshape(b, -1, h, w)


class LinearAttention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Conv2d(dim, heads * head_dim, 1) for _ in range(3))
        self.proj = ConvBN(heads * head_dim, dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.proj(linear_attention(self.q(x), self.k(x), self.v(x), self.heads)))


class AttentionBlock(nn.Module):
    def __init__(self, cin: int, cout: int, heads: int, head_dim: int):
        super().__init__()
        self.attn = LinearAttention(cin, heads, head_dim)
        self.ffn = ConvBN(cin, cout)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(x)
        return self.act(self.ffn(y)) + (y if self.shortcut is None else self.shortcut(y))


class Pattern(nn.Module):
    """One ViT-stage position: ``mix`` (a CNN block, or ``Pooling`` in a Pool-ViT pattern), then ``vit``."""

    def __init__(self, mix: nn.Module, vit: AttentionBlock):
        super().__init__()
        self.mix, self.vit = mix, vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(self.mix(x))


@dataclass(frozen=True)
class Cnn:
    """One CNN block's settings (``kind`` in ``cost.BLOCKS``; ``groups`` unused by mbconv, ``ratio`` by residual)."""

    kind: str
    channels: int
    kernel: int
    stride: int
    groups: int = 1
    ratio: int = 1

    def build(self, cin: int) -> nn.Module:
        if self.kind == "residual":
            return ResidualBlock(cin, self.channels, self.kernel, self.stride, self.groups)
        if self.kind == "bottleneck":
            return BottleneckBlock(cin, self.channels, self.kernel, self.stride, self.groups, self.ratio)
        return InvertedBottleneck(cin, self.channels, self.kernel, self.stride, self.ratio)


@dataclass(frozen=True)
class Vit:
    """One ViT-stage pattern: ``cnn`` set (MHSA pattern) or ``pool`` set to ``(kind, kernel)`` (Pool-ViT)."""

    channels: int
    heads: int
    head_dim: int
    cnn: Cnn | None = None
    pool: tuple[str, int] | None = None

    def build(self, cin: int) -> Pattern:
        if self.cnn is not None:
            return Pattern(self.cnn.build(cin), AttentionBlock(self.channels, self.channels, self.heads, self.head_dim))
        return Pattern(Pooling(*self.pool), AttentionBlock(cin, self.channels, self.heads, self.head_dim))


@dataclass(frozen=True)
class Shape:
    """Everything ``PoolViTNet`` needs: the stem ``(channels, kernel, stride)``, CNN blocks, the pooling block
    ``(kind, kernel)`` (None: none, as in ResNet-8), ViT patterns, classes."""

    stem: tuple[int, int, int]
    cnn: tuple[Cnn, ...]
    pool: tuple[str, int] | None
    vit: tuple[Vit, ...]
    num_classes: int = 10


class PoolViTNet(nn.Module):
    """``(B, 3, H, W)`` images -> ``(B, num_classes)`` logits; fully convolutional up to the pooled classifier."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = shape
        width, kernel, stride = shape.stem
        self.stem = ConvBN(IN_CHANNELS, width, kernel, stride)
        blocks = []
        for block in shape.cnn:
            blocks.append(block.build(width))
            width = block.channels
        self.cnn = nn.ModuleList(blocks)
        self.pool = None if shape.pool is None else Pooling(*shape.pool)
        patterns = []
        for pattern in shape.vit:
            patterns.append(pattern.build(width))
            width = pattern.channels
        self.vit = nn.ModuleList(patterns)
        self.head = nn.Linear(width, shape.num_classes)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        for block in self.cnn:
            x = block(x)
        if self.pool is not None:
            x = self.pool(x)
        for pattern in self.vit:
            x = pattern(x)
        return self.head(x.mean(dim=(2, 3)))


#: MLPerf Tiny's ResNet-8 for CIFAR-10: 16-channel 3x3 stem, residual stacks of 16, 32 (stride 2) and 64 (stride 2)
RESNET8 = Shape((16, 3, 1), (Cnn("residual", 16, 3, 1), Cnn("residual", 32, 3, 2), Cnn("residual", 64, 3, 2)), None, ())


def resnet8(num_classes: int = 10) -> PoolViTNet:
    """MLPerf Tiny's ResNet-8 built from this space's blocks (78,186 parameters with 10 classes)."""
    return PoolViTNet(Shape(RESNET8.stem, RESNET8.cnn, None, (), num_classes))
