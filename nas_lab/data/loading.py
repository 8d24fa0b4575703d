"""Batches of an image set, for one process or for one rank of a data-parallel training.

``batches`` is the one way training and evaluation read images. Its order:

- without a generator, every image in order, the last batch ragged;
- with a ``torch.Generator``, ``torch.randperm(n, generator)`` and then full
  batches only (a ragged last batch is dropped: a batch of one image has no
  batch statistics); a set smaller than a batch is one batch. This is the order
  the one-shot layer drew before image sets existed, so an in-memory set gives
  the same batches, and a run the same results, as it always did.

With ``world`` > 1 processes, every rank draws the same permutation (same
generator state) and takes its contiguous share of each global batch of
``batch_size`` images: rank ``r`` gets items ``[r * b, (r + 1) * b)`` of it,
``b = batch_size / world``. The shares of all ranks together are the batch one
process would have had, so a data-parallel step sees the same images as a
single-process step. In order, a ragged last batch is cut the same way, and a
rank whose share of it is empty gets no batch for it.

In-memory sets (``ArrayImages``) are indexed directly: one fancy index per
batch, no per-image work. Other sets are read through a
``torch.utils.data.DataLoader`` over the batches (decoding in ``workers``
processes; ``pin_memory`` for faster copies to a GPU). With workers, the
loader is kept with the image set and its workers persist from one pass
(epoch) to the next instead of being started again; one pass over a set runs
at a time per loader setting, and starting a second before the first ends is
refused. The loader's own seed comes from a private generator, so reading
batches never moves torch's global random state.

Reading a set from disk also fixes glibc's mmap threshold (``_map_large_buffers``),
so that the memory of a process that reads many batches does not grow with the
number of images it has read.

torch is imported on first use, so ``nas_lab.data`` stays importable without it.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.data.images import ImageSet

if TYPE_CHECKING:
    import torch


def batches(images: ImageSet, batch_size: int, *, generator: torch.Generator | None = None, limit: int | None = None,
            workers: int = 0, rank: int = 0, world: int = 1,
            pin_memory: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches of ``images``, at most ``limit``: float32 ``(n, C, H, W)`` and int64 ``(n,)`` CPU tensors
    (pinned if ``pin_memory`` and there is a GPU), in order or shuffled by ``generator``, this rank's share of each.

    Checks its arguments at once; the permutation is drawn when the first batch is asked for.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of world {world}: need 0 <= rank < world")
    if batch_size % world:
        raise UserError(f"a batch of {batch_size} images cannot be shared equally by {world} processes; choose a "
                        f"batch size that is a multiple of {world} (e.g. {batch_size + world - batch_size % world})")
    plan = _plan(len(images), batch_size, generator, limit, rank, world)
    if images.in_memory:
        return _indexed(images, plan, pin_memory)
    return _loaded(images, plan, workers, pin_memory)


def _plan(n: int, batch_size: int, generator, limit: int | None, rank: int, world: int) -> Iterator[np.ndarray]:
    """This rank's index array of each batch (the permutation drawn lazily, as ``minibatches`` drew it)."""
    import torch

    if generator is None:
        order, starts = torch.arange(n), range(0, n, batch_size)
    else:
        order, starts = torch.randperm(n, generator=generator), range(0, max(1, n - batch_size + 1), batch_size)
    share = batch_size // world
    for start in starts if limit is None else starts[:limit]:
        idx = order[start : start + batch_size][rank * share : (rank + 1) * share]
        if len(idx):
            yield idx.numpy()


def _indexed(images, plan: Iterator[np.ndarray], pin_memory: bool) -> Iterator:
    import torch

    pin = pin_memory and torch.cuda.is_available()
    for idx in plan:
        x, y = (torch.from_numpy(a) for a in images.take(idx))
        yield (x.pin_memory(), y.pin_memory()) if pin else (x, y)


class _Passes:
    """The batch sampler of a kept DataLoader: it hands out the index arrays of the pass under way.

    ``start`` installs a pass's batches and returns its number; a pass whose
    number is no longer the current one was overtaken by another over the same
    loader, whose iterator a DataLoader with persistent workers shares.
    """

    def __init__(self):
        self.current: list[np.ndarray] = []
        self.number = 0

    def start(self, plan: list[np.ndarray]) -> int:
        self.current, self.number = plan, self.number + 1
        return self.number

    def __iter__(self):
        return iter(self.current)

    def __len__(self) -> int:
        return len(self.current)


#: glibc's ``mallopt`` parameter for the size from which allocations are mapped, and the size chosen for it
M_MMAP_THRESHOLD, MMAP_THRESHOLD = -3, 1 << 20


@functools.cache
def _map_large_buffers() -> None:
    """Allocate buffers of 1 MiB and more (image batches, activations) as their own mappings, given back to the
    system when freed.

    glibc raises its mmap threshold each time a mapped block is freed (up to
    32 MiB); from then on such buffers come from the heap, whose freed memory it
    keeps in pieces, and a training that reads many batches from disk grows with
    the number of images it reads (measured: 20,000 images peaked 27 % above
    2,000; with the threshold fixed, 1 %, ``benchmarks/bench_data_memory.py``).
    Fixing the threshold ends the raising. A threshold the user set
    (``MALLOC_MMAP_THRESHOLD_``) is kept; without glibc nothing changes.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator is left as it is
        pass


def _loaded(images: ImageSet, plan: Iterator[np.ndarray], workers: int, pin_memory: bool) -> Iterator:
    import torch
    from torch.utils.data import DataLoader

    _map_large_buffers()

    pin = pin_memory and torch.cuda.is_available()
    key = (workers, pin)
    if key not in images.loaders:
        passes = _Passes()
        # the loader reads a copy without loaders: holding the set itself would make set, loader and its workers'
        # iterator a reference cycle, freed only by the cyclic collector, which stops a queue's feeder thread
        # before the iterator's __del__ can tell the workers to end (each then waited 5 s, then was killed)
        loader = DataLoader(copy.copy(images), batch_sampler=passes, num_workers=workers, pin_memory=pin,
                            persistent_workers=workers > 0, generator=torch.Generator())
        if workers == 0:  # nothing to keep: a loader without workers starts nothing
            yield from _read(loader, passes, list(plan))
            return
        images.loaders[key] = (loader, passes)
    yield from _read(*images.loaders[key], list(plan))


def _read(loader, passes: _Passes, plan: list[np.ndarray]) -> Iterator:
    """The batches of ``plan`` from ``loader``; a worker's ``UserError`` (a file it cannot decode) as one sentence."""
    number = passes.start(plan)
    try:
        for batch in loader:
            if passes.number != number:
                raise RuntimeError("a second pass over this image set started before this one ended; finish or "
                                   "close one pass before starting the next")
            yield batch
    except UserError as err:  # raised again by the DataLoader, with the worker's traceback in its message
        raise UserError(str(err).rstrip().rpartition("UserError: ")[2]) from None
