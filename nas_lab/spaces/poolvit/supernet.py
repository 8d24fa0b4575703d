"""The poolvit weight-sharing supernet: one module whose single paths are every arch's ``model.PoolViTNet``.

Per position it holds one block of each kind at its largest (SPOS choice
blocks): the CNN stage's positions a residual, a bottleneck and an inverted
bottleneck; the ViT stage's positions those three plus the MHSA pattern's
attention block, and the Pool-ViT pattern's own attention block. Module names
mirror ``model.py``, so ``nn.dynamic.copy_slices`` loads a path into its model.

An arch runs on slices (weight inheritance from the largest block):

- widths: the first channels of every conv, BatchNorm and the classifier;
- kernels: the centre ``k x k`` of the 7 x 7 weights;
- groups: a grouped conv with ``g`` groups takes, from the dense weight sliced
  to its widths, the ``g`` diagonal blocks (group ``j``'s outputs read group
  ``j``'s inputs), so every group count shares one weight; depthwise convs
  keep one filter per channel;
- heads: q, k and v hold ``4 x 16`` rows (largest heads x head dimension); head
  ``j`` of dimension ``d`` uses rows ``16 j .. 16 j + d - 1``, and the output
  projection the same columns.

It implements the one-shot layer's contract (``nas_lab.oneshot.contract.Supernet``)
structurally, for single paths only (SPOS, ``objective=supernet.*``): ``forward(x,
arch)``, ``extract(arch)`` (``space.build(arch)`` holding the slices) and
``recalibrate(arch, batches)`` (BatchNorm statistics of the path).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.core.errors import UserError
from nas_lab.nn.dynamic import (
    DynamicBatchNorm2d,
    DynamicLinear,
    copy_slices,
    recalibrate_batchnorm,
)
from nas_lab.spaces.poolvit import cost
from nas_lab.spaces.poolvit.cost import (
    BLOCKS,
    CNN_CHANNELS,
    HEAD_DIMS,
    HEADS,
    KERNELS,
    POOLS,
    RATIOS,
    STEM_CHANNELS,
    VIT_CHANNELS,
)
from nas_lab.spaces.poolvit.model import PoolViTNet, linear_attention, pool

MAX_KERNEL, MAX_RATIO = max(KERNELS), max(RATIOS)


class SlicedConv2d(nn.Conv2d):
    """A conv of the largest widths and kernel whose paths take a width, kernel, stride and group count."""

    def __init__(self, max_in: int, max_out: int, max_kernel: int = 1, depthwise: bool = False):
        super().__init__(max_out if depthwise else max_in, max_out, max_kernel, groups=max_out if depthwise else 1)
        self.depthwise = depthwise

    def weights(self, out: int, cin: int, kernel: int, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight and bias of a ``cin -> out`` conv with ``groups`` groups and a ``kernel x kernel`` window."""
        crop = (self.kernel_size[0] - kernel) // 2
        weight = self.weight[:out, :, crop:crop + kernel, crop:crop + kernel]
        if not self.depthwise:
            weight = weight[:, :cin]
            if groups > 1:  # keep the diagonal blocks: group j's outputs read group j's inputs
                blocks = weight.reshape(groups, out // groups, groups, cin // groups, kernel, kernel)
                j = torch.arange(groups, device=weight.device)
                weight = blocks[j, :, j].reshape(out, cin // groups, kernel, kernel)
        return weight, self.bias[:out]

    def forward(self, x: torch.Tensor, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> torch.Tensor:
        cin = x.shape[1]
        if self.depthwise:
            out = groups = cin
        return F.conv2d(x, *self.weights(out, cin, kernel, groups), stride, kernel // 2, 1, groups)

    @torch.no_grad()
    def copy_to(self, static: nn.Conv2d) -> None:
        weight, bias = self.weights(static.out_channels, static.in_channels, static.kernel_size[0], static.groups)
        static.weight.copy_(weight)
        static.bias.copy_(bias)


class SuperConvBN(nn.Module):
    """``model.ConvBN`` at its largest."""

    def __init__(self, max_in: int, max_out: int, max_kernel: int = 1, depthwise: bool = False):
        super().__init__()
        self.conv = SlicedConv2d(max_in, max_out, max_kernel, depthwise)
        self.bn = DynamicBatchNorm2d(max_out)

    def forward(self, x: torch.Tensor, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> torch.Tensor:
        y = self.conv(x, out, kernel, stride, groups)
        return self.bn(y, y.shape[1])


def project(x: torch.Tensor, conv: SlicedConv2d, out: int, stride: int) -> torch.Tensor:
    """A ResNet skip: ``x`` itself, or its 1x1 projection where stride or width changes."""
    return x if stride == 1 and x.shape[1] == out else conv(x, out, 1, stride)


class SuperResidual(nn.Module):
    def __init__(self, max_in: int, max_c: int):
        super().__init__()
        self.conv1 = SuperConvBN(max_in, max_c, MAX_KERNEL)
        self.conv2 = SuperConvBN(max_c, max_c, MAX_KERNEL)
        self.shortcut = SlicedConv2d(max_in, max_c)

    def forward(self, x, channels, kernel, stride, groups, ratio):
        y = self.conv2(F.relu(self.conv1(x, channels, kernel, stride, groups)), channels, kernel, 1, groups)
        return F.relu(y + project(x, self.shortcut, channels, stride))


class SuperBottleneck(nn.Module):
    def __init__(self, max_in: int, max_c: int):
        super().__init__()
        self.reduce = SuperConvBN(max_in, max_c)
        self.conv = SuperConvBN(max_c, max_c, MAX_KERNEL)
        self.expand = SuperConvBN(max_c, max_c)
        self.shortcut = SlicedConv2d(max_in, max_c)

    def forward(self, x, channels, kernel, stride, groups, ratio):
        mid = channels // ratio
        y = F.relu(self.conv(F.relu(self.reduce(x, mid)), mid, kernel, stride, groups))
        return F.relu(self.expand(y, channels) + project(x, self.shortcut, channels, stride))


class SuperInverted(nn.Module):
    def __init__(self, max_in: int, max_c: int):
        super().__init__()
        self.expand = SuperConvBN(max_in, max_c * MAX_RATIO)
        self.depthwise = SuperConvBN(max_c * MAX_RATIO, max_c * MAX_RATIO, MAX_KERNEL, depthwise=True)
        self.project = SuperConvBN(max_c * MAX_RATIO, max_c)

    def forward(self, x, channels, kernel, stride, groups, ratio):
        hidden = channels * ratio
        y = F.relu(self.depthwise(F.relu(self.expand(x, hidden)), hidden, kernel, stride))
        y = self.project(y, channels)
        return x + y if stride == 1 and x.shape[1] == channels else y


class SuperCnn(nn.Module):
    """One CNN position: a block of each kind (``cost.BLOCKS``) at its largest."""

    def __init__(self, max_in: int, max_c: int):
        super().__init__()
        self.residual = SuperResidual(max_in, max_c)
        self.bottleneck = SuperBottleneck(max_in, max_c)
        self.mbconv = SuperInverted(max_in, max_c)


class SuperLinearAttention(nn.Module):
    """``model.LinearAttention`` with the largest heads and head dimension; a path's heads are row blocks."""

    def __init__(self, max_dim: int):
        super().__init__()
        self.max_head_dim = max(HEAD_DIMS)
        width = max(HEADS) * self.max_head_dim
        self.q, self.k, self.v = (nn.Conv2d(max_dim, width, 1) for _ in range(3))
        self.proj = nn.Conv2d(width, max_dim, 1)
        self.norm = DynamicBatchNorm2d(max_dim)

    def rows(self, heads: int, head_dim: int) -> torch.Tensor:
        """The q, k, v rows (and projection columns) of ``heads`` heads of ``head_dim`` channels."""
        start = torch.arange(heads, device=self.q.weight.device)[:, None] * self.max_head_dim
        return (start + torch.arange(head_dim, device=start.device)).flatten()

    def forward(self, x: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
        c, rows = x.shape[1], self.rows(heads, head_dim)
        q, k, v = (F.conv2d(x, m.weight[rows, :c], m.bias[rows]) for m in (self.q, self.k, self.v))
        y = F.conv2d(linear_attention(q, k, v, heads), self.proj.weight[:c, rows], self.proj.bias[:c])
        return x + F.relu(self.norm(y, c))

    @torch.no_grad()
    def copy_to(self, static) -> None:
        c, heads = static.q.in_channels, static.heads
        rows = self.rows(heads, static.q.out_channels // heads)
        for name in ("q", "k", "v"):
            getattr(static, name).weight.copy_(getattr(self, name).weight[rows, :c])
            getattr(static, name).bias.copy_(getattr(self, name).bias[rows])
        static.proj.conv.weight.copy_(self.proj.weight[:c, rows])
        static.proj.conv.bias.copy_(self.proj.bias[:c])
        self.norm.copy_to(static.proj.bn)


class SuperAttentionBlock(nn.Module):
    """``model.AttentionBlock`` at its largest."""

    def __init__(self, max_in: int, max_out: int):
        super().__init__()
        self.attn = SuperLinearAttention(max_in)
        self.ffn = SuperConvBN(max_in, max_out)
        self.shortcut = SlicedConv2d(max_in, max_out)

    def forward(self, x: torch.Tensor, out: int, heads: int, head_dim: int) -> torch.Tensor:
        y = self.attn(x, heads, head_dim)
        return F.relu(self.ffn(y, out)) + (y if y.shape[1] == out else self.shortcut(y, out))


class SuperVit(nn.Module):
    """One ViT position: the MHSA pattern's CNN blocks and attention block, and the Pool-ViT pattern's attention."""

    def __init__(self, max_in: int, max_c: int):
        super().__init__()
        self.cnn = SuperCnn(max_in, max_c)
        self.mhsa = SuperAttentionBlock(max_c, max_c)
        self.poolvit = SuperAttentionBlock(max_in, max_c)


class PoolViTSupernet(nn.Module):
    """Weight-sharing supernet of a poolvit space: ``(B, 3, H, W)`` images and an arch -> ``(B, num_classes)``.

    A single-path ``nas_lab.oneshot.contract.Supernet``; fully convolutional like the models.
    """

    def __init__(self, space, num_classes: int):
        super().__init__()
        self.space, self.num_classes = space, num_classes
        widest = max(STEM_CHANNELS)
        self.stem = SuperConvBN(cost.IN_CHANNELS, widest, MAX_KERNEL)
        self.cnn = nn.ModuleList()
        for _ in range(space.cnn_blocks):
            self.cnn.append(SuperCnn(widest, max(CNN_CHANNELS)))
            widest = max(widest, max(CNN_CHANNELS))
        self.vit = nn.ModuleList()
        for _ in range(space.vit_blocks):
            self.vit.append(SuperVit(widest, max(VIT_CHANNELS)))
            widest = max(widest, max(VIT_CHANNELS))
        self.head = DynamicLinear(widest, num_classes)

    def forward(self, x: torch.Tensor, arch=None, *, weights=None) -> torch.Tensor:
        """Logits of the single path ``arch`` (option indices)."""
        if weights is not None or arch is None:
            raise UserError("the poolvit supernet runs one arch per forward pass (SPOS, objective=supernet.*), not a "
                            "mixture of every decision (DARTS); use searcher=spos or objective=supernet.id")
        path = self.space.path(arch)
        width, kernel, stride = path["stem"]
        x = F.relu(self.stem(x, width, kernel, stride))
        for position, (kind, *block) in zip(self.cnn, path["cnn"]):
            if kind != cost.IDENTITY:
                x = getattr(position, BLOCKS[kind - 1])(x, *block)
        kind, kernel = path["pool"]
        x = pool(x, POOLS[kind], kernel)
        for position, (kind, block, channels, kernel, stride, groups, ratio, pooling, heads, head_dim) in \
                zip(self.vit, path["vit"]):
            if kind == cost.MHSA:
                x = getattr(position.cnn, BLOCKS[block - 1])(x, channels, kernel, stride, groups, ratio)
                x = position.mhsa(x, channels, heads, head_dim)
            elif kind == cost.POOLVIT:
                x = position.poolvit(pool(x, POOLS[pooling], kernel), channels, heads, head_dim)
        return self.head(x.mean(dim=(2, 3)), self.num_classes)

    @torch.no_grad()
    def extract(self, arch) -> PoolViTNet:
        """``space.build(arch)`` holding this supernet's slices (weights and BatchNorm statistics)."""
        model = self.space.build(arch, num_classes=self.num_classes)
        path = self.space.path(arch)
        copy_slices(self.stem, model.stem)
        cnn = [getattr(p, BLOCKS[kind - 1]) for p, (kind, *_) in zip(self.cnn, path["cnn"]) if kind]
        for dynamic, static in zip(cnn, model.cnn):
            copy_slices(dynamic, static)
        vit = [(p, kind, block) for p, (kind, block, *_) in zip(self.vit, path["vit"]) if kind]
        for (position, kind, block), static in zip(vit, model.vit):
            if kind == cost.MHSA:
                copy_slices(getattr(position.cnn, BLOCKS[block - 1]), static.mix)
                copy_slices(position.mhsa, static.vit)
            else:
                copy_slices(position.poolvit, static.vit)
        self.head.copy_to(model.head)
        return model.to(self.head.weight.device)

    def recalibrate(self, arch, batches: Iterable) -> PoolViTSupernet:
        """Re-estimate the path's BatchNorm statistics on ``batches`` (``nn.dynamic.recalibrate_batchnorm``)."""
        return recalibrate_batchnorm(self, arch, batches)
