"""Spaces far past int64 and spaces with conditional decisions: exact indices, one arch per class of equivalent
option combinations, and the runner, searchers and store working on both."""

import json

import numpy as np
import pytest
from conftest import SumObjective

from nas_lab.core.errors import UserError
from nas_lab.core.results import RunResult
from nas_lab.core.runner import run
from nas_lab.core.space import Decision, Space
from nas_lab.searchers.random import RandomSearch
from nas_lab.searchers.rea import RegularizedEvolution


class Stack(Space):
    """ViTAS-shaped: patch, embedding, then ``positions`` blocks, each identity or (heads, qkv, mlp) choices."""

    conditional = True

    def __init__(self, positions: int = 16, ratios: int = 10):
        self.positions = positions
        self.name = f"stack{positions}"
        r = tuple(range(1, ratios + 1))
        self.decisions = (Decision("patch", (14, 16, 32), "topology"), Decision("embed", r, "size")) + tuple(
            d for i in range(positions) for d in (
                Decision(f"b{i}.block", ("identity", "transformer"), "topology"),
                Decision(f"b{i}.heads", (3, 6, 12, 16), "size"),
                Decision(f"b{i}.qkv", r, "size"), Decision(f"b{i}.mlp", r, "size")))
        super().__init__()
        self._per_block = 1 + 4 * ratios * ratios

    def active(self, archs):
        a = np.atleast_2d(archs)
        out = np.ones(a.shape, dtype=bool)
        for i in range(self.positions):
            out[:, 3 + 4 * i: 6 + 4 * i] = (a[:, 2 + 4 * i] == 1)[:, None]
        return out

    @property
    def cardinality(self) -> int:
        return 3 * len(self.decisions[1].options) * self._per_block ** self.positions


@pytest.fixture(scope="module")
def vitas_like():
    return Stack()


def test_indices_are_exact_python_ints_past_int64(vitas_like):
    s = vitas_like
    assert s.big and s.cardinality == 3 * 10 * 401**16  # ≈ 1.34e43, as ViTAS counts its space
    archs = s.sample(np.random.default_rng(0), 500)
    idx = s.index(archs)
    assert idx.dtype == object and max(idx) > 2**63
    assert (s.arch(idx) == archs).all()  # exact both ways
    last = s.arch(s.combinations - 1)
    assert (last == s.sizes - 1).all() and s.index(last[None])[0] == s.combinations - 1


def test_archs_equal_on_active_decisions_are_one_arch(vitas_like):
    s = vitas_like
    rng = np.random.default_rng(1)
    a = s.sample(rng, 200)
    off = a[:, 2] == 0  # first position is an identity: its widths are inactive
    assert off.any() and (a[off, 3:6] == 0).all()  # samples are representatives
    b = a.copy()
    b[off, 3:6] = rng.integers(1, 4, (int(off.sum()), 3))
    assert (s.index(b) == s.index(a)).all()
    enc = s.encode(a[off][:1])
    assert enc[0, s._offsets[3]: s._offsets[6]].sum() == 0  # no one-hot for inactive decisions


def test_mutation_moves_only_active_decisions_and_never_returns_the_parent(vitas_like):
    s = vitas_like
    rng = np.random.default_rng(2)
    parents = s.sample(rng, 300)
    children = s.mutate(parents, rng, 1)
    assert (s.index(children) != s.index(parents)).all()
    changed = (children != parents) & s.active(parents)
    switched_on = (children[:, 2::4] != parents[:, 2::4]).any(axis=1)
    assert ((changed.sum(axis=1) == 1) | switched_on).all()


def test_small_conditional_space_is_counted_by_enumeration():
    s = Stack(positions=2, ratios=2)

    class Counted(Stack):
        cardinality = Space.cardinality  # the base class's enumeration

    assert Counted(positions=2, ratios=2).cardinality == s.cardinality == 3 * 2 * 17**2
    every = Counted(positions=2, ratios=2).all_archs()
    assert len(np.unique(s.index(every))) == len(every) == s.cardinality
    assert len(s.neighbors(every[0])) == len(np.unique(s.index(s.neighbors(every[0]))))


@pytest.mark.parametrize("searcher", [RandomSearch(), RegularizedEvolution(population=20, tournament=5)])
def test_runs_and_store_records_on_a_huge_space(vitas_like, searcher):
    result = run(vitas_like, SumObjective(vitas_like), searcher, budget=150, seed=0)
    assert result.evaluations == 150 and len(set(result.history["index"].tolist())) == 150
    assert isinstance(result.best_index, int)
    record = json.loads(json.dumps(result.to_record()))
    assert record["history"]["index"] == result.history["index"].tolist()  # big ints survive JSON exactly
    back = RunResult.from_record(record)
    assert back.history["index"].dtype == object and back.best_index == result.best_index
    assert (vitas_like.arch(back.history["index"]) == vitas_like.arch(result.history["index"])).all()
    frame = back.history_frame(vitas_like)  # the run's decisions, option by option
    archs = vitas_like.arch(result.history["index"])
    assert frame["index"].tolist() == result.history["index"].tolist()
    for j, d in enumerate(vitas_like.decisions):
        assert frame[d.name].tolist() == [d.options[i] for i in archs[:, j]]


def test_describe_leaves_out_inactive_decisions_and_reads_back(vitas_like):
    arch = vitas_like.sample(np.random.default_rng(5), 50)
    arch = arch[arch[:, 2] == 0][0]  # first position is an identity
    described = vitas_like.describe(arch)
    assert "b0.block" in described and "b0.heads" not in described
    assert (vitas_like.from_values(described) == arch).all()
    described.pop("b0.block")
    with pytest.raises(UserError, match="missing decision"):
        vitas_like.from_values(described)


@pytest.mark.parametrize("name", ["bananas", "gp", "reinforce", "nsga2", "optuna"])
def test_every_searcher_runs_on_a_huge_conditional_space(vitas_like, name):
    from nas_lab.core import registry

    result = run(vitas_like, SumObjective(vitas_like), registry.create("searcher", name, {}), budget=40, seed=0)
    assert result.evaluations == 40 and len(set(result.history["index"].tolist())) == 40


def test_a_table_for_a_space_past_int64_is_checked_in_memory_of_its_rows(tmp_path):
    """Counting rows per arch allocated one counter per arch of the space (10^43 on ViTAS); now one per row."""
    import tracemalloc

    import pandas as pd

    from nas_lab.core import registry
    from nas_lab.objectives.tabular.table import Table

    space = registry.create("space", "vitas", {})
    archs = space.sample(np.random.default_rng(0), 3)
    frame = pd.DataFrame({d.name: np.asarray(d.options, dtype=object)[archs[:, i]]
                          for i, d in enumerate(space.decisions)})
    frame["id"] = [70.0, 71.0, 72.0]
    frame.to_csv(tmp_path / "vitas.csv", index=False)
    tracemalloc.start()
    try:
        with pytest.raises(UserError,
                           match=f"lacks {space.cardinality - 3} of the {space.cardinality} archs of space 'vitas'"):
            Table.load(tmp_path / "vitas.csv", space)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
