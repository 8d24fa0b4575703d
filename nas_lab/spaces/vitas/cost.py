"""Closed-form parameter counts and MACs of the plain vision transformers of the ViTAS space, numpy only.

A model is given by its *shape*: patch size, embedding width ``D``, and per
transformer block its head count, its q-k-v width ``Q`` (q, k and v are each
``Q / 3`` wide) and its MLP hidden width ``M``; identity positions are simply
absent. The formulas mirror ``model.ViT`` layer by layer:

- patch embedding ``Conv2d(3, D, p, stride=p)`` with bias on ``N = (S / p)^2``
  patches of an ``S x S`` image; a class token; a position embedding of
  ``T = N + 1`` rows (class token included);
- each block (pre-norm): ``LayerNorm(D)``, the fused q-k-v ``Linear(D, Q)`` with
  bias, attention ``softmax(q k^T / sqrt(Q / 3h)) v`` per head, the output
  ``Linear(Q / 3, D)`` with bias, ``LayerNorm(D)``, ``Linear(D, M)`` with bias,
  GELU, ``Linear(M, D)`` with bias;
- a final ``LayerNorm(D)`` and the classifier ``Linear(D, classes)`` on the class token.

**Convention** (what ViT papers print as "FLOPs", and the paper's Tables 5, 7
and 10): *MACs* (multiply-accumulates) of one forward pass of one image at the
space's input side (224 in the paper's settings, so ``T = 197`` for patch 16),
counting the patch-embedding conv, every linear layer (the classifier only on
the class token) and the two attention matmuls ``q k^T`` and ``A v`` (``2 T^2 Q / 3``
per block, whatever the head count); biases, norms, GELU, softmax, the scaling
of q, the position-embedding add and residual adds count zero. ``flops = 2 x macs``
is exactly the total of ``torch.utils.flop_counter.FlopCounterMode`` (which counts
2 per MAC), and ``params`` equals ``sum(p.numel())`` of the built model.

This module is imported on the search path of every run on the space: it must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_lab.core.errors import UserError

IN_CHANNELS = 3


@dataclass(frozen=True)
class ViTShape:
    """Widths of one plain ViT: ``blocks`` holds ``(heads, qkv, mlp)`` per transformer block, in order
    (``qkv`` is the width of q, k and v together). Any widths are allowed (DeiT's are not on the ViTAS grid),
    as long as the patch divides the image and every head gets a whole number of channels."""

    patch: int
    embed: int
    blocks: tuple[tuple[int, int, int], ...]
    image_size: int = 224
    num_classes: int = 1000

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(tuple(int(v) for v in b) for b in self.blocks))
        for name in ("patch", "embed", "image_size", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"a ViT's {name} must be a positive whole number, got {getattr(self, name)}")
        if self.image_size % self.patch:
            raise UserError(f"patch size {self.patch} does not divide the input side {self.image_size}; "
                            f"valid patch sizes divide {self.image_size}")
        for i, block in enumerate(self.blocks):
            if len(block) != 3 or min(block) < 1:
                raise UserError(f"block {i + 1} must be (heads, qkv, mlp) positive whole numbers, got {block}")
            heads, qkv, _ = block
            if qkv % (3 * heads):
                raise UserError(f"block {i + 1}: the q-k-v width {qkv} must split into q, k, v of {heads} equal heads "
                                f"each (a multiple of {3 * heads})")

    @property
    def grid(self) -> int:
        """Patches along one side."""
        return self.image_size // self.patch

    @property
    def tokens(self) -> int:
        """Tokens a block sees: the patches and the class token."""
        return self.grid**2 + 1

    def arrays(self) -> dict[str, np.ndarray]:
        """This shape as a batch of one, in the form ``params``/``macs`` take."""
        blocks = np.array(self.blocks, dtype=np.int64).reshape(1, -1, 3)
        return {"patch": np.array([self.patch]), "embed": np.array([self.embed]), "qkv": blocks[..., 1],
                "mlp": blocks[..., 2]}


def params(patch, embed, qkv, mlp, num_classes: int, image_size: int) -> np.ndarray:
    """Trainable parameters of each model of a batch, ``int64 (n,)``.

    ``patch``, ``embed``: ``(n,)``; ``qkv``, ``mlp``: ``(n, positions)`` widths with 0 at identity positions.
    """
    p, d = np.asarray(patch, dtype=np.int64), np.asarray(embed, dtype=np.int64)
    qkv, mlp = np.asarray(qkv, dtype=np.int64), np.asarray(mlp, dtype=np.int64)
    on = (qkv > 0).astype(np.int64)
    w = qkv // 3  # width of each of q, k, v = input width of the output projection
    tokens = (image_size // p) ** 2 + 1
    embedding = IN_CHANNELS * p**2 * d + d + d + tokens * d  # conv weight + bias, class token, position embedding
    # two LayerNorms (4D), fused qkv (3W D + 3W), output projection (W D + D), MLP (2 D M + M + D)
    blocks = (on * (d[:, None] * (6 + 4 * w + 2 * mlp) + 3 * w + mlp)).sum(axis=1)
    head = 2 * d + (d + 1) * num_classes  # final LayerNorm, classifier
    return embedding + blocks + head


def macs(patch, embed, qkv, mlp, num_classes: int, image_size: int) -> np.ndarray:
    """Multiply-accumulates of one forward pass of one image per model (see the module's convention), ``int64 (n,)``."""
    p, d = np.asarray(patch, dtype=np.int64), np.asarray(embed, dtype=np.int64)
    qkv, mlp = np.asarray(qkv, dtype=np.int64), np.asarray(mlp, dtype=np.int64)
    w = qkv // 3
    patches = (image_size // p) ** 2
    tokens = patches + 1
    embedding = patches * IN_CHANNELS * p**2 * d
    # qkv (3W D) + projection (W D) + MLP (2 D M) per token, then q k^T and A v (T^2 W each)
    blocks = (tokens[:, None] * d[:, None] * (4 * w + 2 * mlp) + 2 * tokens[:, None] ** 2 * w).sum(axis=1)
    return embedding + blocks + d * num_classes


def shape_params(shape: ViTShape) -> int:
    """``params`` of one explicit shape."""
    return int(params(**shape.arrays(), num_classes=shape.num_classes, image_size=shape.image_size)[0])


def shape_macs(shape: ViTShape) -> int:
    """``macs`` of one explicit shape."""
    return int(macs(**shape.arrays(), num_classes=shape.num_classes, image_size=shape.image_size)[0])
