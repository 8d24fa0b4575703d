"""NB201 space: NATS indexing, arch strings, equivalent cells, models and their size.

The checks marked ``shared_data`` compare with the released benchmark data in
``../shared/data`` over all 15,625 cells and are skipped when it is absent.
"""

import csv
import itertools

import numpy as np
import pytest
import torch

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.spaces.nb201 import NB201Space

SPACE = NB201Space()
ALL = SPACE.all_archs()
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def nats(shared_data):
    with open(shared_data / "nats_bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [r[key] for r in rows] for key in ("ArchitectureString", "UniqueString")}


def test_decisions_and_registration():
    assert SPACE.names == ("node1.in0", "node2.in0", "node2.in1", "node3.in0", "node3.in1", "node3.in2")
    assert {d.options for d in SPACE.decisions} == {
        ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    }
    assert {d.tag for d in SPACE.decisions} == {"topology"}
    assert SPACE.cardinality == 15_625
    assert registry.load("space", "nb201") is NB201Space


def test_index_is_a_permutation_with_known_rows():
    # rows 0 and 6111 (the best CIFAR-10 cell) of the released table
    first = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    np.testing.assert_array_equal(SPACE.index(SPACE.from_strings([first, BEST_C10])), [0, 6111])
    mixed_radix = np.array(list(itertools.product(range(5), repeat=6)))
    np.testing.assert_array_equal(np.sort(SPACE.index(mixed_radix)), np.arange(SPACE.cardinality))
    np.testing.assert_array_equal(SPACE.arch(SPACE.index(mixed_radix)), mixed_radix)


def test_index_matches_every_row_of_nats_bench(nats):
    strings = nats["ArchitectureString"]
    np.testing.assert_array_equal(SPACE.index(SPACE.from_strings(strings)), np.arange(len(strings)))
    assert [SPACE.to_string(a) for a in ALL] == strings


def test_string_round_trip_and_describe():
    np.testing.assert_array_equal(SPACE.from_strings([SPACE.to_string(a) for a in ALL]), ALL)
    arch = SPACE.from_strings(BEST_C10)
    assert arch.shape == (1, 6)
    assert SPACE.describe(arch[0])["node3.in0"] == "skip_connect"
    assert SPACE.describe(arch[0])["node3.in2"] == "nor_conv_1x1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|none~0|+|none~0|none~1|",  # two nodes only
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~3|",  # wrong source node
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing bar
        "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|",  # edges out of order
    ],
)
def test_malformed_string_names_the_valid_form(bad):
    with pytest.raises(UserError, match=r"valid form is \|op~0\|\+\|op~0\|op~1\|\+\|op~0\|op~1\|op~2\|"):
        SPACE.from_strings([BEST_C10, bad])


def test_unknown_op_names_the_valid_ops():
    with pytest.raises(UserError, match="unknown op 'nor_conv_5x5'.*valid ops: none, skip_connect"):
        SPACE.from_strings(ALL_NONE.replace("none~1|+", "nor_conv_5x5~1|+"))


def test_canonical_partition_equals_nb201_unique_strings(nats):
    # Same groups as the released UniqueString column, and each id is its group's smallest index.
    _, group = np.unique(nats["UniqueString"], return_inverse=True)
    smallest = np.full(group.max() + 1, SPACE.cardinality)
    np.minimum.at(smallest, group, np.arange(SPACE.cardinality))
    ids = SPACE.canonical(ALL)
    np.testing.assert_array_equal(ids, smallest[group])
    assert len(np.unique(ids)) == 6_466


def test_function_notion_merges_nb201_classes():
    nb201, function = SPACE.canonical(ALL), SPACE.canonical(ALL, notion="function")
    assert len(np.unique(function)) == 4_930
    # coarser: every NB201 class lies inside one functional class
    assert len(np.unique(np.stack([nb201, function]), axis=1)[0]) == len(np.unique(nb201))
    # both cells output their input; NB201 tells them apart by the zero edges on the way
    identity = SPACE.from_strings(
        [
            "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
            "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|",
        ]
    )
    assert len(set(SPACE.canonical(identity, notion="function"))) == 1
    assert len(set(SPACE.canonical(identity))) == 2
    # an op whose input node is zero carries nothing: the cell has no path at all
    dead = SPACE.from_strings(["|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|", ALL_NONE])
    assert len(set(SPACE.canonical(dead, notion="function"))) == 1


def test_canonical_rejects_unknown_notion():
    with pytest.raises(UserError, match="valid: nb201, function"):
        SPACE.canonical(ALL[:1], notion="weights")


def test_closed_form_params_equal_built_models():
    archs = np.vstack([SPACE.sample(np.random.default_rng(0), 20), SPACE.from_strings([ALL_NONE, BEST_C10])])
    np.testing.assert_array_equal(SPACE.params(archs), [n_params(SPACE.build(a)) for a in archs])
    assert SPACE.params(archs[-1], num_classes=120)[0] == n_params(SPACE.build(archs[-1], num_classes=120))


def test_params_over_the_space():
    params = SPACE.params(ALL)
    assert params.dtype == np.int64
    # no parametric op / six 3x3 convs; NB201 quotes ~1.5 M for its largest cell
    assert (params.min(), params.max()) == (73_306, 1_531_546)


@pytest.mark.parametrize(
    "dataset, classes, unit", [("cifar10", 10, 1e6), ("cifar100", 100, 1e6), ("ImageNet16-120", 120, 1)]
)
def test_params_equal_freerea_counts(shared_data, dataset, classes, unit):
    # FreeREA's counts for every NATS index (millions to 6 decimals, raw counts for ImageNet16-120)
    table = np.loadtxt(shared_data / "freerea_nats" / dataset / "params.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], np.arange(SPACE.cardinality))
    theirs = np.round(table[:, 1] * unit).astype(np.int64)
    np.testing.assert_array_equal(SPACE.params(ALL, num_classes=classes), theirs)


def test_forward_gives_logits_per_image():
    torch.manual_seed(0)
    out = SPACE.build(SPACE.from_strings(BEST_C10)[0])(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_output_ignores_the_input_only_when_no_cell_path_exists():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 3, 32, 32)
    dead, skip = SPACE.from_strings(
        [ALL_NONE, "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"]
    )
    dead_model, skip_model = SPACE.build(dead).eval(), SPACE.build(skip).eval()
    with torch.no_grad():
        dead_out = [dead_model(batch) for batch in x]
        skip_out = [skip_model(batch) for batch in x]
    torch.testing.assert_close(dead_out[0], dead_out[1], rtol=0, atol=0)
    assert not torch.allclose(skip_out[0], skip_out[1])
