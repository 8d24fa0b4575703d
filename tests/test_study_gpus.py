"""GPUs in studies, checked without a GPU: which runs ask for GPUs, what Ray is asked for, which GPU a local
worker sees, and a cuda run on a machine without CUDA still failing with its one sentence."""

import os
import sys
import time
import types

import pytest

from nas_lab.core import parallel
from nas_lab.core.errors import UserError
from nas_lab.core.parallel import GPUS_PER_RUN, parallel_map, visible_gpus
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import chunks, gpus_of, run_study


def study(device="cuda", **searchers):
    return StudyConfig.from_dict({"name": "gpus", "space": "hyvitas", "objectives": ["id"], "repeats": 2,
                                  "budget": 4, "device": device, "searchers": searchers or {"spos": {}, "rea": {}}},
                                 {}, check=False)


def _worker_view(item):
    """What a pool worker sees: its process id and the GPUs CUDA would show it."""
    time.sleep(0.3)  # long enough that the pool starts a second worker for the second item
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


# ---------------------------------------------------------------- which runs need GPUs


def test_runs_that_train_on_cuda_ask_for_gpus_and_the_rest_for_none():
    cells = {chunk[0].searcher: gpus_of(chunk, 1.0) for chunk in chunks(study().runs(), workers=2)}
    assert cells == {"spos": 1.0, "rea": 0.0}  # spos trains a supernet; rea reads the HyViTas table
    cpu = {chunk[0].searcher: gpus_of(chunk, 1.0) for chunk in chunks(study(device="cpu").runs(), workers=2)}
    assert cpu == {"spos": 0.0, "rea": 0.0}
    supernet = StudyConfig.from_dict({**study().to_dict(), "objectives": ["supernet.id"],
                                      "searchers": {"rea": {}}}, {}, check=False).runs()[0]
    assert gpus_of([supernet], 0.5) == 0.5  # a cheap searcher over a supernet objective trains too
    assert study(device="cuda:1").runs()[0].run_config().device == "cuda:1"


def test_gpus_per_run_is_a_declared_setting_with_bounds():
    assert GPUS_PER_RUN.name == "executor.gpus_per_run" and GPUS_PER_RUN.default == 1.0
    assert GPUS_PER_RUN.coerce("0.25") == 0.25
    with pytest.raises(UserError, match=r"executor.gpus_per_run must lie in"):
        GPUS_PER_RUN.coerce("-1")


# ---------------------------------------------------------------- the GPUs a process sees


def test_visible_gpus_follow_cuda_visible_devices_or_nvidia_smi(monkeypatch, tmp_path):
    for listed, seen in (("2,3", ["2", "3"]), ("GPU-5d1c,1", ["GPU-5d1c", "1"]), ("0,-1,2", ["0"]), ("", [])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
        assert visible_gpus() == seen, listed
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert visible_gpus() == ["0", "1"]
    monkeypatch.setattr(parallel.shutil, "which", lambda name: None)
    assert visible_gpus() == []


# ---------------------------------------------------------------- local workers


def test_local_workers_are_pinned_one_gpu_each_round_robin(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # two GPUs this process sees (none need exist)
    seen = list(parallel_map(_worker_view, [0, 1, 2, 3], workers=2, gpus=[1.0] * 4))
    by_worker = {}
    for pid, gpu in seen:
        by_worker.setdefault(pid, set()).add(gpu)
    assert all(len(g) == 1 for g in by_worker.values())  # a worker keeps its GPU for every run it takes
    gpus = [g.pop() for g in by_worker.values()]
    assert set(gpus) <= {"5", "7"} and len(set(gpus)) == len(gpus)  # worker slots 0, 1 -> GPUs 5, 7
    assert os.getpid() not in by_worker
    cpu_only = list(parallel_map(_worker_view, [0, 1], workers=2, gpus=[0.0, 0.0]))
    assert {gpu for _, gpu in cpu_only} == {"5,7"}  # runs that need no GPU are not pinned


def test_without_gpus_the_local_pool_is_not_pinned(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    seen = list(parallel_map(_worker_view, [0, 1], workers=2, gpus=[1.0, 1.0]))
    assert {gpu for _, gpu in seen} == {""}


# ---------------------------------------------------------------- Ray resources


class FakeRay(types.ModuleType):
    """Stands in for ``ray``: records the resources each task is submitted with and runs it at once."""

    def __init__(self, cluster_gpus: float):
        super().__init__("ray")
        self.cluster_gpus, self.asked, self._on = cluster_gpus, [], False

    def is_initialized(self):
        return self._on

    def init(self, **kwargs):
        self._on = True

    def shutdown(self):
        self._on = False

    def cluster_resources(self):
        return {"CPU": 4.0, **({"GPU": self.cluster_gpus} if self.cluster_gpus else {})}

    def remote(self, fn):
        ray = self

        class Remote:
            def options(self, **resources):
                ray.asked.append(resources)
                return types.SimpleNamespace(remote=lambda item: fn(item))

        return Remote()

    def wait(self, pending, num_returns):
        return pending[:num_returns], pending[num_returns:]

    def get(self, result):
        return result


@pytest.mark.parametrize("cluster, asked", [(2.0, [1.0, 0.0, 1.0]), (0.0, [0.0, 0.0, 0.0])])
def test_ray_tasks_reserve_the_gpus_of_runs_that_train_on_cuda(monkeypatch, cluster, asked):
    fake = FakeRay(cluster)
    monkeypatch.setitem(sys.modules, "ray", fake)
    results = list(parallel_map(str, [1, 2, 3], workers=2, executor="ray", gpus=[1.0, 0.0, 1.0]))
    assert results == ["1", "2", "3"]
    assert [r["num_gpus"] for r in fake.asked] == asked  # a cluster without GPUs is asked for none


def test_run_study_passes_each_chunks_gpus_to_the_executor(monkeypatch, tmp_path):
    fake = FakeRay(4.0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setattr("nas_lab.study.engine.run_chunk", lambda specs: [])
    run_study(study(), tmp_path / "s", workers=2, executor="ray", gpus_per_run=0.5)
    # the spos runs (one chunk each, first) ask for half a GPU each; rea's chunks (one run each here), for none
    assert [r["num_gpus"] for r in fake.asked] == [0.5, 0.5, 0.0, 0.0]


# ---------------------------------------------------------------- no GPU here


def test_a_cuda_run_without_cuda_is_still_one_sentence(monkeypatch, tmp_path, capsys):
    import torch

    from nas_lab.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tmp_path / "gpu.yaml"
    config.write_text("name: nogpu\nspace: hyvitas\nobjectives: [id]\nrepeats: 1\nbudget: 2\ndevice: cuda\n"
                      "searchers: {spos: {epochs: 1}}\n")
    assert main(["study", str(config), f"out={tmp_path / 's'}", "workers=1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "nas-lab: error: device=cuda was asked for but torch finds no CUDA GPU here; use device=cpu"
    assert not (tmp_path / "s" / "runs.jsonl").exists()  # refused when the study was read, before any run
