"""Closed-form parameter counts of NB201 archs, numpy only.

The formula mirrors ``model.build_model`` layer by layer, so it equals the built
model's ``sum(p.numel())`` exactly: conv weights (no conv has a bias), the
BatchNorms' affine weight and bias (running statistics are buffers, not
parameters) and the classifier's weight and bias. Only the cell's convs
depend on the arch; ``none``, ``skip_connect`` and ``avg_pool_3x3`` have no
parameters.

This module is on the tabular hot path: it must not import torch.
"""

from __future__ import annotations

import itertools

import numpy as np

from nas_lab.core.space import Space

#: the fixed network around the cell, shared by ``model.build_model``, ``blocks`` and these formulas:
#: the width of the three stages, and the cells in each
CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
#: kernel size of each parametric cell op
_KERNELS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _conv_bn(c_in, c_out, kernel: int) -> int:
    """A bias-free k x k conv followed by an affine BatchNorm."""
    return kernel * kernel * c_in * c_out + 2 * c_out


def param_counts(space: Space, archs, num_classes: int = 10) -> np.ndarray:
    """Trainable parameters of each arch, ``int64 (n,)``."""
    archs = space.check(archs)
    widths = CHANNELS
    # per option: parameters of that op on one edge of every cell of the network
    per_edge = np.zeros(len(space.decisions[0].options), dtype=np.int64)
    for i, op in enumerate(space.decisions[0].options):
        if op in _KERNELS:
            per_edge[i] = CELLS_PER_STAGE * sum(_conv_bn(c, c, _KERNELS[op]) for c in widths)
    fixed = _conv_bn(3, widths[0], 3)  # stem
    for c_in, c_out in itertools.pairwise(widths):  # residual reductions: two conv-BNs and the 1x1 shortcut
        fixed += _conv_bn(c_in, c_out, 3) + _conv_bn(c_out, c_out, 3) + c_in * c_out
    fixed += 2 * widths[-1] + (widths[-1] + 1) * num_classes  # last BatchNorm, linear classifier
    return fixed + per_edge[archs].sum(axis=1)
