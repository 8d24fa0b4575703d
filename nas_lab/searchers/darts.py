"""Differentiable architecture search (DARTS; Liu et al., ICLR 2019), layer-wise as HyViTas-Bench runs it.

HyViTas-Bench (section IV-C) gives each of the space's decisions a vector of
learnable logits alpha, one per option, and relaxes the network to the mixture
they weigh: the supernet's mixture forward with ``softmax(alpha)`` per decision
(``oneshot.contract.Supernet.forward`` with ``weights=``; on HyViTas masked
widths and mixed kernels, see ``spaces/hyvitas/supernet.py``). A space whose
supernet runs single paths only (``mixture`` not set, e.g. ViTAS) is refused
when the run starts, before anything is trained. On its first ask DARTS

1. alternates, batch by batch, the two levels of its bilevel problem: one Adam
   step on alpha against the loss of a val batch (betas (0.5, 0.999) and weight
   decay 1e-3 as in DARTS; learning rate 0.01 by default rather than DARTS'
   3e-4, because a CPU-sized run takes about 60 alpha steps, not tens of
   thousands, and alpha would hardly leave uniform), then one SGD step on the
   weights against the loss of a train batch (the shared weight optimiser of
   ``oneshot.training``). The alpha gradient is first order: taken at the
   current weights, not through a virtual weight step (the paper's cheaper
   variant; its second-order one is not implemented);
2. discretises by taking each decision's most likely option (argmax of alpha)
   and proposes that arch; the run's objective evaluates it (a table lookup on
   hyvitas-sim, as in the paper) and the next ask is empty: DARTS is done.

``report()`` has the final ``softmax(alpha)`` of each decision, the val accuracy
of the mixture and of the derived arch as a single path of the supernet after
BN recalibration (and that path's OoD metrics, as ``objective=supernet.*`` has
them), the training throughput (train images of the weight steps per second of
the whole loop, whose every step also pushes a val batch for alpha) and the
seconds spent.

The search checkpoints as supernet training does (``oneshot/checkpoint.py``,
every epoch and every ``checkpoint_every`` steps, in the supernet cache folder,
keyed by the run's seed and settings), with the alphas, their Adam state and the
position in the val batches besides the weights, so a killed search run again
resumes where it was and ends as an uninterrupted one would; its log
(``oneshot/logs.py``) lies beside the checkpoint. Val batches for alpha come
from their own generator (``ValBatches``), which is what lets their position be
saved.

At 32x32 inputs the attention stages see 2x2 and 1x1 maps, which every
``attn.kernel`` option covers whole, so that decision's alpha would get no
gradient; the default input side for HyViTas is therefore 64
(``core.task.default_image_size``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

import numpy as np

from nas_lab.core.cache import cache_root
from nas_lab.core.errors import UserError
from nas_lab.core.searcher import OneShotSearcher
from nas_lab.core.settings import Setting
from nas_lab.core.task import Task
from nas_lab.oneshot import settings as declarations

#: DARTS' Adam settings for alpha
ARCH_BETAS, ARCH_WEIGHT_DECAY = (0.5, 0.999), 1e-3


class Darts(OneShotSearcher):
    """DARTS: per-decision logits, mixture supernet, alternating first-order bilevel steps, argmax arch."""

    name = "darts"
    title = "DARTS"
    needs = ("supernet",)

    def __init__(
        self,
        task: Task | None = None,
        epochs: Annotated[int, declarations.EPOCHS] = 3,
        batch_size: Annotated[int, declarations.BATCH_SIZE] = 64,
        learning_rate: Annotated[float, declarations.LEARNING_RATE] = 0.05,
        arch_learning_rate: Annotated[float, Setting(gt=0, le=100,
                                                     help="Adam's step size for the architecture logits")] = 0.01,
        max_batches: Annotated[int | None, declarations.MAX_BATCHES] = None,
        recalibration: Annotated[int, declarations.RECALIBRATION] = 4,
        second_order: Annotated[bool, Setting(help="DARTS' unrolled second-order alpha gradient "
                                                   "(not implemented: false only)")] = False,
        precision: Annotated[str, declarations.PRECISION] = "auto",
        compile: Annotated[bool, declarations.COMPILE] = False,
        checkpoint_every: Annotated[int | None, declarations.CHECKPOINT_EVERY] = None,
        workers: Annotated[int | None, declarations.WORKERS] = None,
    ):
        from nas_lab.oneshot.training import Settings, resolve_precision, resolve_workers, torch_device

        self.task = task or Task()
        arithmetic = resolve_precision(precision, self.task.device)
        self.settings = Settings(epochs, batch_size, learning_rate, max_batches, recalibration, precision=arithmetic,
                                 compile=compile, checkpoint_every=checkpoint_every,
                                 workers=resolve_workers(workers, self.task.device)).check("searcher")
        if second_order:
            raise UserError("searcher.second_order=true (DARTS' unrolled second-order alpha gradient) is not "
                            "implemented; valid: false, the first-order alternating updates")
        torch_device(self.task)  # refuse a missing GPU before anything runs
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.arch_learning_rate, self.max_batches, self.recalibration = arch_learning_rate, max_batches, recalibration
        self.second_order, self.precision, self.compile, self.workers = second_order, precision, compile, workers
        self.checkpoint_every = checkpoint_every

    def reset(self, space, objective, rng):
        from nas_lab.oneshot.contract import supports_mixture

        super().reset(space, objective, rng)
        if "supernet" in space.capabilities() and not supports_mixture(space):
            raise UserError(f"searcher 'darts' needs a supernet that runs a mixture of every decision, but the "
                            f"supernet of space {space.name!r} runs single paths only; use searcher=spos, or "
                            "objective=supernet.id with another searcher")
        self.alphas: list = []  # one tensor of logits per decision, once the search has run

    def probabilities(self) -> list[np.ndarray]:
        """``softmax(alpha)`` of each decision."""
        return [a.detach().softmax(0).cpu().numpy() for a in self.alphas]

    def _search(self) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        from nas_lab.oneshot import distributed
        from nas_lab.oneshot import training as st
        from nas_lab.oneshot.evaluation import PathEvaluator, accuracy, derived_arch_report

        start = time.perf_counter()
        task = self.task.for_space(self.space)
        data = st.TaskData(task)
        checkpoint = self._checkpoint(task)  # keyed by the generator's state before anything is drawn
        net = st.new_supernet(self.space, data.num_classes, self.rng, data.device)
        self.alphas = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(int(n), device=data.device))
                                             for n in self.space.sizes)
        arch_optimizer = torch.optim.Adam(self.alphas, lr=self.arch_learning_rate, betas=ARCH_BETAS,
                                          weight_decay=ARCH_WEIGHT_DECAY)
        generator = st.torch_generator(self.rng)
        val = ValBatches(data.val, self.settings, data.device, st.torch_generator(self.rng))

        def weight_loss(x, y):
            """One Adam step on alpha against a val batch (under torchrun, each rank's share of it, the gradients
            averaged), then the train batch's loss for the weight step."""
            xv, yv = next(val)
            arch_optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(xv, weights=[a.softmax(0) for a in self.alphas]), yv).backward(
                inputs=list(self.alphas))
            distributed.average_gradients(list(self.alphas))
            arch_optimizer.step()
            return F.cross_entropy(net(x, weights=[a.detach().softmax(0) for a in self.alphas]), y)

        trained = st.train_weights(net, data.train, self.settings, generator, "DARTS bilevel search", weight_loss,
                                   self.task.progress, checkpoint=checkpoint,
                                   resumable={"alphas": self.alphas, "arch_optimizer": arch_optimizer, "val": val})
        checkpoint.remove()

        derived = np.array([int(a.argmax()) for a in self.alphas], dtype=np.int64)
        mixture = accuracy(net, data.val, weights=[a.detach().softmax(0) for a in self.alphas],
                           workers=self.settings.workers)
        evaluator = PathEvaluator(net, self.space, data.train, self.settings, self.rng)
        self._report = {
            **{f"softmax(alpha) {name}": [round(float(p), 3) for p in probs]
               for name, probs in zip(self.space.names, self.probabilities())},
            "derived arch": int(self.space.index(derived)),
            "mixture val accuracy %": mixture,
            "supernet val accuracy %": evaluator.accuracy(derived, data.val),
            **derived_arch_report(evaluator, data, derived, int(self.rng.integers(2**31))),
            "train images/s": trained.images_per_second,
            "seconds": time.perf_counter() - start,
        }
        return derived


    def _checkpoint(self, task: Task):
        """Where the bilevel search keeps its checkpoint: in the supernet cache folder, keyed by what the weights
        and alphas depend on, the run's seed standing in as the state of its generator (the same command resumes;
        another seed or arch learning rate never does)."""
        from nas_lab.oneshot.checkpoint import SUFFIX, Checkpoint, digest
        from nas_lab.oneshot.training import training_key

        seed = digest(self.rng.bit_generator.state)
        key = {"searcher": self.name, "arch_learning_rate": self.arch_learning_rate,
               **training_key(self.space, task, self.settings, seed)}
        path = cache_root() / "supernets" / f"darts_{self.space.name}_{task.dataset}_{digest(key)}{SUFFIX}"
        return Checkpoint(path, key, self.settings.checkpoint_every)


class ValBatches:
    """Shuffled val batches for the alpha steps, pass after pass, for ever, drawn by their own generator (under
    torchrun, this rank's share of each).

    Its state (the generator as the current pass was about to draw its order,
    and the batches taken from that pass) goes into the training's checkpoint, so
    a resumed search takes the very val batches an uninterrupted one would.
    """

    def __init__(self, split, settings, device, generator):
        self.split, self.settings, self.device, self.generator = split, settings, device, generator
        self.start, self.taken, self._pass = generator.get_state(), 0, None

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        from nas_lab.oneshot import distributed
        from nas_lab.oneshot.training import batches_of

        while True:
            if self._pass is None:
                self.start = self.generator.get_state()
                self._pass = batches_of(self.split, self.settings.batch_size, self.device, self.generator,
                                        skip=self.taken, rank=distributed.rank(), world=distributed.world(),
                                        workers=self.settings.workers)
            batch = next(self._pass, None)
            if batch is not None:
                self.taken += 1
                return batch
            self._pass, self.taken = None, 0

    def state_dict(self) -> dict:
        return {"start": self.start, "taken": self.taken}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["start"])
        self.taken, self._pass = state["taken"], None
