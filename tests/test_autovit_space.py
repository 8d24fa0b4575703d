"""The AutoViT space (seed 001, Table 1): decisions per variant, exact cardinalities (closed form against brute-force
enumeration of reduced variants), the width rule, conditional T-4 and per-layer decisions, and bad input (one
sentence, exit 2)."""

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest

from nas_lab.cli.main import main
from nas_lab.core.errors import UserError
from nas_lab.spaces.autovit import VARIANTS, AutoViTSpace, Variant

XXS, XS, S = (AutoViTSpace(v) for v in ("xxs", "xs", "s"))


def arch(space, values: dict | None = None, **short):
    """The arch with these decision values (``{"t1.width": 64}`` or ``t1_width=64``), option 0 elsewhere."""
    out = np.zeros(space.dim, dtype=np.int64)
    for name, value in {**(values or {}), **{k.replace("_", ".", 1): v for k, v in short.items()}}.items():
        i = space.names.index(name)
        out[i] = space.decisions[i].options.index(value)
    return space.representative(out)


def test_decisions_are_table_1():
    d = {x.name: x.options for x in XXS.decisions}
    assert d["stem.width"] == (16, 24) and d["mb1.width"] == (16, 24) and d["mb3.width"] == (32, 48)
    assert d["mb1.depth"] == (1, 2) and d["mb2.depth"] == d["mb3.depth"] == (2, 3) and d["stages"] == (3, 4)
    assert [d[f"t{j}.width"] for j in range(1, 5)] == [(48, 64), (64, 80), (80, 96), (96, 112)]
    assert d["t2.depth"] == (2, 3, 4, 5) and d["t3.heads"] == (2, 3, 4) and d["t4.mlp_ratio"] == (1.5, 2.0)
    assert d["pool.width"] == (1000, 1280) and XXS.dim == 1 + 6 + 1 + 4 * 4 + 1
    xs, s = ({x.name: x.options for x in sp.decisions} for sp in (XS, S))
    assert (xs["mb2.width"] == s["mb2.width"] == (32, 48) and xs["t4.width"] == (112, 128)
            and xs["t1.heads"] == (4, 5, 6))
    assert s["t1.width"] == (64, 96) and s["t4.width"] == (160, 192) and s["t1.heads"] == (7, 8, 9)
    assert s["pool.width"] == (1280, 1560)
    tags = {x.name: x.tag for x in XXS.decisions}
    assert {n for n, t in tags.items() if t == "topology"} == {"mb1.depth", "mb2.depth", "mb3.depth", "stages",
                                                                "t1.depth", "t2.depth", "t3.depth", "t4.depth"}
    layered = AutoViTSpace("xxs", per_layer=True)
    assert "t2.layer5.heads" in layered.names and "t2.heads" not in layered.names and layered.dim == 9 + 4 * 12


def test_cardinalities_have_closed_forms_and_are_not_the_papers():
    """The paper says 10^16 cut to 10^10 by the width rule; Table 1 gives 1.39e9 (heads and ratio per stage) or
    3.10e19 (per layer), and the rule removes at most a factor 3.2."""
    rest = 2 * 4**3 * 2  # stem, three MobileNetV2 stages (width x depth), pool
    per_stage, per_layer = 2 * 4 * 3 * 2, 2 * sum(6**d for d in (2, 3, 4, 5))
    for space in (XXS, XS, S):
        assert space.cardinality == rest * (per_stage**3 + per_stage**4) == 1_387_266_048
        assert AutoViTSpace(space.variant, per_layer=True).cardinality == rest * (per_layer**3 + per_layer**4)
    assert f"{AutoViTSpace('xxs', per_layer=True).cardinality:.3e}" == "3.096e+19"
    assert XXS.valid_cardinality == 1_040_449_536  # 3/4: a 24-wide stem before a 16-wide MB-1 is out
    assert XS.valid_cardinality == S.valid_cardinality == XS.cardinality  # Table 1's options never shrink there
    assert AutoViTSpace("xxs", width_rule="increasing").valid_cardinality == 329_121_792
    assert AutoViTSpace("s", width_rule="increasing").valid_cardinality == 438_829_056
    assert AutoViTSpace("s", width_rule="none").valid_cardinality == S.cardinality


#: reduced variants small enough to enumerate every option combination (at most a few hundred thousand)
REDUCED = {
    "per stage": (Variant("count", (16, 24), ((16, 24), (24, 32), (32, 48)), ((1,), (2,), (2, 3)),
                          ((48, 64), (64, 80), (80, 96), (96, 112)), (2, 3), (2, 3), (2.0,), (3, 4), (1000,)), False),
    "per layer": (Variant("count", (16,), ((24,), (16, 32), (32,)), ((1,), (2,), (2,)),
                          ((32, 48), (48, 64), (64, 80), (80, 96)), (1, 2), (2, 3), (2.0,), (3, 4), (1000, 1280)),
                  True),
}


@pytest.mark.parametrize("name", REDUCED)
@pytest.mark.parametrize("rule", ["nondecreasing", "increasing", "none"])
def test_closed_form_counts_equal_brute_force_enumeration(name, rule):
    variant, per_layer = REDUCED[name]
    space = AutoViTSpace(variant, per_layer=per_layer, width_rule=rule)
    assert space.combinations <= 600_000
    every = space.all_archs()  # one representative per class of archs equal on their active decisions
    assert len(every) == len(np.unique(space.index(every))) == space.cardinality
    assert int(space.is_valid(every).sum()) == space.valid_cardinality
    if rule != "none":
        assert space.valid_cardinality < space.cardinality


def test_width_rule_filters_sampling_mutation_and_crossover():
    bad = arch(XXS, stem_width=24, mb1_width=16)
    assert not XXS.is_valid(bad)[0] and AutoViTSpace("xxs", width_rule="none").is_valid(bad)[0]
    assert XXS.is_valid(arch(XXS, stem_width=24, mb1_width=24))[0]
    inc = AutoViTSpace("xxs", width_rule="increasing")
    flat = arch(inc, stages=4, t1_width=64, t2_width=64)  # equal widths: non-decreasing, not increasing
    assert XXS.is_valid(flat)[0] and not inc.is_valid(flat)[0]
    # T-4 counts only when it runs: 96 after 96 is fine with 3 stages
    assert inc.is_valid(arch(inc, stages=3, t3_width=96, t4_width=96))[0]
    assert not inc.is_valid(arch(inc, stages=4, t3_width=96, t4_width=96))[0]
    rng = np.random.default_rng(0)
    for space in (XXS, inc):
        archs = space.sample(rng, 2000)
        assert space.is_valid(archs).all()
        assert space.is_valid(space.mutate(archs, rng)).all()
        assert space.is_valid(space.crossover(archs[:1000], archs[1000:], rng)).all()
        assert space.is_valid(space.neighbors(archs[0])).all()
    # uniform decisions keep 3/4 of XXS draws; the sampler returns only those
    stems, mb1 = (XXS._values(archs, n) for n in ("stem.width", "mb1.width"))
    assert ((stems == 16) | (mb1 == 24)).all()


def test_a_three_stage_arch_ignores_t4_decisions():
    three = arch(XXS, stages=3, t3_width=96)
    moved = three.copy()
    for name in ("t4.width", "t4.depth", "t4.heads", "t4.mlp_ratio"):
        moved[XXS.names.index(name)] = 1
    assert XXS.index(moved) == XXS.index(three)
    assert not any(k.startswith("t4.") for k in XXS.describe(moved))
    assert XXS.params(moved)[0] == XXS.params(three)[0] and XXS.macs(moved)[0] == XXS.macs(three)[0]
    plan = XXS.plan(moved[None])
    assert plan["t_width"][0, 3] == 0 and plan["heads"][0, 3].sum() == 0 and len(XXS.shape(moved).transformer) == 3
    four = moved.copy()
    four[XXS.names.index("stages")] = 1
    assert XXS.params(four)[0] > XXS.params(moved)[0] and len(XXS.shape(four).transformer) == 4
    active = XXS.active(XXS.sample(np.random.default_rng(1), 500))
    t4 = [XXS.names.index(n) for n in XXS.names if n.startswith("t4.")]
    assert 0.4 < active[:, t4[0]].mean() < 0.6 and (active[:, t4] == active[:, t4[:1]]).all()


def test_per_layer_heads_and_ratios_are_inactive_beyond_the_depth():
    space = AutoViTSpace("xxs", per_layer=True)
    a = arch(space, {"stages": 3, "t1.depth": 2, "t1.layer1.heads": 4, "t1.layer2.mlp_ratio": 2.0, "t1.width": 64})
    active = dict(zip(space.names, space.active(a[None])[0]))
    assert active["t1.layer2.heads"] and not active["t1.layer3.heads"] and not active["t4.layer1.heads"]
    shape = space.shape(a)
    assert shape.transformer[0] == (64, ((4, 96), (2, 128)))  # (heads, MLP width = ratio x 64) per layer
    assert len(shape.transformer) == 3 and all(len(layers) == 2 for _, layers in shape.transformer)


def test_parameters_name_the_space():
    assert XXS.name == "autovit-xxs" and AutoViTSpace("xs").name == "autovit-xs"
    assert AutoViTSpace("s", setting="cpu", per_layer=True).name == "autovit-s-setting=cpu-per_layer=True"
    assert AutoViTSpace("xxs", head_dim=16).name == "autovit-xxs" and XXS == AutoViTSpace("xxs")
    assert XXS != XS and AutoViTSpace("xxs", mb_expansion=2) != XXS
    assert (XXS.variant, XXS.setting, XXS.width_rule, XXS.head_dim) == ("xxs", "paper", "nondecreasing", 16)
    cpu = AutoViTSpace("xxs", setting="cpu")
    assert (XXS.resolution, XXS.min_side, cpu.resolution, cpu.min_side, cpu.num_classes) == (256, 64, 32, 16, 10)
    assert XXS.check_side(128) == 128 and set(VARIANTS) == {"xxs", "xs", "s"}


BAD = [
    ({"variant": "xl"}, "space.variant must be one of xxs, xs, s, got 'xl'"),
    ({"variant": "XS"}, "space.variant must be one of xxs, xs, s, got 'XS'"),
    ({"setting": "tiny"}, "space.setting must be one of paper, cpu, got 'tiny'"),
    ({"width_rule": "strict"}, "space.width_rule must be one of nondecreasing, increasing, none, got 'strict'"),
    ({"head_dim": 0}, "space.head_dim must lie in 1..128, got 0"),
    ({"mb_expansion": 1_000_000}, "space.mb_expansion must lie in 1..16, got 1,000,000"),
    ({"num_classes": 10**9}, "space.num_classes must lie in 2..100,000, got 1,000,000,000"),
    ({"patch": 9}, "space.patch must lie in 1..8, got 9"),
    ({"setting": "cpu", "patch": 8},
     "space.patch=8 does not divide the 4 x 4 last map of setting 'cpu'; valid: 1, 2, 4"),
]


@pytest.mark.parametrize("params,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_parameters_are_refused_with_one_sentence(params, message):
    with pytest.raises(UserError) as err:
        AutoViTSpace(**params)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("args,message", [
    (["space.variant=xl"], "space.variant must be one of xxs, xs, s, got 'xl'"),
    (["space.width_rule=up"], "space.width_rule must be one of nondecreasing, increasing, none, got 'up'"),
    (["space.mb_expansion=1e6"], "space.mb_expansion must lie in 1..16, got 1,000,000"),
    (["space.per_layer=maybe"], "space.per_layer must be true or false"),
    (["space.setting=cpu", "objective.resolution=40"], "must be a multiple of 16 from 16 to 2048 px"),
])
def test_bad_input_exits_2_through_the_cli(args, message):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", "space=autovit", *args, "searcher=random", "objective=zc.params", "budget=2", "--no-save"])
    err = err.getvalue()
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_space_and_costs_stay_torch_free():
    code = ("import sys, numpy as np\n"
            "from nas_lab.spaces.autovit import AutoViTSpace\n"
            "s = AutoViTSpace('s', per_layer=True); a = s.sample(np.random.default_rng(0), 100)\n"
            "s.params(a); s.macs(a); s.index(a); s.encode(a); s.mutate(a, np.random.default_rng(1))\n"
            "s.valid_cardinality\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
