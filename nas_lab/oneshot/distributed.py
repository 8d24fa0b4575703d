"""Data-parallel training under ``torchrun``: which process this is, and what the processes exchange.

``torchrun --nproc_per_node=N [--nnodes=M --rdzv-endpoint=HOST:PORT] -m nas_lab run ...`` starts N x M
copies of the same command and tells each, through the environment, its ``RANK`` (0..WORLD_SIZE-1 over all
nodes), ``LOCAL_RANK`` (its GPU on its node) and ``WORLD_SIZE``; the rendezvous gives ``MASTER_ADDR`` /
``MASTER_PORT``. Nothing here assumes one node: the process group is initialised from that environment
(``init_method="env://"``), every file that only rank 0 can see on its disk (a cached supernet, a checkpoint)
reaches the other ranks by ``broadcast`` from rank 0, never by reading the same path.

Every rank runs the whole command with the same seed, so every rank draws the same paths, the same epoch
permutations and the same evolution; only the training batches are split (each rank takes its contiguous share
of every global batch) and DistributedDataParallel averages the gradients, so a step equals the one-process step
on the global batch. Only rank 0 writes (caches, checkpoints, records) and prints.

Without torchrun nothing is initialised and every function here answers for one process. Under torchrun with one
process (``--nproc_per_node=1``) the group and DistributedDataParallel are set up all the same (a check of the
path on one GPU), and the results are those of a plain run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nas_lab.core.errors import UserError


def _env(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value in (None, "") else int(value)
    except ValueError:
        raise UserError(f"the environment variable {name}={value!r} is not a whole number; torchrun sets it, so "
                        "start data-parallel runs with torchrun") from None


#: what torchrun sets in every process it starts (``LOCAL_RANK`` too)
TORCHRUN = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Whether torchrun started this process (its variables are set), even as the only one: then a process group
    is joined and DistributedDataParallel used, so ``torchrun --nproc_per_node=1`` exercises the whole path."""
    return all(os.environ.get(name) for name in TORCHRUN)


def setup() -> None:
    """Join the process group torchrun described, once (a no-op for one process): gloo for CPU tensors and, where
    CUDA is available, NCCL for CUDA tensors, each rank then on GPU ``LOCAL_RANK`` of its node."""
    if not launched():
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(_env("LOCAL_RANK", 0))
        dist.init_process_group(backend="cpu:gloo,cuda:nccl", init_method="env://")
    else:
        dist.init_process_group(backend="gloo", init_method="env://")


def active() -> bool:
    """Whether this process belongs to a process group (started by torchrun and ``setup`` done)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank over all nodes (0 without torchrun); before ``setup``, torchrun's ``RANK``."""
    return _env("RANK", 0) if launched() else 0


def world() -> int:
    """How many processes train together (1 without torchrun)."""
    return _env("WORLD_SIZE", 1) if launched() else 1


def main() -> bool:
    """Whether this process writes and prints: rank 0, or the only process."""
    return rank() == 0


def local_rank() -> int:
    """This process's GPU on its node (torchrun's ``LOCAL_RANK``; 0 for one process)."""
    return _env("LOCAL_RANK", 0) if launched() else 0


def share(make: Callable[[], Any]) -> Any:
    """``make()`` computed on rank 0 and sent to every rank (pickled), so that what rank 0 read from its disk (a
    cached supernet, a checkpoint) is what every rank uses; just ``make()`` for one process. A ``UserError`` on
    rank 0 is raised on every rank, so none waits for the others for ever."""
    if world() == 1 or not active():
        return make()
    import torch.distributed as dist

    box: list = [None]
    if dist.get_rank() == 0:
        try:
            box = [(make(), None)]
        except UserError as err:
            box = [(None, str(err))]
    dist.broadcast_object_list(box, src=0)
    value, error = box[0]
    if error is not None:
        raise UserError(error)
    return value


def mean(value, device) -> float:
    """The mean of a scalar over the ranks (a loss each rank computed on its share of the batch)."""
    import torch

    t = torch.as_tensor(value, dtype=torch.float64, device=device).detach().clone()
    if world() > 1 and active():
        import torch.distributed as dist

        dist.all_reduce(t)
        t /= dist.get_world_size()
    return float(t)


def average_gradients(tensors) -> None:
    """Average the gradients of ``tensors`` over the ranks in place (tensors outside a DDP module, such as DARTS'
    architecture logits)."""
    if world() == 1 or not active():
        return
    import torch.distributed as dist

    for t in tensors:
        if t.grad is not None:
            dist.all_reduce(t.grad)
            t.grad /= dist.get_world_size()


def check_divides(batch_size: int, name: str) -> None:
    """``UserError`` unless the world size divides the global batch (each rank takes an equal share of it)."""
    n = world()
    if batch_size % n:
        raise UserError(f"{name}={batch_size} is not divisible by the {n} processes torchrun started; "
                        f"choose a batch size that is a multiple of {n} (the batch is the global one, split over "
                        "ranks)")
