"""Dynamic (sliceable) layers for weight-sharing supernets.

Each layer stores the weights of its *largest* choice only; every smaller choice
inherits a slice of them (AutoViT/AutoFormer weight inheritance: the first
channels of every axis, the centre of a kernel). A layer's forward takes the
active choice in one of two forms, so one supernet body serves both one-shot
families:

- an ``int`` width (or kernel size): the layer runs on that **slice** of its
  weights, and its input width is whatever the incoming tensor has. This is the
  single-path (SPOS) mode: only the slice is computed and only it gets gradients.
- a 1-D float **mask** over the largest width (or a 2-D mask over the largest
  kernel): the layer runs at full size and multiplies its output channels (or
  its kernel) by the mask. A mask ``sum_k w_k * 1[c < width_k]`` (see
  ``prefix_mask``) is the layer-wise continuous relaxation of DARTS applied to
  widths (a masked channel mixture, as in FBNetV2); with one-hot ``w`` it zeroes
  exactly the channels the slice leaves out.

Every sliceable layer (and the attention, whose heads need a permutation) has
``copy_to(static)``, which writes its slice into the plain torch layer of the
same choice; ``copy_slices`` walks a supernet and a standalone model
whose module names mirror each other, so a space extracts an arch's model with
inherited weights without a hand-written mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.nn.blocks import SelfAttention

#: active output width of a layer: an ``int`` keeps the first channels (slice),
#: a 1-D tensor over the largest width multiplies them (masked mixture)
Width = int | torch.Tensor


def prefix_mask(probs: torch.Tensor, widths: Sequence[int], size: int) -> torch.Tensor:
    """``sum_k probs[k] * 1[c < widths[k]]`` for ``c < size``: the expected keep-mask of a width choice.

    Differentiable in ``probs``; one-hot ``probs`` give the hard mask of that width.
    """
    keep = torch.arange(size, device=probs.device) < torch.as_tensor(widths, device=probs.device)[:, None]
    return probs @ keep.to(probs.dtype)


def kernel_mask(probs: torch.Tensor, kernels: Sequence[int], size: int) -> torch.Tensor:
    """``(size, size)`` mixture of centred ``k x k`` windows of ones, weighted by ``probs``.

    Multiplying the largest kernel by it equals the weighted sum of its
    centre-cropped kernels, each zero-padded back to ``size x size``.
    """
    pos = torch.arange(size, device=probs.device)
    masks = []
    for k in kernels:
        inside = (pos >= (size - k) // 2) & (pos < (size + k) // 2)
        masks.append((inside[:, None] & inside[None, :]).to(probs.dtype))
    return (probs[:, None, None] * torch.stack(masks)).sum(0)


class DynamicConv2d(nn.Conv2d):
    """Dense conv whose output and input channels are prefixes of the largest layer's."""

    def weights(self, out: int, cin: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The sliced weight and bias of an ``cin -> out`` conv."""
        return self.weight[:out, :cin], None if self.bias is None else self.bias[:out]

    def forward(self, x: torch.Tensor, out: Width) -> torch.Tensor:
        sliced = isinstance(out, int)
        y = F.conv2d(x, *self.weights(out if sliced else self.out_channels, x.shape[1]), self.stride, self.padding)
        return y if sliced else y * out[:, None, None]

    @torch.no_grad()
    def copy_to(self, static: nn.Conv2d) -> None:
        weight, bias = self.weights(static.out_channels, static.in_channels)
        static.weight.copy_(weight)
        if bias is not None:
            static.bias.copy_(bias)


class DynamicDepthwiseConv2d(nn.Conv2d):
    """Depthwise conv with a searchable kernel: smaller kernels are centre crops of the largest.

    Its width follows its input (channel ``c`` only sees input channel ``c``), so
    it takes no width; in mask mode the padded channels carry only the bias,
    which the BatchNorm after it masks away. On an ``H x W`` map, taps further
    than ``H - 1`` / ``W - 1`` from the centre only ever meet zero padding, so
    the kernel is cropped to at most ``(2H - 1) x (2W - 1)``: the same result
    and gradients, and a 7x7 kernel on the 1x1 last stage of a 32x32 input costs
    a 1x1 conv.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__(channels, channels, kernel, padding=kernel // 2, groups=channels)

    def weights(self, channels: int, kh: int, kw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``channels`` kernels, centre-cropped to ``kh x kw``, and their bias."""
        top, left = (self.kernel_size[0] - kh) // 2, (self.kernel_size[1] - kw) // 2
        return self.weight[:channels, :, top : top + kh, left : left + kw], self.bias[:channels]

    def forward(self, x: torch.Tensor, kernel: int | torch.Tensor) -> torch.Tensor:
        channels, h, w = x.shape[1:]
        size = kernel if isinstance(kernel, int) else self.kernel_size[0]
        kh, kw = min(size, 2 * h - 1), min(size, 2 * w - 1)
        weight, bias = self.weights(channels, kh, kw)
        if not isinstance(kernel, int):
            top, left = (size - kh) // 2, (size - kw) // 2
            weight = weight * kernel[top : top + kh, left : left + kw]
        return F.conv2d(x, weight, bias, padding=(kh // 2, kw // 2), groups=channels)

    @torch.no_grad()
    def copy_to(self, static: nn.Conv2d) -> None:
        weight, bias = self.weights(static.out_channels, *static.kernel_size)
        static.weight.copy_(weight)
        static.bias.copy_(bias)


class DynamicLinear(nn.Linear):
    """Linear layer on tokens whose output is ``parts`` stacked blocks (e.g. q, k, v), each sliceable.

    The weight is ``(parts * max_out, max_in)``; width ``d`` keeps the first
    ``d`` rows of every block, so a fused qkv projection slices to a fused one.
    """

    def __init__(self, max_in: int, max_out: int, parts: int = 1):
        super().__init__(max_in, parts * max_out)
        self.parts = parts

    def weights(self, out: int, cin: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.weight.unflatten(0, (self.parts, -1))[:, :out, :cin].flatten(0, 1)
        return weight, self.bias.unflatten(0, (self.parts, -1))[:, :out].flatten()

    def forward(self, x: torch.Tensor, out: Width) -> torch.Tensor:
        sliced = isinstance(out, int)
        y = F.linear(x, *self.weights(out if sliced else self.out_features // self.parts, x.shape[-1]))
        return y if sliced else y * out.repeat(self.parts)

    @torch.no_grad()
    def copy_to(self, static: nn.Linear) -> None:
        weight, bias = self.weights(static.out_features // self.parts, static.in_features)
        static.weight.copy_(weight)
        static.bias.copy_(bias)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose affine parameters **and running statistics** are sliced to the active width.

    The running statistics are shared by every arch of the supernet, although
    each arch's activations have their own distribution; an arch's slice of
    them is only meaningful after re-estimating it on that arch (``recalibrate``
    of a supernet), as SPOS does before evaluating a candidate.
    """

    def forward(self, x: torch.Tensor, out: Width) -> torch.Tensor:
        """Normalise the input's channels (an ``int`` ``out`` is the input's width); mask them if ``out`` is a mask."""
        channels = x.shape[1]
        if self.training:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        else:
            factor = 0.0
        y = F.batch_norm(
            x, self.running_mean[:channels], self.running_var[:channels],  # views: updated in place
            self.weight[:channels], self.bias[:channels], self.training, factor, self.eps,
        )
        return y if isinstance(out, int) else y * out[:, None, None]

    @torch.no_grad()
    def copy_to(self, static: nn.BatchNorm2d) -> None:
        n = static.num_features
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(static, name).copy_(getattr(self, name)[:n])
        static.num_batches_tracked.copy_(self.num_batches_tracked)


class DynamicLayerNorm(nn.LayerNorm):
    """LayerNorm over the last axis whose affine parameters are sliced to the input's width.

    A width-``d`` input is normalised over its ``d`` channels with the first
    ``d`` weights and biases: exactly ``nn.LayerNorm(d)`` holding that slice
    (``copy_to``). It has no running statistics, so paths need no recalibration.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)

    @torch.no_grad()
    def copy_to(self, static: nn.LayerNorm) -> None:
        d = static.normalized_shape[0]
        static.weight.copy_(self.weight[:d])
        static.bias.copy_(self.bias[:d])

class DynamicSelfAttention(nn.Module):
    """``blocks.SelfAttention`` with a searchable width and a fixed number of heads.

    Heads are *interleaved*: channel ``c`` belongs to head ``c % heads``. Then
    every prefix of ``d`` channels splits into the same ``heads`` heads of
    ``d / heads`` channels, so slicing q, k, v and the output projection to ``d``
    keeps the head structure, and a masked full-width pass attends within the
    same heads as the slice. ``copy_to`` permutes the channels into the
    contiguous head layout of ``SelfAttention``. The softmax scale is
    ``head_dim ** -0.5`` with ``head_dim = sum(mask) / heads`` under a mask (the
    expected head dim), which is exact for one-hot masks.
    """

    def __init__(self, max_dim: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.norm = DynamicBatchNorm2d(max_dim)
        self.qkv = DynamicLinear(max_dim, max_dim, parts=3)
        self.proj = DynamicLinear(max_dim, max_dim)

    def forward(self, x: torch.Tensor, width: Width) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x, width).permute(0, 2, 3, 1).reshape(b, h * w, c)  # (b, n, c), a view if channels-last
        # (b, n, 3 * c) -> (3, b, heads, n, head_dim): channel = position * heads + head
        q, k, v = self.qkv(tokens, width).unflatten(-1, (3, -1, self.heads)).permute(2, 0, 4, 1, 3)
        head_dim = width / self.heads if isinstance(width, int) else width.sum() / self.heads
        weights = ((q * head_dim**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (weights @ v).permute(0, 2, 3, 1).flatten(2)  # back to position * heads + head
        return x + self.proj(out, width).reshape(b, h, w, c).permute(0, 3, 1, 2)

    @torch.no_grad()
    def copy_to(self, static: SelfAttention) -> None:
        dim = static.qkv.in_features
        head_dim = dim // self.heads
        # contiguous channel j = (head j // head_dim, position j % head_dim) sits at position * heads + head here
        j = torch.arange(dim)
        order = (j % head_dim) * self.heads + j // head_dim
        self.norm.copy_to(static.norm)
        weight, bias = self.qkv.weights(dim, dim)
        static.qkv.weight.copy_(weight.unflatten(0, (3, dim))[:, order].flatten(0, 1))
        static.qkv.bias.copy_(bias.unflatten(0, (3, dim))[:, order].flatten())
        weight, bias = self.proj.weights(dim, dim)
        static.proj.weight.copy_(weight[:, order])
        static.proj.bias.copy_(bias)


class DynamicConvNeXtBlock(nn.Module):
    """``blocks.ConvNeXtBlock`` (same child names) with searchable width, kernel and hidden width."""

    def __init__(self, max_dim: int, max_kernel: int, max_expansion: int):
        super().__init__()
        self.dwconv = DynamicDepthwiseConv2d(max_dim, max_kernel)
        self.norm = DynamicBatchNorm2d(max_dim)
        self.pw1 = DynamicConv2d(max_dim, max_dim * max_expansion, 1)
        self.act = nn.GELU()
        self.pw2 = DynamicConv2d(max_dim * max_expansion, max_dim, 1)

    def forward(self, x: torch.Tensor, width: Width, kernel: int | torch.Tensor, hidden: Width) -> torch.Tensor:
        return x + self.pw2(self.act(self.pw1(self.norm(self.dwconv(x, kernel), width), hidden)), width)


class DynamicHybridBlock(nn.Module):
    """``blocks.HybridBlock`` (same child names): dynamic attention, then a dynamic ConvNeXt block."""

    def __init__(self, max_dim: int, max_kernel: int, max_expansion: int, heads: int = 8):
        super().__init__()
        self.attn = DynamicSelfAttention(max_dim, heads)
        self.conv = DynamicConvNeXtBlock(max_dim, max_kernel, max_expansion)

    def forward(self, x: torch.Tensor, width: Width, kernel: int | torch.Tensor, hidden: Width) -> torch.Tensor:
        return self.conv(self.attn(x, width), width, kernel, hidden)


def copy_slices(dynamic: nn.Module, static: nn.Module) -> None:
    """Load into ``static`` the slices of ``dynamic``, a supernet part whose module names mirror it.

    A dynamic layer with ``copy_to`` fills its whole static twin; other modules
    are walked child by child. Stateless children (activations, pooling) are skipped.
    """
    if hasattr(dynamic, "copy_to"):
        dynamic.copy_to(static)
        return
    for name, child in static.named_children():
        if child.state_dict():
            copy_slices(getattr(dynamic, name), child)


@torch.no_grad()
def recalibrate_batchnorm(net: nn.Module, arch, batches) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics of supernet ``net`` for the path ``arch``; returns ``net``.

    The running statistics are shared by all paths but each path's activations
    have their own, so after (SPOS) training they fit no single arch. They are
    reset and set to the cumulative average (``momentum=None``) of the path's
    batch statistics over ``batches`` (image tensors or ``(images, labels)``),
    computed in train mode without gradients; train or eval mode is left as it was.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta, was_training = [m.momentum for m in norms], net.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for batch in batches:
        net(batch[0] if isinstance(batch, (tuple, list)) else batch, arch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net.train(was_training)
