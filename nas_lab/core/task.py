"""The task a run learns on: which image dataset, with which settings, on which device.

Only searchers and objectives that train or evaluate real models (one-shot
searchers, supernet objectives) use it; they ask for it by having a ``task``
argument in their constructor, and the framework passes it (like ``space``).
The data loads lazily, so a tabular run never touches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas_lab.core import registry
from nas_lab.core.errors import UserError

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Task:
    """``dataset`` (a registered loader) with its ``params``, and the torch ``device``."""

    dataset: str = "digits"
    params: tuple = ()
    device: str = "cpu"

    def __post_init__(self):
        if self.device.split(":")[0] not in DEVICES:
            raise UserError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}")

    def data(self):
        """The ``ImageData`` of this task (loaders cache their arrays per process)."""
        return registry.create("dataset", self.dataset, dict(self.params))

    def torch_device(self):
        """The torch device, refusing ``cuda`` on a machine without a GPU."""
        import torch

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("device=cuda was asked for but torch finds no CUDA GPU here; use device=cpu")
        return torch.device(self.device)

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.dataset, **dict(self.params), "device": self.device}
