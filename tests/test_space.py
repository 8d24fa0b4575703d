"""The Space base operators, checked on the real HyViTas space."""

import numpy as np
import pytest

from nas_lab.core.errors import UserError
from nas_lab.core.searcher import sample_distinct


def test_index_and_arch_are_inverse_over_the_whole_space(space):
    archs = space.all_archs()
    assert archs.shape == (6561, 8)
    assert np.array_equal(space.index(archs), np.arange(6561))
    assert len(np.unique(archs, axis=0)) == 6561
    # last decision varies fastest
    assert space.arch(1).tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


def test_mutate_changes_exactly_k_decisions(space):
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 500)
    for k in (1, 3):
        child = space.mutate(archs, rng, k)
        assert ((child != archs).sum(axis=1) == k).all()
        assert ((child >= 0) & (child < space.sizes)).all()


def test_mutation_reaches_every_other_option(space):
    rng = np.random.default_rng(1)
    parent = np.zeros((3000, 8), dtype=np.int64)
    child = space.mutate(parent, rng)
    changed = child[child != parent]
    assert set(changed.tolist()) == {1, 2}


def test_crossover_takes_each_decision_from_a_parent(space):
    rng = np.random.default_rng(2)
    a, b = space.sample(rng, 200), space.sample(rng, 200)
    c = space.crossover(a, b, rng)
    assert ((c == a) | (c == b)).all()
    assert (c != a).any() and (c != b).any()


def test_neighbors_differ_in_one_decision(space):
    arch = np.array([1, 0, 2, 1, 0, 2, 1, 0])
    nb = space.neighbors(arch)
    assert len(nb) == 16
    assert ((nb != arch).sum(axis=1) == 1).all()
    assert len(np.unique(space.index(nb))) == 16


def test_encode_is_one_hot(space):
    archs = space.sample(np.random.default_rng(3), 10)
    x = space.encode(archs)
    assert x.shape == (10, 24)
    assert (x.sum(axis=1) == 8).all()
    assert (x.reshape(10, 8, 3).argmax(axis=2) == archs).all()


def test_describe_and_from_values_round_trip(space):
    arch = np.array([2, 1, 0, 2, 1, 0, 2, 1])
    values = space.describe(arch)
    assert values["conv.kernel"] == 7 and values["stage4.dim"] == 192
    assert space.from_values(values).tolist() == arch.tolist()


def test_from_values_and_check_reject_bad_input(space):
    values = space.describe(np.zeros(8, dtype=int))
    with pytest.raises(UserError, match="not an option of 'stage1.dim'; valid: 16, 32, 48"):
        space.from_values({**values, "stage1.dim": 24})
    with pytest.raises(UserError, match="missing decision"):
        space.from_values({"conv.kernel": 3})
    with pytest.raises(UserError, match="out of range"):
        space.check([[0, 0, 0, 0, 0, 0, 0, 3]])


def test_sample_distinct_never_repeats_and_can_exhaust_the_space(space):
    rng = np.random.default_rng(4)
    seen: set[int] = set()
    first = sample_distinct(space, rng, 100, seen)
    assert len(np.unique(space.index(first))) == 100 and len(seen) == 100
    rest = sample_distinct(space, rng, 10_000, seen)
    assert len(rest) == 6561 - 100
    assert len(seen) == 6561
    assert len(sample_distinct(space, rng, 5, seen)) == 0


def test_capabilities_follow_what_a_space_overrides(space):
    from nas_lab.spaces.nb201 import NB201Space

    assert {"mutate", "encode", "build", "supernet"} <= space.capabilities()
    assert "build" in NB201Space().capabilities() and "supernet" not in NB201Space().capabilities()


def test_a_space_may_number_its_archs_in_its_own_order():
    from nas_lab.core.space import Decision, Space

    class Reversed(Space):
        name = "reversed"
        decisions = (Decision("a", (0, 1, 2), "size"), Decision("b", (0, 1), "size"))

        def index_order(self):
            return np.arange(6)[::-1].copy()

    s = Reversed()
    assert s.index([[0, 0], [2, 1]]).tolist() == [5, 0]
    assert s.arch([5, 0]).tolist() == [[0, 0], [2, 1]]
    assert np.array_equal(s.index(s.all_archs()), np.arange(6))
