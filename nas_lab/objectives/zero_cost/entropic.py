"""Entropic Score (seed 002): entropy of the normalised activations of a non-negative copy of the network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nas_lab.objectives.zero_cost.networks import ACTIVATIONS, NORMS, replaced

#: stability constant inside the logarithm
EPS = 1e-8


def entropic(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over activation layers of the mean element-wise entropy -a log(a + eps) of their normalised outputs.

    Entropic Score (seed 002, section 3.2), computed on a prepared copy: every
    normalisation layer removed (BatchNorm, including the attention pre-norms
    of HyViTas), every parameter replaced by its absolute value, every
    activation module (GELU, SiLU, ...) replaced by ReLU; attention's softmax
    is not an activation and stays. ``inputs`` is the random batch uniform on
    [-0.5, 0.5] that the paper feeds. Each ReLU's output, of shape (B, C, ...),
    is divided map by map (one sample, one channel) by that map's maximum, so
    its values lie in [0, 1] (an all-zero map stays zero and adds nothing);
    the layer's score is the mean of -a log(a + eps) over all its elements.
    The copy runs in float64: without normalisation the activations grow with
    depth. The paper averages three network and input draws; ``evaluate_proxy``
    does that (``Proxy.repeats``). Only activation *modules* are seen: a network
    without any is refused (``ValueError``) rather than scored 0.
    """
    net = replaced(model, {NORMS: nn.Identity, ACTIVATIONS: nn.ReLU}).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    layers = []

    def entropy(module, args, out):
        maps = out.flatten(2) if out.dim() > 2 else out[..., None]
        a = maps / maps.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(maps.dtype).tiny)
        layers.append(-(a * torch.log(a + EPS)).mean())

    hooked = [m.register_forward_hook(entropy) for m in net.modules() if isinstance(m, nn.ReLU)]  # the copy only
    if not hooked:
        raise ValueError("entropic needs activation modules (nn.ReLU, nn.GELU, ...), and this network has none; "
                         "a model that calls torch.nn.functional activations must use modules instead")
    with torch.no_grad():
        net(inputs.double())
    return float(sum(layers))
