"""The poolvit space: decisions and their tags, conditional decisions, exact cardinality, validity, the exact
parameter range, and the 100,000-parameter default constraint with its bad input through the CLI."""

import json

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core.config import RunConfig, build
from nas_lab.core.constraint import Constrained, Constraint, run_constraints
from nas_lab.core.errors import UserError
from nas_lab.core.objective import Objective
from nas_lab.core.space import Decision, Space
from nas_lab.spaces.poolvit import PoolViTSpace

SPACE = PoolViTSpace()


def test_decisions_and_tags():
    tags = {d.name: d.tag for d in SPACE.decisions}
    assert SPACE.dim == 3 + 2 * 6 + 2 + 3 * 10 and SPACE.name == "poolvit"
    assert {n for n, t in tags.items() if t == "size"} == {
        "stem.channels", "cnn1.channels", "cnn1.ratio", "cnn2.channels", "cnn2.ratio",
        *(f"vit{i}.{f}" for i in (1, 2, 3) for f in ("channels", "ratio", "head_dim"))}
    assert SPACE.decisions[SPACE.names.index("cnn1")].options == ("residual", "bottleneck", "mbconv")
    assert SPACE.decisions[SPACE.names.index("vit2")].options == ("identity", "mhsa", "poolvit")
    assert PoolViTSpace(vit_blocks=2, cnn_blocks=1).name == "poolvit-cnn_blocks=1-vit_blocks=2"


def values(**changes):
    """A full arch as a ``{decision: value}`` dict, from a fixed base."""
    base = {"stem.kernel": 3, "stem.stride": 1, "stem.channels": 16, "cnn1": "residual", "cnn1.channels": 16,
            "cnn1.kernel": 3, "cnn1.stride": 1, "cnn1.groups": 1, "cnn1.ratio": 1, "cnn2": "identity", "pool": "max",
            "pool.kernel": 3, "vit1": "poolvit", "vit1.kernel": 3, "vit1.pool": "avg", "vit1.channels": 32,
            "vit1.heads": 2, "vit1.head_dim": 8, "vit2": "identity", "vit3": "identity"}
    return SPACE.from_values({**base, **changes})


def test_inactive_decisions_follow_the_kinds():
    described = SPACE.describe(values())
    assert "cnn1.ratio" not in described and "cnn1.groups" in described  # a residual block has no ratio
    assert not any(k.startswith(("cnn2.", "vit2.")) for k in described)  # identity positions
    assert "vit1.block" not in described and "vit1.stride" not in described and described["vit1.pool"] == "avg"
    mbconv = SPACE.describe(values(**{"cnn1": "mbconv", "cnn1.ratio": 4}))
    assert "cnn1.groups" not in mbconv and mbconv["cnn1.ratio"] == 4
    mhsa = SPACE.describe(values(**{"vit1": "mhsa", "vit1.block": "bottleneck", "vit1.stride": 2, "vit1.groups": 2,
                                    "vit1.ratio": 2}))
    assert "vit1.pool" not in mhsa and mhsa["vit1.groups"] == 2 and mhsa["vit1.ratio"] == 2
    # changing an inactive decision gives the same arch (same index)
    a = values()
    b = a.copy()
    b[SPACE.names.index("cnn1.ratio")] = 2
    assert SPACE.index(a) == SPACE.index(b)


def test_cardinality_is_the_product_of_what_each_position_counts():
    """The closed form against enumeration: per stem / position / pooling block, the distinct representatives of
    every combination of its decisions (the others at option 0) multiply to the cardinality."""
    space = PoolViTSpace(cnn_blocks=2, vit_blocks=2)
    groups = ["stem", "cnn1", "cnn2", "pool", "vit1", "vit2"]
    product = 1
    for prefix in groups:
        cols = [i for i, n in enumerate(space.names) if n == prefix or n.startswith(prefix + ".")]
        combos = np.indices(space.sizes[cols]).reshape(len(cols), -1).T
        archs = np.zeros((len(combos), space.dim), dtype=np.int64)
        archs[:, cols] = combos
        product *= len(np.unique(space.representative(archs), axis=0))
    assert space.cardinality == product
    assert SPACE.cardinality == 766_149_108_684_696_000 < SPACE.combinations


def test_validity_needs_a_2x2_last_map_and_groups_dividing_the_bottleneck():
    small = values(**{"stem.stride": 2, "cnn1.stride": 2, "vit1": "mhsa", "vit1.block": "residual",
                      "vit1.stride": 2, "vit1.groups": 1, "vit1.ratio": 1})  # 32 -> 16 -> 8 -> pool 4 -> 2
    assert SPACE.is_valid(small[None])[0]
    smaller = small.copy()
    smaller[SPACE.names.index("vit2")] = SPACE.decisions[SPACE.names.index("vit2")].options.index("poolvit")
    assert not SPACE.is_valid(smaller[None])[0]  # a Pool-ViT pattern halves 2 x 2 to 1 x 1
    odd = values(**{"cnn1": "bottleneck", "cnn1.channels": 24, "cnn1.ratio": 4, "cnn1.groups": 4})  # width 6
    assert not SPACE.is_valid(odd[None])[0]
    assert SPACE.is_valid(values(**{"cnn1": "bottleneck", "cnn1.channels": 24, "cnn1.ratio": 4,
                                    "cnn1.groups": 2})[None])[0]
    assert SPACE.is_valid(SPACE.sample(np.random.default_rng(0), 2000)).all()


def test_the_parameter_range_is_exact():
    """The dynamic programme's range holds every sampled arch, and descending by one-decision moves from random
    archs reaches its minimum and never goes below it."""
    low, high = SPACE.params_range()
    assert (low, high) == (1120, 1_653_738)
    rng = np.random.default_rng(1)
    params = SPACE.params(SPACE.sample(rng, 5000))
    assert low <= params.min() and params.max() <= high
    ends = []
    for arch in SPACE.sample(rng, 12):  # local minima (1,182 and 1,306) trap some descents
        while True:
            near = SPACE.neighbors(arch)
            p = SPACE.params(near)
            if p.min() >= SPACE.params(arch[None])[0]:
                break
            arch = near[p.argmin()]
        ends.append(int(SPACE.params(arch[None])[0]))
    assert min(ends) == low and SPACE.lowest("params") == low and SPACE.lowest("macs") is None


def test_the_largest_settings_still_build_a_small_model():
    """The declared bounds keep every model buildable: the largest has 9.0 million parameters."""
    largest = PoolViTSpace(cnn_blocks=4, vit_blocks=4, image_size=512, num_classes=100_000)
    assert largest.params_range() == (1_700_950, 9_036_960) and largest.highest("params") == 9_036_960


def test_the_default_constraint_applies_unless_the_run_bounds_params():
    assert [str(c) for c in run_constraints(SPACE, [])] == ["params<=100000"]
    assert [str(c) for c in run_constraints(SPACE, ["params<=2e5", "macs<=1e7"])] == ["params<=200000",
                                                                                     "macs<=1e+07"]
    assert [str(c) for c in run_constraints(SPACE, ["params<=inf"])] == ["params<=inf"]
    cfg = RunConfig(space="poolvit", objective="supernet.id", searcher="random")
    _, objective, _ = build(cfg)
    assert objective.info()["constraints"] == ["params<=100000"]
    archs = SPACE.sample(np.random.default_rng(2), 200)
    assert isinstance(objective, Constrained)
    measured = objective.measure("params", archs)
    np.testing.assert_array_equal(measured, SPACE.params(archs))
    assert 0 < (measured <= 1e5).sum() < len(archs)  # the cap cuts the space, and leaves most of it


class Tiny(Space):
    name = "tiny"
    decisions = (Decision("width", (1, 2), "size"),)
    default_constraints = ("params<=5",)

    def lowest(self, metric):
        return 3.0 if metric == "params" else None


class TinyParams(Objective):
    """Any objective measuring ``params`` on Tiny: 3 or 4 by width."""

    targets, directions = ("params",), ("min",)

    def __init__(self, space):
        self.space, self.name = space, "params"

    def measure(self, metric, archs):
        return 3.0 + np.asarray(archs)[:, 0]


def test_a_cap_below_the_smallest_arch_is_refused_by_the_objectives_extent():
    """``Space.lowest`` reaches every objective through ``Objective.extent``: one check, in ``Constrained``."""
    objective = TinyParams(Tiny())
    assert objective.extent("params") == (3.0, float("inf")) and objective.extent("macs") is None
    with pytest.raises(UserError, match=r"^constraint params<2 leaves no architecture of space 'tiny': the smallest "
                                        r"has params 3; give a bound above it$"):
        Constrained(objective, [Constraint("params", "<", 2)])
    kept = Constrained(objective, [Constraint("params", "<", 4)])
    assert kept.extent("params") == (3.0, float("inf"))
    assert run_constraints(Tiny(), ["params>=9"]) == [Constraint("params", "<=", 5), Constraint("params", ">=", 9)]
    assert run_constraints(Tiny(), ["params<2"]) == [Constraint("params", "<", 2)]  # merging only; judged above


@pytest.mark.parametrize("args, text", [
    (["constraint=params<=1000"],
     "constraint params<=1000 leaves no architecture of space 'poolvit': params runs from 1120 to"),
    (["space.vit_blocks=0"], "space.vit_blocks must lie in 1..4, got 0"),
    (["space.image_size=big"], "space.image_size must be a whole number, got 'big'"),
    (["space.image_size=1e6"], "space.image_size must lie in 8..512, got 1,000,000"),
    (["space.num_classes=1e9"], "space.num_classes must lie in 2..100,000, got 1,000,000,000"),
    (["objective=supernet.id", "dataset.image_size=64"], "dataset.image_size must be 32 px for space 'poolvit'"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, args, text):
    code = main(["run", "space=poolvit", "objective=zc.synflow", "budget=2", "--no-save", "--no-progress", *args])

    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (out, err)
    assert text in err, err


def test_a_search_reports_an_arch_under_the_cap(capsys, monkeypatch, tmp_path):
    """A random search maximising the parameter count: the best arch respects the default 100 k cap."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path))
    code = main(["run", "space=poolvit", "space.vit_blocks=2", "objective=zc.params", "searcher=random", "budget=6",
                 "--no-save", "--no-progress", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    space = PoolViTSpace(vit_blocks=2)
    best = space.from_values(record["best"]["arch"])
    assert space.params(best[None])[0] <= 100_000 < space.params(space.sample(np.random.default_rng(0), 50)).max()


def test_a_multi_objective_run_reports_its_front(capsys, monkeypatch, tmp_path):
    """The space's indices exceed int64 (Python ints): the front of a two-metric run is described all the same."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path))
    code = main(["run", "space=poolvit", "objective=zc.params,macs", "searcher=random", "budget=4", "--no-save",
                 "--no-progress", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    front = json.loads(out)["front"]
    assert SPACE.big and len(front["index"]) >= 1 and all(index > 2**63 for index in front["index"])
    for index, arch in zip(front["index"], front["archs"], strict=True):
        assert SPACE.index(SPACE.from_values(arch)) == index
