"""Data-parallel training under torchrun (2 CPU processes, gloo) against one process with the same global batch.

The supernet is ViTAS' (LayerNorm only): a step of two processes, each on half of
every global batch with DistributedDataParallel averaging their gradients, is the
one-process step on the whole batch up to the order of float32 sums. Tolerance:
after the training (3 AdamW steps), every weight of the two-process supernet is
within 1e-6 (absolute) of the one-process one (seen: 4e-9; weights are of order 1),
and its val accuracy is within one image (100 / val images %). BatchNorm supernets
are not compared: each rank normalises with its own share's statistics (see
``nas_lab/oneshot/distributed.py``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas_lab.core.errors import UserError
from nas_lab.core.task import Task
from nas_lab.objectives.supernet import SupernetObjective
from nas_lab.oneshot.training import Settings
from nas_lab.spaces.vitas import ViTASSpace

VITAS = ["space=vitas", "space.setting=cpu", "space.positions=2", "space.budget_macs=2e5"]
TRAINING = {"epochs": 1, "max_batches": 3, "batch_size": 16, "recalibration": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_supernet_of_one_process_with_the_same_global_batch(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "-m", "nas_lab", "run", *VITAS, "searcher=random", "budget=1",
               "objective=supernet.id", *(f"objective.{k}={v}" for k, v in TRAINING.items()),
               f"objective.cache={tmp_path / 'two'}", "--out", str(tmp_path / "records"), "--json", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)  # one JSON document: only rank 0 printed
    assert len(list((tmp_path / "records").iterdir())) == 1  # and only rank 0 wrote a record
    (two,) = (tmp_path / "two").glob("*.pt")  # one cached supernet, no checkpoint left

    space = ViTASSpace(setting="cpu", positions=2, budget_macs=2e5)
    one = SupernetObjective(space, "id", **TRAINING, cache=str(tmp_path / "one"))
    arch = space.arch(np.array([record["best"]["index"]]))
    one_accuracy = one.evaluate(arch, np.random.default_rng(0)).metrics["id"][0]
    saved = [torch.load(path, weights_only=True) for path in (one.path, two)]
    assert saved[1]["key"] == {**saved[0]["key"], "processes": 2}  # the same training but for the process count
    weights = [s["state_dict"] for s in saved]
    assert weights[0].keys() == weights[1].keys()
    gap = max(float((weights[0][k] - weights[1][k]).abs().max()) for k in weights[0])
    assert gap <= 1e-6, gap
    val_images = len(Task().for_space(space).data().val[1])
    assert abs(record["best"]["metrics"]["id"] - one_accuracy) <= 100 / val_images + 1e-9


def test_a_global_batch_the_processes_cannot_share_equally_is_refused(monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)  # as torchrun sets them (no process group is joined here)
    with pytest.raises(UserError, match=r"^objective.batch_size=16 is not divisible by the 3 processes torchrun "
                                        r"started; choose a batch size that is a multiple of 3"):
        Settings(1, 16, 0.1, None, 1).check("objective")
    Settings(1, 48, 0.1, None, 1).check("objective")
