"""Shared fixtures: the HyViTas space, a tiny hand-made objective over it, and the real benchmark data."""

from pathlib import Path

import numpy as np
import pytest

from nas_lab.core.objective import Evaluation, Objective
from nas_lab.spaces.hyvitas import HyViTasSpace

#: real published benchmark data, read-only, next to the repository (see its SOURCES.md)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


#: the tiny study the ``study`` fixture writes
STUDY = """\
name: tiny
space: hyvitas
budget: 5
repeats: 1
objectives: [id]
searchers: {random: {}}
"""


class SumObjective(Objective):
    """Value = sum of option indices (optimum 16 at the all-last arch); cost 1 per arch.

    ``nan_at`` and ``infeasible_at`` mark arch indices as diverged or infeasible.
    """

    name = "sum"
    targets = ("sum",)
    directions = ("max",)

    def __init__(self, space, nan_at=(), infeasible_at=()):
        self.space = space
        self.nan_at = set(nan_at)
        self.infeasible_at = set(infeasible_at)
        self.calls = 0

    def evaluate(self, archs, rng):
        self.calls += len(archs)
        idx = self.space.index(archs)
        values = archs.sum(axis=1).astype(float)
        values[np.isin(idx, list(self.nan_at))] = np.nan
        return Evaluation(
            values=values[:, None],
            directions=self.directions,
            cost=np.ones(len(archs)),
            feasible=~np.isin(idx, list(self.infeasible_at)),
        )

    def report(self, archs):
        return {"sum": archs.sum(axis=1).astype(float)}


def untimed(record: dict) -> dict:
    """A run record without its ``timing`` (wall-clock seconds): what the config and seed fix."""
    return {k: v for k, v in record.items() if k != "timing"}


class Counting:
    """An objective wrapper counting the archs it is asked to evaluate."""

    def __init__(self, inner):
        self.inner, self.evaluated = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, archs, rng):
        self.evaluated.extend(self.inner.space.index(archs).tolist())
        return self.inner.evaluate(archs, rng)


@pytest.fixture
def study(tmp_path):
    """A tiny study config; ``study(extra)`` replaces or adds its top-level YAML lines."""

    def write(extra: str = "", name: str = "study.yaml"):
        keys = {line.split(":")[0] for line in extra.splitlines() if line.strip()}
        body = "".join(line + "\n" for line in STUDY.splitlines() if line.split(":")[0] not in keys)
        path = tmp_path / name
        path.write_text(body + extra + "\n")
        return str(path)

    return write


@pytest.fixture(scope="session")
def space():
    return HyViTasSpace()


@pytest.fixture
def sum_objective(space):
    return SumObjective(space)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``; tests that need it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA} (the project never copies it into the repo)")
    return SHARED_DATA
