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


def test_capabilities_follow_what_a_space_overrides_and_declares(space):
    from nas_lab.core.space import Decision, Space
    from nas_lab.spaces.autovit import AutoViTSpace
    from nas_lab.spaces.nb201 import NB201Space
    from nas_lab.spaces.poolvit import PoolViTSpace

    base = {"sample", "mutate", "crossover", "neighbors", "encode", "index"}
    assert space.capabilities() == base | {"build", "supernet", "params", "flops", "latency", "resolution",
                                           "num_classes", "rectifiers", "supernet_recipe"}
    assert NB201Space().capabilities() == base | {"build", "params", "latency", "num_classes", "rectifiers",
                                                  "supernet_recipe"}
    assert PoolViTSpace().capabilities() == base | {"build", "supernet", "params", "flops", "macs", "lowest",
                                                   "highest", "default_constraints", "resolution", "num_classes",
                                                   "zero_cost_batch", "rectifiers", "supernet_recipe"}
    assert {"supernet_recipe", "highest", "macs"} <= AutoViTSpace().capabilities()
    assert "rectifiers" not in AutoViTSpace().capabilities()

    class Bare(Space):
        name = "bare"
        decisions = (Decision("a", (0, 1), "size"),)

    bare = Bare()  # the base declares every optional part with a default that offers nothing
    assert bare.capabilities() == base | {"rectifiers"}
    assert (bare.resolution, bare.num_classes, bare.zero_cost_batch, dict(bare.supernet_recipe)) == (
        None, None, None, {})
    with pytest.raises(NotImplementedError, match="space 'bare' has no closed-form params"):
        bare.params(bare.all_archs())


def test_spaces_are_values_named_by_their_settings_off_default():
    from nas_lab.core import registry
    from nas_lab.spaces.autovit import AutoViTSpace
    from nas_lab.spaces.poolvit import PoolViTSpace
    from nas_lab.spaces.vitas import ViTASSpace

    names = {  # as before the names were built from the declarations: caches and result files are keyed by them
        AutoViTSpace(variant="xs"): "autovit-xs",
        AutoViTSpace("xxs", per_layer=True, width_rule="increasing", head_dim=8, mb_expansion=2, patch=1):
            "autovit-xxs-per_layer=True-width_rule=increasing-head_dim=8-mb_expansion=2-patch=1",
        AutoViTSpace(setting="cpu", num_classes=10): "autovit-xxs-setting=cpu-num_classes=10",
        PoolViTSpace(cnn_blocks=1, vit_blocks=2, image_size=64, num_classes=100):
            "poolvit-cnn_blocks=1-vit_blocks=2-image_size=64-num_classes=100",
        PoolViTSpace(num_classes=10): "poolvit",
        ViTASSpace(setting="cpu", positions=4, budget_macs=0.5e6): "vitas-setting=cpu-positions=4-budget_macs=500000",
        ViTASSpace(setting="cpu", patch_sizes=(4, 8), budget_macs=1e6, positions=8):
            "vitas-setting=cpu-positions=8-patch_sizes=4,8-budget_macs=1e+06",
        ViTASSpace(private_qk=True): "vitas",  # the default when heads are searched
        ViTASSpace(private_qk=False): "vitas-private_qk=False",
        registry.create("space", "vitas", {"setting": "large", "heads": "3,6", "budget_macs": "1e9"}):
            "vitas-setting=large-heads=3,6-budget_macs=1e+09",
    }
    assert {space.name: name for space, name in names.items()} == {name: name for name in names.values()}
    assert PoolViTSpace(num_classes=10) == PoolViTSpace() and hash(PoolViTSpace(num_classes=10)) == hash(PoolViTSpace())
    assert PoolViTSpace(image_size=64) != PoolViTSpace() and ViTASSpace(private_qk=True) == ViTASSpace()
    assert len({AutoViTSpace(), AutoViTSpace("xxs"), AutoViTSpace(setting="cpu"), AutoViTSpace("xs")}) == 3
    assert ViTASSpace(private_qk=False) != ViTASSpace() and ViTASSpace() != PoolViTSpace()


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
