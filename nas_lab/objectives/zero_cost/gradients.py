"""Gradient-based proxies on a labelled batch: SNIP and GradNorm (loss gradients), Jacobian covariance.

As in the papers' code, the network is in training mode, so BatchNorm uses the
batch's statistics (at initialisation the running statistics are 0 and 1, and
evaluation mode would reduce every BatchNorm to the identity). Gradients are
taken with ``torch.autograd.grad``: the model's ``.grad`` fields stay untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas_lab.objectives.zero_cost.networks import weights

#: added to the eigenvalues of the Jacobian correlation matrix, as in the paper's code
JACOB_K = 1e-5


def _loss_gradients(model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    """Conv/linear weights and the gradients of the mean cross-entropy loss on the batch with respect to them."""
    ws = weights(model)
    loss = F.cross_entropy(model(inputs), targets)
    grads = torch.autograd.grad(loss, ws, allow_unused=True, materialize_grads=True)
    return [w.detach() for w in ws], grads


def snip(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over conv/linear weights of |dL/dw * w|.

    SNIP's connection sensitivity (Lee, Ajanthan & Torr, "SNIP: Single-shot
    Network Pruning based on Connection Sensitivity", ICLR 2019) summed over the
    network as a zero-cost proxy by Abdelfattah, Mehrotra, Dudziak & Lane,
    "Zero-Cost Proxies for Lightweight NAS", ICLR 2021. L is the mean
    cross-entropy of the batch.
    """
    ws, grads = _loss_gradients(model, inputs, targets)
    return float(sum((w * g).abs().sum() for w, g in zip(ws, grads)))


def grad_norm(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over conv/linear layers of the Euclidean norm of dL/dW (Abdelfattah et al., ICLR 2021)."""
    _, grads = _loss_gradients(model, inputs, targets)
    return float(sum(g.norm() for g in grads))


def jacob_cov(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """-sum_i [log(l_i + k) + 1 / (l_i + k)] over the eigenvalues l_i of the correlation matrix of input Jacobians.

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without
    Training", arXiv:2006.04647 v1 (2020), as used by Abdelfattah et al. (ICLR
    2021): row i is the gradient of the sum of the outputs with respect to image
    i, flattened; k = 1e-5. Jacobians that are less correlated across images
    (eigenvalues nearer 1) score higher. NaN when some image's Jacobian is
    constant (zero variance, e.g. a cell whose ``none`` edges cut the input
    from the output), where the correlation is undefined; objectives rank NaN
    below every number.
    """
    x = inputs.detach().clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(model(x).sum(), x, allow_unused=True, materialize_grads=True)
    corr = torch.corrcoef(jac.flatten(1).double())
    if not torch.isfinite(corr).all():
        return float("nan")
    eig = torch.linalg.eigvalsh(corr) + JACOB_K
    return -float((eig.log() + 1 / eig).sum())
