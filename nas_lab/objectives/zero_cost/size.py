"""Size baselines: parameter count and FLOPs, the trivial proxies every zero-cost study compares against."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def params(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Number of trainable parameters."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flops(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """FLOPs (2 x multiply-accumulates) of one forward pass of one image of the batch, by torch's FLOP counter.

    The counter sees matrix products and convolutions only (norms, activations
    and pooling are not counted), as in the spaces' closed-form figures.
    """
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(inputs[:1])
    return float(counter.get_total_flops())
