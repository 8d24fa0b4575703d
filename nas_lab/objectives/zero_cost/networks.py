"""What the proxies select in, or change about, a network: weights, normalisation, activations."""

from __future__ import annotations

import copy

from torch import Tensor, nn

#: layers whose weights carry the per-weight saliencies of SNIP, GradNorm and Synflow
WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)
#: normalisation layers, suppressed by the data-free proxies (Synflow, LogSynflow, Entropic Score)
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
#: element-wise activation functions
ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus,
)


def weights(model: nn.Module) -> list[Tensor]:
    """The weight tensors of every convolution and linear layer (biases and norms excluded)."""
    return [m.weight for m in model.modules() if isinstance(m, WEIGHTED)]


def replaced(model: nn.Module, swaps: dict[tuple[type, ...], type[nn.Module]]) -> nn.Module:
    """A deep copy of ``model`` in which every module of a key's types becomes a fresh instance of its value.

    Only modules can be swapped: an activation written as a function call in a
    ``forward`` stays as it is (none of our spaces does that).
    """
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for name, child in parent.named_children():
            for types, new in swaps.items():
                if isinstance(child, types):
                    setattr(parent, name, new())
                    break
    return out
