"""The HyViTas weight-sharing supernet: one module holding the largest choice of every decision.

It has the layers of ``model.build_model`` at their largest (kernel 7,
expansion 4, dims 48/96/160/256), under the same module names, built from
``nas_lab.nn.dynamic``. Every arch of the space is a slice of it (weight
inheritance from the largest block, as in AutoViT), and it runs in two ways:

**Single path** (SPOS): ``supernet(x, arch)`` computes exactly that arch's model
on slices of the weights: the first ``dim`` output channels of the stem,
downsampling and pointwise convs and of every BatchNorm, the first ``dim *
expansion`` hidden channels of the ConvNeXt MLPs, centre ``k x k`` crops of the
7x7 depthwise kernels, the first ``dim`` rows of each of q, k, v and of the
output projection (8 heads of ``dim / 8`` channels), and the first ``dim``
input channels of the head conv. Weights outside the slice are not computed
and get zero gradients.

**Mixture** (DARTS, layer-wise relaxation): ``supernet(x, weights=ws)`` with one
probability vector per decision (e.g. softmaxed architecture logits) runs the
full-width network with:

- ``*.kernel``: each depthwise conv of those stages uses one 7x7 kernel, the
  ``w``-weighted sum of its 3x3, 5x5 and 7x7 centre crops zero-padded to 7x7;
- ``stageN.dim``: the mask ``m_N[c] = sum_k w_k * 1[c < dim_k]`` multiplies
  every tensor of that stage's width where a layer produces it: the stem (stage
  1) or downsampling conv output, every BatchNorm output (including the
  downsampling's and head's input norms, with the previous/last stage's mask),
  the ConvNeXt ``pw2`` output (the residual branch), the attention q, k, v and
  output projection. Where ``m_N`` is 0 (channels beyond every option with
  non-zero weight) the residual stream is exactly zero. Attention logits weigh
  channel ``c`` by ``m_N[c] ** 2`` (q and k are both masked) and use the soft
  head dim ``sum(m_N) / 8`` in the softmax scale;
- ``*.expansion``: the ConvNeXt hidden layer (``pw1`` output) is multiplied by
  the expected mask of the hidden width ``dim * expansion`` under the
  independent dim and expansion choices,
  ``sum_{k,j} w_dim_k w_exp_j * 1[c < dim_k * expansion_j]``.

With one-hot weights every mask is the hard mask of the chosen option and the
mixture equals the single path. BatchNorm running statistics are shared by
every path (see ``recalibrate``).

It implements the one-shot layer's supernet contract
(``nas_lab.oneshot.contract.Supernet``, with ``mixture = True``) structurally:
spaces sit above the one-shot layer and do not import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.nn.dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicConvNeXtBlock,
    DynamicHybridBlock,
    copy_slices,
    kernel_mask,
    prefix_mask,
    recalibrate_batchnorm,
)
from nas_lab.spaces.hyvitas.cost import DEPTH, HEADS, PATCH


class HyViTasSupernet(nn.Module):
    """Weight-sharing supernet of a HyViTas space; ``(B, 3, H, W)`` -> ``(B, num_classes)`` logits.

    A ``nas_lab.oneshot.contract.Supernet`` that also runs DARTS mixtures.

    Fully convolutional like the standalone models, so any input side divisible
    by 32 works. At 32x32 the stages are 8, 4, 2 and 1 pixels wide: the 1-token
    attention of stage 4 is then a plain projection of v, and every
    ``attn.kernel`` option sees the whole 2x2 / 1x1 map, so archs that differ
    only in ``attn.kernel`` compute the same function (and DARTS gets no
    gradient for that decision); 64x64 inputs (stage 3 at 4x4, stage 4 at 2x2)
    avoid both.
    """

    #: ``forward`` also takes a mixture (``weights=``): DARTS can search this space
    mixture = True

    def __init__(self, space, num_classes: int = 500):
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self._options = {d.name: d.options for d in space.decisions}
        dims = [max(self._options[f"stage{i}.dim"]) for i in range(1, 5)]
        # children named as in ``model.build_model`` so ``extract`` can mirror them
        self.stem = nn.ModuleList(
            [DynamicConv2d(3, dims[0], PATCH, stride=PATCH), DynamicBatchNorm2d(dims[0])]
        )
        for i, dim in enumerate(dims):
            kind = "conv" if i < 2 else "attn"
            kernel, expansion = max(self._options[f"{kind}.kernel"]), max(self._options[f"{kind}.expansion"])
            down = [] if i == 0 else [DynamicBatchNorm2d(dims[i - 1]), DynamicConv2d(dims[i - 1], dim, 2, stride=2)]
            if i < 2:
                blocks = [DynamicConvNeXtBlock(dim, kernel, expansion) for _ in range(DEPTH)]
            else:
                blocks = [DynamicHybridBlock(dim, kernel, expansion, HEADS) for _ in range(DEPTH)]
            setattr(self, f"stage{i + 1}", nn.ModuleList(down + blocks))
        self.head = nn.ModuleList([DynamicBatchNorm2d(dims[-1]), DynamicConv2d(dims[-1], num_classes, 1)])

    def forward(self, x: torch.Tensor, arch=None, *, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of the single path ``arch`` (option indices) or of the mixture ``weights``."""
        if (arch is None) == (weights is None):
            raise TypeError("give either an arch (single path) or weights (mixture), not both or neither")
        stages = self._path(arch) if weights is None else self._mixture(weights)
        # channels-last: on CPU, depthwise convs run 2-7x faster in it (attention reads it as tokens for free)
        x = x.contiguous(memory_format=torch.channels_last)
        conv, norm = self.stem
        width = stages[0][0]
        x = norm(conv(x, width), width)
        for i, (width, kernel, hidden) in enumerate(stages):
            layers = list(getattr(self, f"stage{i + 1}"))
            if i:  # downsampling: BatchNorm at the previous width, then the 2x2 stride-2 conv
                norm, conv, *layers = layers
                x = conv(norm(x, stages[i - 1][0]), width)
            for block in layers:
                x = block(x, width, kernel, hidden)
        norm, conv = self.head
        return F.adaptive_avg_pool2d(conv(norm(x, stages[-1][0]), self.num_classes), 1).flatten(1)

    def _path(self, arch) -> list[tuple[int, int, int]]:
        """Per stage ``(dim, kernel, dim * expansion)`` of one arch."""
        v = self.space.describe(self.space.check(arch)[0])
        stages = []
        for i in range(1, 5):
            kind = "conv" if i <= 2 else "attn"
            dim = int(v[f"stage{i}.dim"])
            stages.append((dim, int(v[f"{kind}.kernel"]), dim * int(v[f"{kind}.expansion"])))
        return stages

    def _mixture(self, weights: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per stage ``(dim mask, kernel mask, hidden mask)`` of one probability vector per decision."""
        if len(weights) != self.space.dim or any(w.shape != (len(o),) for w, o in zip(weights, self._options.values())):
            sizes = ", ".join(f"{d.name}: {len(d.options)}" for d in self.space.decisions)
            raise ValueError(f"mixture weights need one vector per decision with one entry per option ({sizes})")
        w = dict(zip(self.space.names, weights))
        o = self._options
        stages = []
        for i in range(1, 5):
            kind = "conv" if i <= 2 else "attn"
            dims, expansions = o[f"stage{i}.dim"], o[f"{kind}.expansion"]
            wd, we = w[f"stage{i}.dim"], w[f"{kind}.expansion"]
            hidden_widths = [d * e for d in dims for e in expansions]
            stages.append((
                prefix_mask(wd, dims, max(dims)),
                kernel_mask(w[f"{kind}.kernel"], o[f"{kind}.kernel"], max(o[f"{kind}.kernel"])),
                prefix_mask(torch.outer(wd, we).flatten(), hidden_widths, max(hidden_widths)),
            ))
        return stages

    def extract(self, arch) -> nn.Module:
        """``space.build(arch)`` with this supernet's slices of weights and BN running stats loaded."""
        model = self.space.build(arch, num_classes=self.num_classes)
        copy_slices(self, model)
        return model.to(self.head[1].weight.device)

    def recalibrate(self, arch, batches: Iterable) -> HyViTasSupernet:
        """Re-estimate BN running stats for ``arch`` on ``batches`` before evaluating it (``recalibrate_batchnorm``)."""
        return recalibrate_batchnorm(self, arch, batches)
