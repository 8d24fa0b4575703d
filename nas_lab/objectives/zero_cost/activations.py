"""NASWOT: how differently the untrained network's rectifiers switch on the images of a batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: units whose on/off state forms the binary code: ReLU, and GELU as its smooth counterpart
RECTIFIERS = (nn.ReLU, nn.GELU)


def naswot(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """log |K_H|, K_H[i, j] = number of rectified units on which images i and j agree (on or off).

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without
    Training", ICML 2021: a unit's code is 1 where its output is positive; K_H is
    N_A minus the Hamming distance between the codes of two images, over all N_A
    rectified units of the network. A network that maps the images to more
    distinct codes scores higher.

    Every ``nn.ReLU`` counts, and every ``nn.GELU`` too (HyViTas has no ReLU):
    GELU(x) = x * Phi(x) is positive exactly where x > 0, the half-line on which
    it passes its input as a ReLU does, so its code is the ReLU code of the same
    pre-activation. Softmax in attention is not a rectifier and does not count.
    Per layer the agreement count is 2 c c^T - s_i - s_j + n (c the codes, s
    their row sums, n the layer's units), one float32 product (exact below 2^24
    units per layer) accumulated in float64. A network without rectifiers (a ViTAS
    arch whose every block is an identity) has no units to tell images apart:
    its kernel is zero and its score -inf, the worst, as for any singular kernel.
    """
    kernel = torch.zeros(len(inputs), len(inputs), dtype=torch.float64, device=inputs.device)

    def count(module, args, out):
        codes = (out > 0).flatten(1).float()
        on = codes.sum(1)
        agree = 2 * codes @ codes.T - on[:, None] - on[None, :] + codes.shape[1]
        kernel.add_(agree.double())

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, RECTIFIERS)]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return torch.linalg.slogdet(kernel).logabsdet.item()
