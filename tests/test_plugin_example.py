"""A third-party searcher registered by entry point works with the registry, runner and CLI.

The example package in ``examples/nas_lab_hillclimb`` is made importable with a
real ``.dist-info`` whose ``entry_points.txt`` is written from the package's own
``pyproject.toml``, which is what ``pip install`` would do.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from nas_lab.core import registry
from nas_lab.core.config import RunConfig, build
from nas_lab.core.runner import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nas_lab_hillclimb"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    info = tmp_path / f"nas_lab_hillclimb-{meta['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, eps in meta["entry-points"].items():
        lines += [f"[{group}]", *(f"{k} = {v}" for k, v in eps.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    yield os.pathsep.join([str(tmp_path), str(EXAMPLE)])
    registry._entry_points.cache_clear()


def test_plugin_searcher_is_listed_built_and_run(installed):
    assert "hillclimb" in registry.names("searcher")
    space, objective, searcher = build(RunConfig().apply(["searcher=hillclimb", "objective=id"]))
    result = run(space, objective, searcher, budget=60, seed=0)
    assert result.evaluations == 60
    assert result.best_metrics["id"] > result.history["value"][0, 0]


def test_plugin_parameters_reach_the_plugin(installed):
    # without restarts the climber ends on a local optimum and the runner stops it there
    space, objective, searcher = build(RunConfig().apply(["searcher=hillclimb", "searcher.restarts=false"]))
    assert searcher.restarts is False
    result = run(space, objective, searcher, budget=200, seed=0)
    assert result.evaluations < 200 and "stopped early" in result.note
    best = space.arch(result.best_index)
    neighbours = objective.evaluate(space.neighbors(best), None).values[:, 0]
    assert (neighbours <= result.best_metrics["id"]).all()


def test_plugin_searcher_runs_from_the_command_line(installed):
    env = {**os.environ, "PYTHONPATH": installed}
    out = subprocess.run(
        [sys.executable, "-m", "nas_lab.cli.main", "run", "searcher=hillclimb", "budget=30", "--no-save"],
        capture_output=True, text=True, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "searcher   hillclimb (restarts=True)" in out.stdout
