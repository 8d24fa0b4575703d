"""The block contract: what a space offers so that a latency look-up table can price its archs.

A space whose models run as a sequence of keyed blocks (stem, stages of blocks, head)
offers a look-up table by overriding three methods that ``core.space.Space`` declares
(``core.space.LATENCY``); ``BlockSequence`` states their contract, and ``offers_blocks``
tells whether a space offers them (its ``capabilities()`` list ``latency``).

- ``latency_blocks(side)`` and ``latency_slots(archs)`` are numpy only (the lookup
  path imports no torch);
- ``latency_module(name)`` builds one block with torch, for ``nas-lab lut build``.

A *block* is a named configuration (``"convnext(dim=48,kernel=7,expansion=4)"``)
and the input shape it meets inside the network, at batch 1 without the batch
dimension (``(48, 40, 40)``); the table holds one measured time per ``name @
shape`` entry. The same name may occur at two shapes (a block of dim 32 that
ends one stage and starts the next): those are two entries. A model's predicted
latency is the sum of its slots' entries, so the blocks must cover every
operation the model runs (stem and head too) and nothing twice; what they cannot
cover (glue such as a cell's node sums, Python call overhead, colder caches than
a block timed alone sees) is the correction that ``nas-lab lut build`` calibrates (see ``objectives/latency/table.py``).

A space's constructor parameters should be readable as attributes of the same
name (``space.variant``): the table's key records them and the command that
builds a missing table names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from torch import nn

    from nas_lab.core.space import Space

@runtime_checkable
class BlockSequence(Protocol):
    """A space whose models are a sequence of keyed blocks (implemented by ``HyViTasSpace``, ``NB201Space``,
    ``AutoViTSpace``)."""

    def latency_blocks(self, side: int) -> list[tuple[str, tuple[int, ...]]]:
        """Every distinct block its archs' models can run, as ``(name, input shape)`` at ``side x side`` images.

        The order is fixed, and neither the order nor the length depends on
        ``side`` (only the shapes do): ``latency_slots`` numbers blocks by it.
        """
        ...

    def latency_slots(self, archs) -> np.ndarray:
        """``(n, slots)`` int64: per arch, the position in ``latency_blocks`` of each block its model runs,
        in order; ``-1`` for an empty slot (a layer the arch skips). Vectorised, no torch."""
        ...

    def latency_module(self, name: str) -> nn.Module:
        """The torch module of block ``name``, built with the same layers as ``build`` builds it (any weights:
        time does not depend on their values)."""
        ...


def offers_blocks(space: Space) -> bool:
    """Whether ``space`` implements the block contract."""
    return "latency" in space.capabilities()

