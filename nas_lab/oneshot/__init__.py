"""One-shot layer, shared by every supernet: below spaces and data, above objectives and searchers.

- ``contract``: the ``Supernet`` protocol every space's supernet offers (single
  path forward, optional DARTS mixture, ``extract``, ``recalibrate``);
- ``training``: training settings, the task's tensors, seeded supernets, the
  weight-step loop and uniform single-path (SPOS) training;
- ``evaluation``: accuracies of paths with inherited weights after
  recalibration, and the supernet metrics (val, OoD) of archs;
- ``distributed``: data-parallel training under torchrun (ranks, what they
  share, rank 0 alone writing);
- ``checkpoint``: checkpoints of a training in progress, resumed when the same
  training runs again;
- ``augment``: the training recipes' augmentation of batches (kornia), named by each space's recipe;
- ``retrain``: one arch trained from scratch, tested and exported (``nas-lab train``).

SPOS, DARTS and ``objective=supernet.*`` import from here, never from each
other. Nothing is imported here, so naming a module of this package does not
import torch.
"""
