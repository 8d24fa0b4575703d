"""The AutoViT weight-sharing supernet: one module per variant whose slices are every arch's ``model.AutoViT``.

It holds ``model.AutoViT``'s parts under the same names at their largest: the widest
stem and stages, the deepest MobileNetV2 stages (3 blocks) and transformer stages (5
layers), the most heads (q, k, v ``max heads x head_dim`` wide), the widest MLPs
(ratio 2 of the widest stage) and MBPool. An arch runs on slices (weight
inheritance, the paper's ``W[:d1, :d2, ...]``, from ``nas_lab.nn.dynamic``): the first
channels of every conv, BatchNorm, linear and LayerNorm; the first ``depth``
blocks or layers of a stage; the first ``heads`` heads of q, k and v (heads are
contiguous groups of ``head_dim`` channels); the first ``hidden`` MLP channels;
the first ``c`` channels of each half of the fusion conv's concatenated input.
Only the slice is computed and gets gradients.

The one-shot contract (``nas_lab.oneshot.contract.Supernet``, single path only):
``forward(x, arch)``; ``extract(arch)``, ``space.build(arch)`` holding the slices, with
equal outputs in eval mode; ``recalibrate(arch, batches)``, which re-estimates the
BatchNorm statistics of the arch's path (HyViTas' procedure: running statistics
are shared by every path). DARTS' mixture of every decision is not offered.
Found subnets keep the inherited weights (the paper does not retrain).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.core.errors import UserError
from nas_lab.nn.blocks import init_weights
from nas_lab.nn.dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicLayerNorm,
    DynamicLinear,
    copy_slices,
    recalibrate_batchnorm,
)
from nas_lab.spaces.autovit.cost import IN_CHANNELS, KERNEL, POOL_EXPANSION
from nas_lab.spaces.autovit.model import fold, multi_head, unfold


class DepthwiseSlice(nn.Conv2d):
    """Depthwise conv without bias, at the stride it was built with, on a prefix of the largest layer's channels
    (as wide as its input)."""

    def __init__(self, channels: int, kernel: int, stride: int):
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)

    def forward(self, x: torch.Tensor, out: int | None = None) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.weight[:c], None, self.stride, self.padding, groups=c)

    @torch.no_grad()
    def copy_to(self, static: nn.Conv2d) -> None:
        static.weight.copy_(self.weight[: static.out_channels])


class ConcatInputConv2d(DynamicConv2d):
    """A ``DynamicConv2d`` on two concatenated inputs of equal width: width ``c`` keeps the first ``c`` input
    channels of each half (the fusion conv of a MobileViT block)."""

    def weights(self, out: int, cin: int) -> tuple[torch.Tensor, None]:
        half = self.in_channels // 2
        return torch.cat([self.weight[:out, : cin // 2], self.weight[:out, half : half + cin // 2]], dim=1), None


class DynamicConvBN(nn.Module):
    """``model.ConvBN`` (same child names) at its largest widths."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, depthwise: bool = False,
                 act: bool = True, concat: bool = False):
        super().__init__()
        if depthwise:
            self.conv = DepthwiseSlice(cin, kernel, stride)
        else:
            self.conv = (ConcatInputConv2d if concat else DynamicConv2d)(cin, cout, kernel, stride, kernel // 2,
                                                                         bias=False)
        self.bn = DynamicBatchNorm2d(cout)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, out), out))


class DynamicMBConv(nn.Module):
    """``model.MBConv`` at its largest; the residual is added when the path's block keeps its shape."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.expansion, self.stride = expansion, stride
        self.expand = DynamicConvBN(cin, hidden) if expansion > 1 else None
        self.dw = DynamicConvBN(hidden, hidden, KERNEL, stride, depthwise=True)
        self.project = DynamicConvBN(hidden, cout, act=False)

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        cin = x.shape[1]
        hidden = cin * self.expansion
        y = self.project(self.dw(x if self.expand is None else self.expand(x, hidden), hidden), out)
        return x + y if self.stride == 1 and cin == out else y


class DynamicTransformerLayer(nn.Module):
    """``model.TransformerLayer`` (same child names) at its largest dim, heads and MLP width."""

    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int):
        super().__init__()
        self.head_dim = head_dim
        self.norm1 = DynamicLayerNorm(dim)
        self.attn = nn.ModuleDict({"qkv": DynamicLinear(dim, heads * head_dim, parts=3),
                                       "proj": DynamicLinear(heads * head_dim, dim)})
        self.norm2 = DynamicLayerNorm(dim)
        self.mlp = nn.ModuleDict({"fc1": DynamicLinear(dim, hidden), "fc2": DynamicLinear(hidden, dim)})

    def forward(self, x: torch.Tensor, heads: int, hidden: int) -> torch.Tensor:
        d = x.shape[-1]
        x = x + self.attn.proj(multi_head(self.attn.qkv(self.norm1(x), heads * self.head_dim), heads), d)
        return x + self.mlp.fc2(F.silu(self.mlp.fc1(self.norm2(x), hidden)), d)


class DynamicMobileViTBlock(nn.Module):
    """``model.MobileViTBlock`` (same child names) at its largest width and depth."""

    def __init__(self, width: int, depth: int, heads: int, head_dim: int, hidden: int, patch: int):
        super().__init__()
        self.patch = patch
        self.local = DynamicConvBN(width, width, KERNEL)
        self.embed = DynamicConv2d(width, width, 1, bias=False)
        self.layers = nn.ModuleList(DynamicTransformerLayer(width, heads, head_dim, hidden) for _ in range(depth))
        self.norm = DynamicLayerNorm(width)
        self.project = DynamicConvBN(width, width)
        self.fuse = DynamicConvBN(2 * width, width, KERNEL, concat=True)

    def forward(self, x: torch.Tensor, layers) -> torch.Tensor:
        c = x.shape[1]
        y = self.embed(self.local(x, c), c)
        h, w = y.shape[-2:]
        tokens = unfold(y, self.patch)
        for layer, (heads, hidden) in zip(self.layers, layers):
            tokens = layer(tokens, heads, hidden)
        y = fold(self.norm(tokens), self.patch, h, w)
        return self.fuse(torch.cat([x, self.project(y, c)], dim=1), c)


class DynamicHead(nn.Module):
    """``model.Head`` (same child names) at its largest input and MBPool widths."""

    def __init__(self, cin: int, width: int, num_classes: int):
        super().__init__()
        self.expand = DynamicConvBN(cin, POOL_EXPANSION * cin)
        self.mix = DynamicConv2d(POOL_EXPANSION * cin, width, 1, bias=False)
        self.classifier = DynamicLinear(width, num_classes)

    def forward(self, x: torch.Tensor, width: int) -> torch.Tensor:
        x = self.expand(x, POOL_EXPANSION * x.shape[1]).mean(dim=(2, 3), keepdim=True)
        return self.classifier(F.silu(self.mix(x, width)).flatten(1), self.classifier.out_features)


class AutoViTSupernet(nn.Module):
    """Weight-sharing supernet of an AutoViT space: ``(B, 3, S, S)`` images and an arch -> ``(B, num_classes)``."""

    def __init__(self, space, num_classes: int):
        super().__init__()
        self.space, self.num_classes = space, num_classes
        v, sk = space.spec, space.skeleton
        s, t = sk.strides, sk.mb_expansion
        prev = max(v.stem)
        self.stem = DynamicConvBN(IN_CHANNELS, prev, KERNEL, s[0])
        for i, (widths, depths) in enumerate(zip(v.mb_widths, v.mb_depths)):
            width = max(widths)
            setattr(self, f"mb{i + 1}", nn.ModuleList(
                DynamicMBConv(prev if k == 0 else width, width, t, s[1 + i] if k == 0 else 1)
                for k in range(max(depths))))
            prev = width
        heads, depth = max(v.heads), max(v.t_depths)
        for j in range(space.max_stages):
            width = max(v.t_widths[j])
            hidden = round(width * max(v.mlp_ratios))
            setattr(self, f"t{j + 1}", nn.ModuleDict({
                "down": DynamicMBConv(prev, width, t, s[4 + j]),
                "block": DynamicMobileViTBlock(width, depth, heads, sk.head_dim, hidden, sk.patch)}))
            prev = width
        last = max(max(v.t_widths[n - 1]) for n in v.stages)
        self.head = DynamicHead(last, max(v.pool), num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, arch=None, *, weights=None) -> torch.Tensor:
        """Logits of the single path ``arch`` (option indices)."""
        if weights is not None or arch is None:
            raise UserError("the AutoViT supernet runs one arch per forward pass (SPOS, objective=supernet.*), "
                            "not a mixture of every decision (DARTS); use searcher=spos or objective=supernet.id")
        shape = self.space.shape(arch)
        x = self.stem(x, shape.stem)
        for i, (width, depth) in enumerate(shape.mb):
            for block in getattr(self, f"mb{i + 1}")[:depth]:
                x = block(x, width)
        for j, (width, layers) in enumerate(shape.transformer):
            stage = getattr(self, f"t{j + 1}")
            x = stage.block(stage.down(x, width), layers)
        return self.head(x, shape.pool)

    @torch.no_grad()
    def extract(self, arch) -> nn.Module:
        """``space.build(arch)`` holding this supernet's slices of weights and BatchNorm statistics."""
        model = self.space.build(arch, num_classes=self.num_classes)
        copy_slices(self, model)
        return model.to(self.head.classifier.weight.device)

    def recalibrate(self, arch, batches: Iterable) -> AutoViTSupernet:
        """Re-estimate the path's BatchNorm statistics on ``batches`` (``nn.dynamic.recalibrate_batchnorm``)."""
        return recalibrate_batchnorm(self, arch, batches)
