"""The HyViTas search space: 8 decisions x 3 options = 6,561 hybrid CNN-ViT archs.

Seed 000 (HyViTas-Bench, section III-A) fixes the structure: a 4x4 stride-4 stem,
two convolutional stages of 3 ConvNeXt blocks, two transformer stages of 3
[8-head attention + ConvNeXt] blocks, a fully convolutional head, 500 classes at
160x160. Kernel and expansion are shared by the two convolutional stages and by
the two transformer stages; each stage searches its own output dimension.

The option values come from the paper's Table 2, which our copy of the text
lacks; the values below are *our reading* of it, chosen so that the largest
model has about 4.04 M parameters and the smallest about 0.50 M, as the paper
reports. With the layer details of ``model.py`` (also our reading) the built
models have 4,036,916 (largest) and 498,884 (smallest) parameters with 500
classes, and 61.1 M to 766.8 M FLOPs (2 x MACs) per 160x160 image.
``cost.py`` gives both figures in closed form without torch, and ``blocks.py`` the
models as sequences of keyed blocks for a latency look-up table (the block
contract of ``nas_lab.objectives.latency.contract``).
"""

from __future__ import annotations

import numpy as np

from nas_lab.core.space import Decision, Space
from nas_lab.spaces.hyvitas import blocks, cost


class HyViTasSpace(Space):
    """HyViTas-Bench's hybrid CNN-ViT space (3^8 = 6,561 archs)."""

    name = "hyvitas"
    default_table = "hyvitas-sim"
    decisions = (
        Decision("conv.kernel", (3, 5, 7), "topology"),
        Decision("conv.expansion", (1, 2, 4), "size"),
        Decision("attn.kernel", (3, 5, 7), "topology"),
        Decision("attn.expansion", (1, 2, 4), "size"),
        Decision("stage1.dim", (16, 32, 48), "size"),
        Decision("stage2.dim", (32, 64, 96), "size"),
        Decision("stage3.dim", (64, 128, 160), "size"),
        Decision("stage4.dim", (128, 192, 256), "size"),
    )
    resolution = 160  # input side at which the benchmark trains and ``flops`` counts
    num_classes = 500  # the benchmark's ImageNet subset
    #: the benchmark's augmentation (crop, flip, RandAugment; ``oneshot.augment``); its models train with AdamW,
    #: so retraining one does (the supernet keeps SGD, with which the one-shot baselines were set up)
    supernet_recipe = {"augment": "hyvitas", "retrain": {"optimizer": "adamw"}}
    min_side = 32  # the 4 px stem, then three 2x2 stride-2 downsamplings: the last stage sees 1 x 1

    def build(self, arch, num_classes: int = 500, **task):
        """The ``torch.nn.Module`` of one arch (``(B, 3, H, W)`` -> ``(B, num_classes)``).

        The model is fully convolutional, so other task keys (such as the
        input resolution) do not change it.
        """
        from nas_lab.spaces.hyvitas.model import build_model

        return build_model(self.describe(self.check(arch)[0]), num_classes)

    def supernet(self, num_classes: int = 500, **task):
        """The weight-sharing supernet whose slices are the ``build`` models (single path or DARTS mixture).

        Fully convolutional, so other task keys (such as the input resolution) do not change it.
        """
        from nas_lab.spaces.hyvitas.supernet import HyViTasSupernet

        return HyViTasSupernet(self, num_classes)

    def params(self, archs, num_classes: int = 500) -> np.ndarray:
        """Parameter count of each arch of a batch, ``int64 (n,)`` (closed form, no torch)."""
        return cost.param_counts(self, archs, num_classes)

    def flops(self, archs, num_classes: int = 500) -> np.ndarray:
        """FLOPs (2 x MACs) of one 160x160 forward pass per arch, ``int64 (n,)`` (closed form)."""
        return cost.flops(self, archs, num_classes)

    # -- the block contract of a latency look-up table (objectives/latency/contract.py) --------------
    def latency_blocks(self, side: int) -> list[tuple[str, tuple[int, ...]]]:
        """The 141 distinct blocks (stem, downsamplings, ConvNeXt and hybrid blocks, head) with their input shapes."""
        return blocks.blocks(self, side)

    def latency_slots(self, archs) -> np.ndarray:
        """``(n, 17)`` positions in ``latency_blocks`` of each arch's blocks, in the order the model runs them."""
        return blocks.slots(self, archs)

    def latency_module(self, name: str):
        """The torch module of one block of ``latency_blocks``, as ``build`` builds it."""
        from nas_lab.spaces.hyvitas.model import block

        return block(next(spec for n, spec, _, _ in blocks.catalogue(self) if n == name))
