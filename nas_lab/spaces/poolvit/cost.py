"""Closed-form parameter counts and MACs of the poolvit space's blocks, numpy only, vectorised over a batch.

Every function mirrors one block of ``model.py`` layer by layer and returns
``(params, macs)`` (and the output side where the block downsamples) as int64
arrays broadcast over its arguments; ``space.py`` adds them up per arch.

Counting conventions (those of ``torch.utils.flop_counter.FlopCounterMode``,
which counts 2 FLOPs per MAC, so ``macs = flops / 2`` exactly):

- every conv carries a bias (Keras' default, which MLPerf Tiny's ResNet-8 keeps)
  and every BatchNorm two affine parameters; running statistics are buffers,
  not parameters;
- MACs count convolutions (``out_pixels * out_channels * in_channels / groups *
  k^2``), the classifier and the attention's three matmuls; biases, norms,
  activations, pooling, residual adds, the key sum and the division count zero.

Sides are ``ceil(side / stride)``: every conv and pooling pads ``k // 2`` with odd ``k``.
"""

from __future__ import annotations

import numpy as np

#: codes of the CNN block kinds (0: identity position)
IDENTITY, RESIDUAL, BOTTLENECK, MBCONV = 0, 1, 2, 3
#: codes of the ViT-stage pattern kinds (0: identity position)
MHSA, POOLVIT = 1, 2
IN_CHANNELS = 3
#: option names of the CNN block kinds (codes 1..3) and of the pooling kinds (codes 0..2)
BLOCKS = ("residual", "bottleneck", "mbconv")
POOLS = ("max", "avg", "combined")
#: option values of the space's decisions (``space.py``); the supernet is as wide as their largest
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
GROUPS = (1, 2, 4)
RATIOS = (1, 2, 4)
STEM_CHANNELS = (8, 16, 24, 32)
CNN_CHANNELS = (8, 16, 24, 32, 48)
POOL_KERNELS = (3, 5)
VIT_CHANNELS = (16, 24, 32, 48, 64)
HEADS = (1, 2, 4)
HEAD_DIMS = (8, 16)


def out_side(side, stride):
    """Side after a conv or pooling of this stride (padding ``k // 2``, odd ``k``)."""
    return -(-np.asarray(side, dtype=np.int64) // np.asarray(stride, dtype=np.int64))


def conv(cin, cout, kernel=1, groups=1):
    """``(params, macs per output pixel)`` of a ``Conv2d`` with bias."""
    weights = np.asarray(cout, dtype=np.int64) * (np.asarray(cin) // np.asarray(groups)) * np.asarray(kernel) ** 2
    return weights + cout, weights


def conv_bn(cin, cout, kernel=1, groups=1):
    """``(params, macs per output pixel)`` of a conv followed by a BatchNorm (``model.ConvBN``)."""
    params, macs = conv(cin, cout, kernel, groups)
    return params + 2 * np.asarray(cout, dtype=np.int64), macs


def cnn_block(kind, cin, channels, kernel, stride, groups, ratio, side):
    """``(params, macs, side after)`` of one CNN block of each ``kind`` code (identity: nothing, same side).

    Residual: two k x k convs; bottleneck: 1x1 to ``channels / ratio``, grouped
    k x k, 1x1 back; both with a 1x1 shortcut conv where the shape changes.
    Inverted bottleneck: 1x1 to ``channels * ratio``, depthwise k x k, 1x1 to
    ``channels``; identity skip only where the shape is kept (MobileNetV2).
    """
    kind, cin, c = (np.asarray(a, dtype=np.int64) for a in (kind, cin, channels))
    side_in = np.asarray(side, dtype=np.int64)
    side_out = out_side(side_in, stride)
    pin, pout = side_in**2, side_out**2
    project = (np.asarray(stride) != 1) | (cin != c)
    short_p, short_m = conv(cin, c)
    short_p, short_m = project * short_p, project * short_m

    p1, m1 = conv_bn(cin, c, kernel, groups)
    p2, m2 = conv_bn(c, c, kernel, groups)
    residual = (p1 + p2 + short_p, pout * (m1 + m2 + short_m))

    mid = c // np.asarray(ratio)
    pa, ma = conv_bn(cin, mid)
    pb, mb = conv_bn(mid, mid, kernel, groups)
    pc, mc = conv_bn(mid, c)
    bottleneck = (pa + pb + pc + short_p, pin * ma + pout * (mb + mc + short_m))

    hidden = c * np.asarray(ratio)
    pa, ma = conv_bn(cin, hidden)
    pd, md = conv_bn(hidden, hidden, kernel, hidden)
    pc, mc = conv_bn(hidden, c)
    inverted = (pa + pd + pc, pin * ma + pout * (md + mc))

    cases = [kind == RESIDUAL, kind == BOTTLENECK, kind == MBCONV]
    params = np.select(cases, [residual[0], bottleneck[0], inverted[0]], 0)
    macs = np.select(cases, [residual[1], bottleneck[1], inverted[1]], 0)
    return params, macs, np.where(kind == IDENTITY, side_in, side_out)


def attention_block(cin, cout, heads, head_dim, side):
    """``(params, macs)`` of ``model.AttentionBlock``: ReLU linear attention on ``cin`` channels with a residual,
    then a 1x1 conv (BN, ReLU) to ``cout`` with an identity skip, or a 1x1 conv skip where widths differ.

    Per head of dimension ``d`` over ``N`` tokens: ``K^T V`` and ``Q (K^T V)`` cost
    ``N d^2`` MACs each, ``Q (sum K)`` ``N d``.
    """
    cin, cout, h, d = (np.asarray(a, dtype=np.int64) for a in (cin, cout, heads, head_dim))
    tokens = np.asarray(side, dtype=np.int64) ** 2
    width = h * d
    pq, mq = conv(cin, width)
    pp, mp = conv_bn(width, cin)
    pf, mf = conv_bn(cin, cout)
    skip = cin != cout
    ps, ms = conv(cin, cout)
    params = 3 * pq + pp + pf + skip * ps
    macs = tokens * (3 * mq + mp + mf + skip * ms) + h * tokens * (2 * d * d + d)
    return params, macs


def vit_pattern(kind, cin, channels, block, kernel, stride, groups, ratio, heads, head_dim, side):
    """``(params, macs, side after)`` of one ViT-stage position of each ``kind`` code: an MHSA pattern (a CNN
    block to ``channels``, then attention on them), a Pool-ViT pattern (stride-2 pooling, no parameters, then
    attention that widens to ``channels``), or identity."""
    kind = np.asarray(kind, dtype=np.int64)
    cnn_p, cnn_m, cnn_side = cnn_block(block, cin, channels, kernel, stride, groups, ratio, side)
    mhsa_p, mhsa_m = attention_block(channels, channels, heads, head_dim, cnn_side)
    pool_side = out_side(side, 2)
    pool_p, pool_m = attention_block(cin, channels, heads, head_dim, pool_side)
    cases = [kind == MHSA, kind == POOLVIT]
    params = np.select(cases, [cnn_p + mhsa_p, pool_p], 0)
    macs = np.select(cases, [cnn_m + mhsa_m, pool_m], 0)
    return params, macs, np.select(cases, [cnn_side, pool_side], np.asarray(side, dtype=np.int64))


def stem(channels, kernel):
    """``(params, macs per output pixel)`` of the stem conv (with its BatchNorm) on RGB images."""
    return conv_bn(IN_CHANNELS, channels, kernel)


def head(channels, num_classes: int):
    """``(params, macs)`` of the classifier: global average pooling, then ``Linear(channels, num_classes)``."""
    c = np.asarray(channels, dtype=np.int64)
    return c * num_classes + num_classes, c * num_classes
