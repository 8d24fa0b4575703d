"""The supernet contract: what one-shot training, path evaluation, SPOS, DARTS and ``objective=supernet.*`` use.

A space offers a supernet through ``space.supernet(num_classes=...)``. Spaces sit
above this layer and never import it: a supernet satisfies ``Supernet``
structurally (a ``typing.Protocol``), and says in its docstring that it does.
``check_supernet`` verifies it where a supernet is created (``training.new_supernet``),
and ``tests/test_oneshot_layer.py`` checks every built-in space's supernet.

Beyond the members below, a supernet is a ``torch.nn.Module``: training steps
its ``parameters()``, switches ``train()`` / ``eval()``, moves it with ``.to(device)``,
and the supernet objective caches and restores it with ``state_dict()`` /
``load_state_dict()``, so every weight and statistic it uses must be in its
state dict. Its initial weights are drawn from torch's global generator while
it is constructed (``training.new_supernet`` seeds and restores that generator).

A space may name the training recipe its supernet wants as the attribute
``supernet_recipe``, a dict with ``optimizer`` (``"sgd"``, the default, or
``"adamw"``, which ViTAS' plain transformers need), ``epochs`` (default 5),
``recalibration`` (train batches that re-estimate BN per scored arch, default 4),
``grad_clip`` (largest gradient norm of a step, default none: no clipping) and
``augment`` (a recipe of ``oneshot.augment``, default none); SPOS and the
supernet objective use it where their ``optimizer=auto``, ``epochs=none``,
``recalibration=none`` and ``augment=auto`` (on CUDA) leave the choice open
(``training.Settings.resolve``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nas_lab.core.space import Space


@runtime_checkable
class Supernet(Protocol):
    """One weight-sharing module whose slices are every arch's model (implemented by ``HyViTasSupernet``,
    ``ViTASSupernet``).

    Optional class attribute ``mixture``: ``True`` when ``forward`` also takes a
    mixture (``weights=``); absent or ``False``, the supernet runs single paths
    only, and DARTS refuses its space before anything is trained
    (``runs_mixtures``, ``supports_mixture``).
    """

    #: the space whose archs are this supernet's paths
    space: Space
    #: logits per image
    num_classes: int

    def forward(self, x: torch.Tensor, arch=None, *, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``x`` ``(B, 3, H, W)``: ``net(x, arch)`` or ``net(x, weights=ws)``.

        Exactly one of:

        - ``arch`` (single path; SPOS, path evaluation): one arch of ``space``
          (option indices, a tuple or a ``(d,)`` int array). Computes that arch's
          model on its slice of the shared weights: in eval mode equal, to float
          tolerance, to ``extract(arch)(x)``; in train mode normalisation uses
          the path's own batch statistics. Gradients reach only the slice.
        - ``weights`` (mixture; DARTS, only when ``mixture`` is ``True``): one
          probability vector per decision of ``space``, in the order of
          ``space.decisions``, each as long as that decision has options (the
          layout ``space.sizes``; e.g. softmaxed architecture logits). Gradients
          reach the weights as well as the vectors; a one-hot mixture equals the
          single path of its arch. A single-path-only supernet refuses it with
          one sentence.
        """
        ...

    def extract(self, arch) -> nn.Module:
        """A standalone model of ``arch``: ``space.build(arch, num_classes=num_classes)`` with this supernet's
        slices of weights (and normalisation statistics) loaded, on the supernet's device.

        Its outputs equal ``net(x, arch)`` in eval mode to float tolerance; it
        shares no tensors with the supernet (training it leaves the supernet as it was).
        """
        ...

    def recalibrate(self, arch, batches: Iterable) -> Supernet:
        """Re-estimate the normalisation statistics of ``arch``'s path; returns the supernet.

        Running statistics are shared by every path but each path's activations
        have their own, so after weight-sharing training they fit no single
        arch. ``batches`` are image tensors or ``(images, labels)`` pairs
        (train images); the statistics become those of the path on them,
        computed without gradients; train or eval mode is left as it was.
        Path evaluation calls it before scoring an arch, whenever the arch
        changes. A supernet without running statistics (LayerNorm only, as a
        ViT) does nothing and returns itself.
        """
        ...


def runs_mixtures(net) -> bool:
    """Whether supernet ``net`` takes mixtures (``net(x, weights=ws)``): its ``mixture`` attribute is ``True``."""
    return getattr(net, "mixture", False) is True


def supports_mixture(space: Space) -> bool:
    """Whether ``space``'s supernet takes mixtures, read off one built on torch's meta device (no memory used, no
    weights drawn, torch's random state untouched), so that DARTS can refuse a space before training anything."""
    import torch

    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        net = space.supernet()
    return runs_mixtures(net)


def check_supernet(net, space: Space):
    """``net``, or ``TypeError`` naming what ``space``'s supernet lacks of the contract (a defect of the space,
    not bad input)."""
    from torch import nn

    missing = [name for name in ("space", "num_classes", "forward", "extract", "recalibrate") if not hasattr(net, name)]
    if not isinstance(net, nn.Module):
        missing.insert(0, "torch.nn.Module as base")
    if missing:
        raise TypeError(f"space {space.name!r}: its supernet ({type(net).__name__}) does not offer the one-shot "
                        f"contract of nas_lab.oneshot.contract.Supernet; missing: {', '.join(missing)}")
    return net
