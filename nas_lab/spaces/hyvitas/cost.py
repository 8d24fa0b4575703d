"""Closed-form parameter counts and FLOPs of HyViTas archs, numpy only.

The formulas mirror ``model.build_model`` layer by layer, so they equal the
built model's ``sum(p.numel())`` and the total of ``torch.utils.flop_counter.
FlopCounterMode`` for one forward pass of a single image exactly. FLOPs follow
that counter's convention: 2 per multiply-accumulate of convolutions, linears
and matmuls (attention's ``QK^T`` and ``AV`` included); biases, norms,
activations, softmax, residual adds and pooling count zero.

This module is on the tabular hot path: it must not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nas_lab.core.space import Space, option_values

#: the fixed skeleton of every model, shared by ``model``, ``supernet``, ``blocks`` and these formulas
DEPTH = 3  # blocks per stage
HEADS = 8  # attention heads in stages 3 and 4
PATCH = 4  # stem: non-overlapping PATCH x PATCH conv


def _stages(space: Space, archs) -> Iterator[tuple]:
    """Per stage: ``(dim, prev_dim, kernel, expansion, hybrid, pixels)``.

    Dims, kernel and expansion are ``int64 (n,)`` arrays; ``prev_dim`` is the
    input dim of the stage's downsampling (``None`` for stage 1, which the stem
    feeds instead); ``hybrid`` says whether the blocks carry attention;
    ``pixels`` is the stage's ``H * W`` at the space's input resolution.
    """
    values = {k: v.astype(np.int64) for k, v in option_values(space, space.check(archs), space.names).items()}
    side = space.resolution // PATCH
    prev = None
    for i in range(4):
        dim = values[f"stage{i + 1}.dim"]
        kind = "conv" if i < 2 else "attn"
        yield dim, prev, values[f"{kind}.kernel"], values[f"{kind}.expansion"], i >= 2, (side >> i) ** 2
        prev = dim


def param_counts(space: Space, archs, num_classes: int = 500) -> np.ndarray:
    """Trainable parameters (weights, biases, BatchNorm affine) of each arch, ``int64 (n,)``."""
    total = 0
    for dim, prev, kernel, expansion, hybrid, _ in _stages(space, archs):
        if prev is None:  # the stem: 4x4 patchify conv with bias, BatchNorm
            total += dim * (3 * PATCH**2 + 3)
        else:  # BatchNorm(prev) + 2x2 stride-2 conv with bias
            total += 2 * prev + 4 * prev * dim + dim
        # ConvNeXt: depthwise k x k + bias, BatchNorm, two 1x1 convs with biases
        block = dim * (kernel**2 + 4 + expansion) + 2 * expansion * dim**2
        if hybrid:  # BatchNorm pre-norm, qkv and output linears with biases
            block += 4 * dim**2 + 6 * dim
        total += DEPTH * block
    # head: BatchNorm, 1x1 conv to the classes with bias
    return total + 2 * dim + (dim + 1) * num_classes


def flops(space: Space, archs, num_classes: int = 500) -> np.ndarray:
    """FLOPs (2 x MACs, torch's FlopCounterMode convention) of one forward pass, ``int64 (n,)``."""
    total = 0
    for dim, prev, kernel, expansion, hybrid, pixels in _stages(space, archs):
        if prev is None:
            total += 2 * pixels * dim * 3 * PATCH**2
        else:
            total += 2 * pixels * 4 * prev * dim
        block = 2 * pixels * dim * (kernel**2 + 2 * expansion * dim)
        if hybrid:  # qkv + output projection, then QK^T and AV over pixels tokens
            block += 8 * pixels * dim**2 + 4 * pixels**2 * dim
        total += DEPTH * block
    # the head's 1x1 conv runs on the last feature map, before pooling
    return total + 2 * pixels * dim * num_classes
