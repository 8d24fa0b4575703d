"""The zero-cost proxies as registered records, and ``evaluate_proxy``: one proxy, one arch, one seed.

Each ``Proxy`` is registered by name under the ``nas_lab.proxies`` entry-point
group (``objective=zc.<name>``). A proxy's ``fn`` gets a freshly initialised
model in training mode and a batch, and returns a float; it leaves the model's
parameters as they were (proxies that need a changed network work on a copy),
so several proxies may share one model (``evaluate_proxies``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas_lab.core import registry
from nas_lab.core.space import Space
from nas_lab.core.task import default_image_size
from nas_lab.objectives.zero_cost import activations, entropic, gradients, inputs, size, synflow


@dataclass(frozen=True)
class Proxy:
    """A zero-cost proxy: its computation and what evaluating it needs."""

    name: str
    #: bumped whenever the computation changes: cached values of older versions are ignored
    version: int
    needs_labels: bool
    #: ``fn(model, inputs, targets) -> float``
    fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
    #: one line: what it measures, and the paper
    summary: str
    #: which batch of ``inputs.make_batch`` the proxy is fed (``data`` or ``uniform``)
    input_kind: str = "data"
    #: independent draws of network and batch whose scores are averaged
    repeats: int = 1
    #: what the proxy needs of the space beyond models (``Space.capabilities``), refused before a run starts
    needs: tuple[str, ...] = ()


PARAMS = Proxy("params", 1, False, size.params, "number of parameters")
FLOPS = Proxy("flops", 1, False, size.flops, "FLOPs of one forward pass at the proxy resolution (torch FLOP counter)")
NASWOT = Proxy("naswot", 1, False, activations.naswot,
               "log-determinant of the agreement kernel of binary ReLU/GELU codes over a batch "
               "(Mellor et al., ICML 2021)",
               needs=("rectifiers",))
SNIP = Proxy("snip", 1, True, gradients.snip,
             "sum of |dL/dw * w| over conv/linear weights (Lee et al., ICLR 2019; Abdelfattah et al., ICLR 2021)")
GRAD_NORM = Proxy("grad_norm", 1, True, gradients.grad_norm,
                  "sum of per-layer norms of the loss gradient (Abdelfattah et al., ICLR 2021)")
JACOB_COV = Proxy("jacob_cov", 1, False, gradients.jacob_cov,
                  "spectrum of the correlation of input Jacobians across a batch (Mellor et al., arXiv 2020 v1)")
SYNFLOW = Proxy("synflow", 1, False, synflow.synflow,
                "synaptic flow with |weights|, all-ones input, no BatchNorm (Tanaka et al., NeurIPS 2020)")
LOGSYNFLOW = Proxy("logsynflow", 2, False, synflow.logsynflow,
                   "Synflow with log-scaled gradients (Cavagnero et al., FreeREA, WACV 2023)")
ENTROPIC = Proxy("entropic", 1, False, entropic.entropic,
                 "entropy of normalised activations of the non-negative, norm-free, ReLU network "
                 "(Entropic Score, seed 002)",
                 input_kind="uniform", repeats=3)

def build_model(space: Space, arch, seed: int, device: str = "cpu") -> nn.Module:
    """``space.build(arch)`` in training mode, its layers' default initialisation drawn from ``seed``.

    The global torch random state is forked, so it is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = space.build(arch)
    return model.to(device).train()


def _draw_seeds(seed: int, repeats: int) -> np.ndarray:
    """``(repeats, 2)`` independent (model, batch) seeds from one ``SeedSequence``."""
    return np.random.SeedSequence(seed).generate_state(2 * repeats, dtype=np.uint64).reshape(repeats, 2)


def evaluate_proxies(space: Space, arch, proxies: Sequence[str], *, seed: int = 0, resolution: int | None = None,
                     batch_size: int = 64, device: str = "cpu") -> dict[str, float]:
    """Several proxies of one arch, sharing each model build and batch; equal to ``evaluate_proxy`` one by one."""
    chosen = {name: registry.load("proxy", name) for name in proxies}
    resolution = resolution or default_image_size(space)
    totals = dict.fromkeys(chosen, 0.0)
    for draw, (model_seed, batch_seed) in enumerate(_draw_seeds(seed, max(p.repeats for p in chosen.values()))):
        model = build_model(space, arch, model_seed, device)
        batches = {}
        for name, proxy in chosen.items():
            if draw < proxy.repeats:
                if proxy.input_kind not in batches:
                    x, y = inputs.make_batch(space, resolution, batch_size, batch_seed, proxy.input_kind)
                    batches[proxy.input_kind] = (x.to(device), y.to(device))
                totals[name] += proxy.fn(model, *batches[proxy.input_kind])
    return {name: totals[name] / proxy.repeats for name, proxy in chosen.items()}


def evaluate_proxy(space: Space, arch, proxy: str, *, seed: int = 0, resolution: int | None = None,
                   batch_size: int = 64, device: str = "cpu") -> float:
    """One proxy of one arch; deterministic given (space, arch, proxy, seed, resolution, batch_size).

    The model is ``space.build(arch)`` initialised from ``seed`` (see
    ``build_model``), the batch ``inputs.make_batch`` of the proxy's input kind;
    a proxy with ``repeats > 1`` averages that many independent draws of both.
    No global random state is read or changed.
    """
    return evaluate_proxies(space, arch, [proxy], seed=seed, resolution=resolution, batch_size=batch_size,
                            device=device)[proxy]
