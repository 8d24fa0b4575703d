"""The task a run learns on: which image dataset, with which settings, on which device.

Only searchers and objectives that train or evaluate real models (one-shot
searchers, supernet objectives) use it; they ask for it by having a ``task``
argument in their constructor, and the framework passes it (like ``space``).
The data loads lazily, so a tabular run never touches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting

DEVICES = ("cpu", "cuda")
#: input side for spaces that declare no training resolution (CIFAR-sized spaces such as NB201)
CIFAR_SIDE = 32
#: largest default input side: keeps supernet training and proxy evaluation of HyViTas models CPU-sized
MAX_DEFAULT_SIDE = 64


def default_image_size(space, device: str = "cpu") -> int:
    """Input side models of ``space`` see unless told: its training resolution, capped at 64 px on a CPU.

    NB201 (no declared resolution, CIFAR images) gets 32; on a CPU HyViTas
    (trained at 160) gets 64, at which its attention stages see 4 x 4 and 2 x 2
    tokens, so every ``attn.kernel`` option still differs (at 32 px they would
    not). On a GPU (``device=cuda``) the cap is lifted: the real experiments run
    at the papers' resolutions without a ``dataset.image_size=`` of their own.
    """
    side = space.resolution or CIFAR_SIDE
    return side if device.split(":")[0] != "cpu" else min(side, MAX_DEFAULT_SIDE)


@dataclass(frozen=True)
class Task:
    """``dataset`` (a registered loader) with its ``params``, and the torch ``device``; ``progress``: whether
    training on it shows progress bars on stderr (not part of what the task is: it changes no result)."""

    dataset: str = "digits"
    params: tuple = ()
    device: str = "cpu"
    progress: bool = field(default=False, compare=False)

    def __post_init__(self):
        if self.device.split(":")[0] not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}")

    def for_space(self, space) -> Task:
        """This task with ``image_size`` set to the space's ``default_image_size`` unless the user chose one."""
        params = dict(self.params)
        params.setdefault("image_size", str(default_image_size(space, self.device)))
        side = Setting("image_size", int, 0).coerce(params["image_size"], "dataset")
        space.check_side(side, "dataset.image_size")  # before any data loads or network trains
        return Task(self.dataset, tuple(sorted(params.items())), self.device, self.progress)

    def data(self):
        """The ``ImageData`` of this task (loaders cache their arrays per process)."""
        return registry.create("dataset", self.dataset, dict(self.params))

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, **dict(self.params), "device": self.device}
