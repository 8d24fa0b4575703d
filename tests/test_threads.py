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


@pytest.fixture
def threads_seen(monkeypatch):
    """``spy(module)``: the torch thread counts ``module.run`` (the runner as that module calls it) is entered
    with, torch set to 2 threads outside, so that a limit of 1 shows."""
    seen = []

    def spy(module):
        real = module.run

        def spied(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, "run", spied)
        return seen

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield spy
    torch.set_num_threads(before)


def test_the_cli_runs_on_one_thread_by_default_and_records_it(capsys, threads_seen):
    seen = threads_seen(run_command)
    assert main(["run", "budget=3", "--no-save", "--json"]) == 0
    assert main(["run", "budget=3", "threads=2", "--no-save", "--json"]) == 0
    assert seen == [1, 2]
    assert '"threads": 2' in capsys.readouterr().out


def test_study_runs_compute_on_the_run_default_and_their_records_say_so(threads_seen):
    """A study takes no ``threads:`` of its own: its workers are its parallelism, each run on the run default."""
    seen = threads_seen(engine)
    study = StudyConfig.from_dict({"name": "t", "budget": 3, "repeats": 2, "objectives": ["id"],
                                   "searchers": {"random": {}}}, {})
    records = engine.run_chunk(study.runs())
    assert seen == [1, 1] and [r["config"]["threads"] for r in records] == [1, 1]
