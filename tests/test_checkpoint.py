"""Checkpoints of supernet training: a training killed with SIGKILL mid-epoch resumes where it was when the same
command runs again, and ends with the weights of a training that was never interrupted.

Tolerance: every weight within 1e-6 (absolute; weights are of order 1) of the
uninterrupted run's; on CPU with the same seed and the same thread count (both
runs are processes with OMP_NUM_THREADS=1) the resumed run repeats the same float
operations in the same order, so the weights come out equal (seen: 0).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from nas_lab.core.task import Task
from nas_lab.oneshot.checkpoint import Checkpoint
from nas_lab.oneshot.training import Settings, torch_generator, train_weights

VITAS = ["space=vitas", "space.setting=cpu", "space.positions=2", "space.budget_macs=2e5"]
#: 2 epochs of 20 steps, a checkpoint every 3 steps: the first ones are mid-epoch
TRAINING = {"epochs": 2, "max_batches": 20, "batch_size": 16, "recalibration": 1, "checkpoint_every": 3}
STEPS = 40


def test_a_training_killed_mid_epoch_resumes_and_ends_with_the_uninterrupted_weights(tmp_path):
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "nas_lab", "run", *VITAS, "searcher=random", "budget=1", "objective=supernet.id",
               *(f"objective.{k}={v}" for k, v in TRAINING.items()), f"objective.cache={folder}", "--no-save",
               "--no-progress", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    step = None
    while step is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
        if list(folder.glob("*.ckpt")):
            # stopped, the training cannot write another checkpoint while the one on disk is read; however late
            # this (possibly starved) test process looks, it kills only after a mid-epoch checkpoint
            process.send_signal(signal.SIGSTOP)
            (checkpoint,) = folder.glob("*.ckpt")
            saved = torch.load(checkpoint, weights_only=True)["step"]
            if saved % (STEPS // 2):
                step = saved
            else:
                process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    assert step is not None and 0 < step < STEPS  # killed mid-epoch, after a checkpoint

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    info = json.loads(again.stdout)["objective_info"]
    assert info["train_images"] <= (STEPS - step) * TRAINING["batch_size"]  # resumed, not started over
    assert not list(folder.glob("*.ckpt"))  # removed once the supernet is cached
    (resumed,) = folder.glob("*.pt")

    # the uninterrupted training: the same command in a process of the same thread count (float sums depend on it)
    whole = tmp_path / "whole"
    plain = [a if not a.startswith("objective.cache=") else f"objective.cache={whole}" for a in command]
    done = subprocess.run(plain, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    (uninterrupted,) = whole.glob("*.pt")
    assert uninterrupted.name == resumed.name  # the same key: the same settings and seed
    weights = [torch.load(p, weights_only=True)["state_dict"] for p in (uninterrupted, resumed)]
    gap = max(float((weights[0][k] - weights[1][k]).abs().max()) for k in weights[0])
    assert gap <= 1e-6, gap


def test_a_checkpoint_of_other_settings_is_never_resumed(tmp_path):
    """A file at the checkpoint's path written under another key (other settings, seed or space) is ignored: the
    training starts from step 0 and its weights are those of a training without any file."""
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    settings = Settings(2, 16, 0.1, None, 1)

    def train(checkpoint):
        torch.manual_seed(0)
        net = torch.nn.Linear(8, 3)
        done = train_weights(net, (x, y), settings, torch_generator(np.random.default_rng(0)), "t",
                             lambda a, b: torch.nn.functional.cross_entropy(net(a), b), checkpoint=checkpoint)
        return net.weight.detach().clone(), done.images

    path = tmp_path / "t.ckpt"
    plain, images = train(None)
    torch.manual_seed(1)
    stale = {"key": {"seed": 1}, "epoch": 1, "step": 4, "order": torch.Generator().get_state(), "random": {},
             "states": {"model": torch.nn.Linear(8, 3).state_dict()}}
    torch.save(stale, path)
    again, images_again = train(Checkpoint(path, {"seed": 0}))
    assert torch.equal(plain, again) and images_again == images == 8 * 16  # started over, same weights
    assert torch.load(path, weights_only=True)["key"] == {"seed": 0}  # replaced by its own epoch-end checkpoint


def test_a_darts_search_stopped_mid_epoch_resumes_to_the_alphas_and_arch_of_an_uninterrupted_one(tmp_path,
                                                                                               monkeypatch):
    """DARTS' checkpoint holds the alphas, their Adam state and the position in the val batches besides the
    weights: a search stopped after a mid-epoch checkpoint (as a kill would leave it; the SIGKILL itself is tested
    above) ends, when run again, with the alphas of one never stopped. Same process, same thread count, same float
    operations: every alpha within 1e-6 (seen: 0)."""
    from nas_lab.core.runner import run
    from nas_lab.objectives.tabular.objective import TabularObjective
    from nas_lab.searchers.darts import Darts
    from nas_lab.spaces.hyvitas.space import HyViTasSpace

    space = HyViTasSpace()
    # 1 epoch of 4 steps at 32 px, a checkpoint every 3 steps: the only one is mid-epoch
    settings = {"epochs": 1, "batch_size": 8, "max_batches": 4, "recalibration": 1, "checkpoint_every": 3,
                "arch_learning_rate": 0.05}

    def search(cache):
        monkeypatch.setenv("NAS_LAB_CACHE", str(cache))
        searcher = Darts(task=Task(params=(("image_size", "32"),), progress=False), **settings)
        result = run(space, TabularObjective(space, "id"), searcher, budget=1, seed=3)
        return torch.cat([a.detach().flatten() for a in searcher.alphas]), result.best_index

    real_save, saved = Checkpoint.save, []

    def save_then_stop(self, state):
        real_save(self, state)
        saved.append(state["step"])
        raise KeyboardInterrupt  # the process ends right after its first checkpoint

    monkeypatch.setattr(Checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "stopped")
    monkeypatch.setattr(Checkpoint, "save", real_save)
    assert saved == [3] and len(list((tmp_path / "stopped" / "supernets").glob("darts_*.ckpt"))) == 1

    resumed, found = search(tmp_path / "stopped")
    assert not list((tmp_path / "stopped" / "supernets").glob("*.ckpt"))  # removed once the search is done
    assert list((tmp_path / "stopped" / "supernets").glob("darts_*.logs/scalars.csv"))  # the training's log stays
    whole, found_whole = search(tmp_path / "whole")
    gap = float((resumed - whole).abs().max())
    assert gap <= 1e-6 and found == found_whole, gap
