"""Synflow and LogSynflow: data-free saliencies of the network made linear-positive (|weights|, all-ones input)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas_lab.objectives.zero_cost.networks import NORMS, replaced, weights


def _synaptic_flow(model: nn.Module, inputs: Tensor) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    """Conv/linear weights of the prepared copy and dR/dw, R = sum of its outputs on an all-ones image.

    The copy is in float64 (R overflows float32 on NB201's larger cells) with
    every parameter replaced by its absolute value and, as in Abdelfattah et
    al.'s Synflow (and FreeREA's), every normalisation layer removed (BatchNorm
    of an all-ones input would erase the signal). Activations are kept: with
    non-negative weights and input every pre-activation is positive, where
    ReLU is the identity and GELU close to it. The NB201 ``none`` op outputs
    zeros, so weights it cuts from the output get zero gradient.
    """
    net = replaced(model, {NORMS: nn.Identity}).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    ws = weights(net)
    grads = torch.autograd.grad(net(ones).sum(), ws, allow_unused=True, materialize_grads=True)
    return [w.detach() for w in ws], grads


def synflow(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over conv/linear weights of |w * dR/dw| (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020).

    Used as a zero-cost proxy by Abdelfattah et al. (ICLR 2021); ``inputs``
    only gives the image shape.
    """
    ws, grads = _synaptic_flow(model, inputs)
    return float(sum((w * g).abs().sum() for w, g in zip(ws, grads)))


def logsynflow(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over conv/linear weights of |w * log(|dR/dw| + 1)|: Synflow with log-scaled gradients.

    Cavagnero, Robbiano, Caputo & Averta, "FreeREA: Training-Free
    Evolution-based Architecture Search", WACV 2023 (cited as LogSynflow in
    seed 002): the logarithm scales down the gradients, which explode with
    depth. Normalisation is removed as in Synflow. FreeREA writes log(dR/dw +
    1) for convolutional nets, where every gradient is non-negative; a softmax
    or the division of a linear attention makes some negative, and below -1
    the logarithm is undefined (every Pool-ViT arch scored NaN), so ours takes
    the gradient's magnitude (version 2; the same value where no gradient is
    negative, as on NB201).
    """
    ws, grads = _synaptic_flow(model, inputs)
    return float(sum((w * g.abs().log1p()).abs().sum() for w, g in zip(ws, grads)))
