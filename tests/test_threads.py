"""``threads=``: the CPU threads a run computes with, bounded, applied around the whole run, and recorded."""

import pytest
import torch

import nas_lab
from nas_lab.cli import run as run_command
from nas_lab.cli.main import main
from nas_lab.searchers.random import RandomSearch
from nas_lab.study import engine
from nas_lab.study.config import StudyConfig


class ThreadSpy(RandomSearch):
    """Random search that notes torch's thread count whenever it is asked for archs."""

    name = "thread_spy"

    def ask(self, n):
        self.seen = torch.get_num_threads()
        return super().ask(n)


@pytest.mark.parametrize("value", ["0", "1e9", "-1", "two"])
def test_bad_thread_counts_are_refused_in_one_sentence(capsys, value):
    assert main(["run", f"threads={value}", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nas-lab: error: threads must ") and ("1..1,024" in err or "whole number" in err)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_run_computes_with_its_threads_and_restores_them_after(threads):
    before = torch.get_num_threads()
    spy = ThreadSpy()
    result = nas_lab.run(searcher=spy, budget=3, threads=threads)
    assert spy.seen == threads
    assert torch.get_num_threads() == before
    assert result.config["threads"] == threads


def test_the_cli_runs_on_one_thread_by_default_and_records_it(capsys, monkeypatch, tmp_path):
    seen = []

    def spied(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    real = run_command.run
    monkeypatch.setattr(run_command, "run", spied)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["run", "budget=3", "--no-save", "--json"]) == 0
        assert seen == [1]
        assert main(["run", "budget=3", "threads=2", "--no-save", "--json"]) == 0
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(before)
    assert '"threads": 2' in capsys.readouterr().out


def test_study_runs_compute_on_the_run_default_and_their_records_say_so(monkeypatch):
    """A study takes no ``threads:`` of its own: its workers are its parallelism, each run on the run default."""
    seen = []

    def spied(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    real = engine.run
    monkeypatch.setattr(engine, "run", spied)
    study = StudyConfig.from_dict({"name": "t", "budget": 3, "repeats": 2, "objectives": ["id"],
                                   "searchers": {"random": {}}}, {})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        records = engine.run_chunk(study.runs())
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1] and [r["config"]["threads"] for r in records] == [1, 1]
