"""Closed-form parameter counts and MACs of AutoViT models, numpy only (no torch: the search path imports it).

The formulas follow ``model.AutoViT`` layer by layer, on a batch of archs given by
``AutoViTSpace.plan`` (widths, depths, per-layer heads and MLP widths, 0 where a
stage or layer is absent):

- a conv (no bias) + BatchNorm counts ``k^2 cin cout / groups + 2 cout`` parameters
  and ``k^2 cin cout / groups`` MACs per output pixel;
- a linear layer with bias counts ``in out + out`` parameters and ``in out`` MACs
  per token; LayerNorm ``2 d`` parameters;
- attention counts ``q k^T`` and ``A v``: ``2 N_p a`` MACs per token, where a
  token attends the ``N_p`` tokens at the same position of the other patches and
  ``a = heads x head_dim``;
- BatchNorm, LayerNorm, SiLU, softmax, pooling, residual adds and concatenation
  count no MACs.

**Convention**: MACs of one forward pass of one image; ``flops = 2 x macs`` is
exactly the total of ``torch.utils.flop_counter.FlopCounterMode``, and ``params``
equals ``sum(p.numel())`` of the built model (``tests/test_autovit_model.py``).
"""

from __future__ import annotations

import math

import numpy as np

#: stem, MBConv depthwise and MobileViT local / fusion convs are 3 x 3
KERNEL = 3
IN_CHANNELS = 3
POOL_EXPANSION = 6


def out_side(side, stride: int):
    """Side of a 3 x 3 conv's output (padding 1) at ``stride``."""
    return (np.asarray(side) - 1) // stride + 1


def mbconv(cin, cout, expansion: int, stride: int, side):
    """``(params, macs)`` of a MobileNetV2 block ``cin -> cout`` on a ``side`` x ``side`` input."""
    hidden = cin * expansion
    out = out_side(side, stride) ** 2
    expand = expansion > 1
    params = expand * (cin * hidden + 2 * hidden) + KERNEL**2 * hidden + 2 * hidden + hidden * cout + 2 * cout
    macs = expand * cin * hidden * np.asarray(side) ** 2 + (KERNEL**2 * hidden + hidden * cout) * out
    return params, macs


def mobilevit(width, heads, hidden, head_dim: int, patch: int, side):
    """``(params, macs)`` of a MobileViT block of ``width`` channels (= transformer dim) on a ``side`` x ``side``
    map; ``heads``, ``hidden`` ``(n, layers)`` with 0 for absent layers."""
    c = d = width
    pixels = np.asarray(side) ** 2
    convs = KERNEL**2 * c * c + c * d + d * c + KERNEL**2 * 2 * c * c  # local, embed, project, fuse
    params = convs + 2 * c + 2 * c + 2 * c + 2 * d  # three BatchNorms, the final LayerNorm
    a = heads * head_dim
    on = (heads > 0).astype(np.int64)
    per_layer = d[:, None] * (4 * a + 2 * hidden + 6 * on) + 3 * a + hidden  # two LayerNorms, qkv, proj, MLP
    params = params + per_layer.sum(axis=1)
    patches = pixels // patch**2
    layers = (pixels[..., None] * (4 * a * d[:, None] + 2 * d[:, None] * hidden + 2 * patches[..., None] * a))
    return params, convs * pixels + layers.sum(axis=1)


def sizes(plan: dict[str, np.ndarray], skeleton, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``(params, macs)`` ``int64 (n,)`` of a batch of archs on ``side`` x ``side`` images."""
    s = skeleton.strides
    prev = plan["stem"]
    n = len(prev)
    h = np.full(n, out_side(side, s[0]), dtype=np.int64)
    params = IN_CHANNELS * KERNEL**2 * prev + 2 * prev
    macs = IN_CHANNELS * KERNEL**2 * prev * h**2
    for i in range(3):  # MobileNetV2 stages: the first block strides
        width, depth = plan["mb_width"][:, i], plan["mb_depth"][:, i]
        for k in range(int(depth.max())):
            on = depth > k
            p, m = mbconv(prev if k == 0 else width, width, skeleton.mb_expansion, s[1 + i] if k == 0 else 1, h)
            params, macs = params + on * p, macs + on * m
            if k == 0:
                h = out_side(h, s[1 + i])
        prev = width
    for j in range(plan["t_width"].shape[1]):  # transformer stages: an MBConv transition, then a MobileViT block
        width = plan["t_width"][:, j]
        on = width > 0
        p, m = mbconv(prev, width, skeleton.mb_expansion, s[4 + j], h)
        h = np.where(on, out_side(h, s[4 + j]), h)
        q, n_ = mobilevit(width, plan["heads"][:, j], plan["hidden"][:, j], skeleton.head_dim, skeleton.patch, h)
        params, macs = params + on * (p + q), macs + on * (m + n_)
        prev = np.where(on, width, prev)
    expanded, pool, classes = POOL_EXPANSION * prev, plan["pool"], skeleton.num_classes
    params = params + prev * expanded + 2 * expanded + expanded * pool + pool * classes + classes
    macs = macs + prev * expanded * h**2 + expanded * pool + pool * classes
    return params.astype(np.int64), macs.astype(np.int64)


def params(plan: dict[str, np.ndarray], skeleton) -> np.ndarray:
    """Trainable parameters of each arch, ``int64 (n,)`` (they do not depend on the input side)."""
    return sizes(plan, skeleton, math.prod(skeleton.strides) * skeleton.patch)[0]


def macs(plan: dict[str, np.ndarray], skeleton, side: int) -> np.ndarray:
    """MACs of one forward pass of one ``side`` x ``side`` image per arch, ``int64 (n,)``."""
    return sizes(plan, skeleton, side)[1]
