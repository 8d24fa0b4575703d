"""``python -m nas_lab COMMAND ...``: the ``nas-lab`` command, and the form ``torchrun`` starts.

``torchrun --nproc_per_node=8 -m nas_lab run space=vitas searcher=spos device=cuda ...`` starts one copy of the
command per GPU (and per node with ``--nnodes``). Every copy joins the process group torchrun describes and runs the
whole command with the same seed, training data-parallel (``oneshot.distributed``); only rank 0 speaks and writes:
the other ranks print nothing on stdout, show no progress bars (``run``, ``train``) and, for ``run``, write no run
record (``train`` writes its files on rank 0 itself). Errors still reach stderr on every rank. Without torchrun
this is exactly ``nas-lab``.
"""

from __future__ import annotations

import os
import sys

from nas_lab.cli.main import main
from nas_lab.oneshot import distributed

#: options that keep a rank other than 0 from writing or drawing, per command that has them
QUIET = {"run": ("--no-save", "--no-progress"), "train": ("--no-progress",)}


def rank_argv(argv: list[str]) -> list[str]:
    """The command line this rank runs: as given on rank 0, with ``QUIET``'s options on the others."""
    if distributed.main() or not argv:
        return argv
    return argv + [option for option in QUIET.get(argv[0], ()) if option not in argv]


def launch(argv: list[str]) -> int:
    if distributed.launched():
        distributed.setup()
        if not distributed.main():
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        return main(rank_argv(argv))
    finally:
        if distributed.active():
            import torch.distributed as dist

            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
