"""Checkpoints of a training in progress, so that a killed training (``kill -9``, a lost node) goes on where it was.

A checkpoint is one file beside the trained supernets (``$NAS_LAB_CACHE/supernets``, or ``objective.cache``),
named by a digest of everything the trained weights depend on (the same key as the supernet cache: space,
dataset and its settings, device, training settings, seed), and holding that key again: a checkpoint written
under other settings, another seed or another space is never resumed. It holds what the rest of the training
depends on: the model's weights and buffers, the optimiser, the learning-rate schedule, the gradient scaler
(fp16), every random state (torch's global generator and CUDA's, the generator that shuffles the epochs as it
was when the current epoch drew its order, and the other generators the training draws from: the numpy
generator of the sampled paths, the augmentation's), and the data position (the epoch and the steps done in
it). ``training.train_weights`` writes one at the end of every epoch and every ``checkpoint_every`` steps, but
not after its last step; the caller removes it once the trained supernet is cached. Beside it, in
``<name>.logs/``, the training logs its loss, learning rate, images/s and val accuracy (``logs.TrainingLog``: a
CSV, and TensorBoard events when that package is installed); the log stays once the training is done.

Writes go through ``core.files.replacing`` (temporary file, fsync, rename), so a kill during a write leaves the
previous checkpoint. Under torchrun only rank 0 reads and writes the file; the other ranks receive what it read
(``distributed.share``), so the file need not be on a disk every node sees.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, replacing
from nas_lab.oneshot import distributed

SUFFIX = ".ckpt"


def digest(key: dict) -> str:
    """A short stable digest of a JSON-able key (what names cache and checkpoint files)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """Where a training's checkpoint lives (``path``), what it must match (``key``) and how often it is written
    (``every`` steps; None: at the end of every epoch only)."""

    path: Path
    key: dict
    every: int | None = None

    def load(self) -> dict | None:
        """The saved training state if the file exists and was written under this key, else None (a stale or
        unreadable checkpoint is ignored, and replaced by the next write); the same on every rank."""
        return distributed.share(self._read)

    def _read(self) -> dict | None:
        import torch

        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged file can fail in many ways; training starts afresh
            print(f"nas-lab: ignoring the unreadable checkpoint {self.path} ({type(err).__name__}); training "
                  "starts from the beginning", file=sys.stderr)
            return None
        return state if isinstance(state, dict) and state.get("key") == self.key else None

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` with the key, atomically, on rank 0 only."""
        if not distributed.main():
            return
        import torch

        try:
            with replacing(self.path) as tmp:
                torch.save({"key": self.key, **state}, tmp)
        except OSError as err:
            raise UserError(f"cannot write the training checkpoint to {self.path.parent}: {reason(err)}; free space "
                            "there or choose another folder (objective.cache=DIR or $NAS_LAB_CACHE)") from None

    @property
    def logs(self) -> Path:
        """The folder of the training's log (``logs.TrainingLog``) beside the checkpoint, kept once it is removed."""
        return self.path.with_suffix(".logs")

    def remove(self) -> None:
        """Delete the checkpoint (the training finished and its result is kept elsewhere), on rank 0 only."""
        if distributed.main():
            self.path.unlink(missing_ok=True)


def state_of(thing) -> Any:
    """The state of a random generator (numpy or torch) or of anything with ``state_dict()``, to save."""
    import numpy as np
    import torch

    if isinstance(thing, np.random.Generator):
        return thing.bit_generator.state
    if isinstance(thing, torch.Generator):
        return thing.get_state()
    return thing.state_dict()


def restore(thing, state) -> None:
    """Put back a state ``state_of`` took."""
    import numpy as np
    import torch

    if isinstance(thing, np.random.Generator):
        thing.bit_generator.state = state
    elif isinstance(thing, torch.Generator):
        thing.set_state(state)
    else:
        thing.load_state_dict(state)


def random_states() -> dict[str, Any]:
    """torch's global random states (CPU, and every CUDA device when there is one)."""
    import torch

    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_random_states(states: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
