"""The coarse-to-fine searcher (seed 001, Algorithm 1): bounds never broken, the coarse stage's top K by its key,
the depth / block mutation rates, determinism, bad input through the CLI, and no free reading of the target.

Look-up tables here are made up (``test_latency_lut.fake_table``: random block times, nothing measured) and the
objective is a cheap stand-in (``SumObjective``: the sum of option indices, so the search presses on the bounds);
no supernet is trained.
"""

import numpy as np
import pytest
from conftest import SumObjective
from test_cli_bad_input import refused  # the CLI's one-sentence, exit-2 check
from test_latency_lut import fake_table

from nas_lab.core.config import RunConfig, build
from nas_lab.core.constraint import Constrained, Constraint
from nas_lab.core.joint import SpaceMetrics
from nas_lab.core.runner import run
from nas_lab.core.searcher import cheap_bounds, sample_distinct
from nas_lab.objectives.latency.objective import LatencyObjective
from nas_lab.objectives.latency.table import default_side
from nas_lab.searchers.coarse_to_fine import CoarseToFine
from nas_lab.spaces.autovit import AutoViTSpace
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space

SMALL = {"samples": 300, "keep": 10, "population": 10, "generations": 6, "parents": 4}
PLANNED = 10 + 5 * 10


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Tables go to a fresh folder in every test."""
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def with_table(space):
    """``space`` with a made-up table of random block times (0.05-1 ms) where lookups find it."""
    blocks = space.latency_blocks(default_side(space))
    fake_table(space, times=np.random.default_rng(0).uniform(0.05, 1.0, len(blocks)))
    return space


def bounded(space, latency_quantile=0.3, params_quantile=0.6):
    """SumObjective under ``latency.lut`` and ``params`` bounds at these quantiles of 2,000 random archs."""
    lut, closed = LatencyObjective(space), SpaceMetrics(space)
    sample = space.sample(np.random.default_rng(1), 2000)
    limits = {"latency.lut": float(np.quantile(lut.measure("lut", sample), latency_quantile)),
              "params": float(np.quantile(closed.measure("params", sample), params_quantile))}
    constraints = [Constraint("latency.lut", "<=", limits["latency.lut"]), Constraint("params", "<=", limits["params"])]
    return Constrained(SumObjective(space), constraints, {"latency.lut": lut, "params": closed}), limits


SPACES = [AutoViTSpace(setting="cpu"), NB201Space(), HyViTasSpace()]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_no_proposed_arch_breaks_a_bound(space):
    """Every arch the searcher proposes, coarse seeds and children alike, meets both bounds, and the whole
    schedule (10 seeds + 5 generations of 10) is spent on new archs."""
    objective, limits = bounded(with_table(space))
    asked = []
    searcher = CoarseToFine(**SMALL)
    ask = searcher.ask
    searcher.ask = lambda n: asked.append(ask(n)) or asked[-1]
    result = run(space, objective, searcher, budget=200, seed=4)
    archs = np.concatenate(asked)
    assert len(archs) == len(result.history["index"]) == PLANNED == len(set(space.index(archs).tolist()))
    assert (LatencyObjective(space).measure("lut", archs) <= limits["latency.lut"]).all()
    assert (space.params(archs) <= limits["params"]).all()
    assert space.is_valid(archs).all()
    assert result.history["feasible"].all()
    assert searcher.report()["fine"] == "6 of 6 generations" and "note" not in searcher.report()


@pytest.mark.parametrize("key", ["params", "latency", "eq3", "random"])
def test_coarse_keeps_the_top_k_by_its_key(key):
    """The first generation is the K best by the key among the drawn archs within the bounds (recomputed here from
    the same draws), and nothing drawn within the bounds but left out ranks above the worst one kept."""
    space = with_table(AutoViTSpace(setting="cpu"))
    objective, limits = bounded(space)
    searcher = CoarseToFine(**{**SMALL, "key": key})
    searcher.reset(space, objective, np.random.default_rng(7))
    seeds = searcher.ask(100)
    drawn = sample_distinct(space, np.random.default_rng(7), SMALL["samples"], set())
    lut, params = LatencyObjective(space).measure("lut", drawn), space.params(drawn)
    ok = (lut <= limits["latency.lut"]) & (params <= limits["params"])
    score = {"params": params, "latency": lut, "eq3": -(lut + params / 1e6), "random": np.zeros(len(drawn))}[key][ok]
    expected = drawn[ok][np.argsort(-score, kind="stable")][: SMALL["keep"]]
    np.testing.assert_array_equal(seeds, expected)
    if key != "random":
        kept = np.isin(space.index(drawn[ok]), space.index(seeds))
        assert score[kept].min() >= score[~kept].max()
    assert searcher.report()["coarse"] == f"300 drawn, {ok.sum()} within the bounds, 10 kept by {key}"


def test_depth_and_block_mutation_rates():
    """Mutation moves each depth decision with probability 0.2 and each block decision with 0.4 (20,000 mutants;
    tolerance 0.01 on each pooled rate, about 9 standard errors, and 0.02 per decision), never an inactive one.
    T-4's decisions are left out of the rates: a move of ``stages`` to 3 makes them inactive (reset to option 0)."""
    space = AutoViTSpace(setting="cpu", width_rule="none")
    searcher = CoarseToFine()
    searcher.reset(space, SumObjective(space), np.random.default_rng(0))
    parent = space.from_values({**space.describe(space.sample(np.random.default_rng(1), 1)[0]), "stages": 4,
                                **{f"t4.{d}": v for d, v in (("width", 96), ("depth", 2), ("heads", 2),
                                                              ("mlp_ratio", 1.5))}})
    mutants = searcher.mutate(np.repeat(parent[None], 20000, axis=0))
    moved = mutants != parent
    depth = np.array([n.rsplit(".", 1)[-1] in ("depth", "stages") for n in space.names])
    counted = ~np.array([n.startswith("t4.") for n in space.names])
    rates = moved.mean(axis=0)
    assert abs(moved[:, depth & counted].mean() - 0.2) < 0.01
    assert abs(moved[:, ~depth & counted].mean() - 0.4) < 0.01
    np.testing.assert_allclose(rates[depth & counted], 0.2, atol=0.02)
    np.testing.assert_allclose(rates[~depth & counted], 0.4, atol=0.02)
    assert depth.sum() == 8 and (~depth).sum() == 17  # 3 MBConv depths, stages, 4 transformer depths; the rest
    three = space.from_values({**space.describe(parent), "stages": 3})
    t4 = [space.names.index(f"t4.{d}") for d in ("width", "depth", "heads", "mlp_ratio")]
    assert not (searcher.mutate(np.repeat(three[None], 2000, axis=0))[:, t4] != three[t4]).any()
    assert "no latency bound" in searcher.report()["note"]  # the run here has no bound at all


def test_same_seed_same_run():
    space = with_table(AutoViTSpace(setting="cpu"))
    objective, _ = bounded(space)
    first, again, other = (run(space, objective, CoarseToFine(**SMALL), budget=PLANNED, seed=s) for s in (2, 2, 3))
    np.testing.assert_array_equal(first.history["index"], again.history["index"])
    assert first.best_index == again.best_index
    assert not np.array_equal(first.history["index"], other.history["index"])


# -- bad input through the CLI --------------------------------------------------------------------------------------

#: the objective is a zero-cost proxy, not latency: a bound on the run's own target is no free filter (it is charged),
#: and these refusals all come before anything is evaluated
RUN = ["run", "--no-save", "space=autovit", "space.setting=cpu", "searcher=coarse_to_fine", "objective=zc.params"]


def test_cli_latency_bound_below_the_fastest_subnet(capsys):
    space = with_table(AutoViTSpace(setting="cpu"))
    low = LatencyObjective(space).extent("lut")[0]
    refused(capsys, *RUN, f"constraint=latency.lut<={low / 2}", valid=("leaves no architecture", "latency.lut runs"))
    # above the table's lower bound on the space, below every arch the coarse stage draws: the searcher says so
    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0])  # the runner's searcher generator, seed 0
    fastest = LatencyObjective(space).measure("lut", sample_distinct(space, rng, 100, set())).min()
    assert low < fastest
    refused(capsys, *RUN, "searcher.samples=100", "searcher.keep=10", f"constraint=latency.lut<={(low + fastest) / 2}",
            valid=("among 100 drawn at random meets latency.lut<=", "loosen the bound"))


def test_cli_other_bad_input(capsys):
    refused(capsys, *RUN, "space.variant=xxxl", valid=("space.variant must be one of xxs, xs, s, got 'xxxl'",))
    refused(capsys, *RUN, "constraint=latency.lut<=13", valid=("nas-lab lut build",))  # no table built
    with_table(AutoViTSpace(setting="cpu"))
    refused(capsys, *RUN, "searcher.key=latency", valid=("has none", "constraint=latency.lut<=X"))
    refused(capsys, *RUN, "searcher.key=accuracy", valid=("params, latency, eq3, random",))
    refused(capsys, *RUN, "searcher.keep=20", "searcher.samples=10", valid=("keep must lie in 1..10 (samples)",))
    refused(capsys, *RUN, "searcher.depth_prob=1.5", valid=("depth_prob must lie in [0, 1], got 1.5",))


# -- what the coarse stage may read for free ------------------------------------------------------------------------

def test_a_bound_on_the_target_is_charged_not_read_free(shared_data):
    """On NB201 under ``test.cifar10>=94.2``, the run's own target (an accuracy the table holds for 15,625 trainings),
    the coarse stage filters on the closed-form ``params`` bound only: reading 300 archs' test accuracy from the table
    before proposing them would be free knowledge of the target. The run still works: archs breaking the accuracy
    bound are proposed, evaluated, charged and marked infeasible."""
    cfg = RunConfig(space="nb201", searcher="coarse_to_fine", objective="test.cifar10",
                    constraints=["test.cifar10>=94.2", "params<=1e6"])
    cfg.params["objective"]["table"] = str(shared_data)
    cfg.params["searcher"].update(SMALL)
    space, objective, searcher = build(cfg)
    assert [str(c) for c in objective.constraints] == ["test.cifar10>=94.2", "params<=1e+06"]
    assert [str(c) for c, _ in cheap_bounds(space, objective)] == ["params<=1e+06"]

    searcher.reset(space, objective, np.random.default_rng(7))
    drawn = sample_distinct(space, np.random.default_rng(7), SMALL["samples"], set())
    small = space.params(drawn) <= 1e6
    assert searcher.report()["coarse"] == f"300 drawn, {small.sum()} within the bounds, 10 kept by params"
    assert (objective.measure("test.cifar10", drawn[small]) < 94.2).sum() > 100  # so the accuracy filtered nothing

    result = run(space, objective, CoarseToFine(**SMALL), budget=PLANNED, seed=0)
    archs = space.arch(result.history["index"])
    accuracy = objective.measure("test.cifar10", archs)
    assert len(archs) == PLANNED  # the whole budget spent: every proposed arch evaluated and charged
    assert (space.params(archs) <= 1e6).all()
    np.testing.assert_array_equal(result.history["feasible"], accuracy >= 94.2)
    assert (accuracy[: SMALL["keep"]] < 94.2).any()  # the coarse seeds were not picked by the target


# -- a coarse sample that covers (nearly) the whole space ------------------------------------------------------------

def test_a_whole_space_coarse_sample_still_evolves():
    """Drawing every arch of NB201 in the coarse stage leaves children free to be any of them: the fine stage breeds
    (it used to refuse every child as 'drawn already' and walk the coarse ranking instead)."""
    space = NB201Space()
    kw = {"samples": space.cardinality, "keep": 5, "population": 5}
    result = run(space, SumObjective(space), CoarseToFine(**kw), budget=50, seed=0)
    assert result.evaluations == 50
    children = int(result.searcher_report["fine archs"].split(" children")[0])
    assert children >= 30


def test_the_search_goes_on_until_no_arch_within_the_bounds_is_left():
    """Coarse seeds and children short of a generation: new random archs within the free bound are drawn, so a
    budget as large as the space evaluates every arch within the bound, then says none is left."""
    space = NB201Space()
    closed = SpaceMetrics(space)
    every = closed.measure("params", space.all_archs())
    limit = float(np.quantile(every, 0.5))
    objective = Constrained(SumObjective(space), [Constraint("params", "<=", limit)], {"params": closed})
    kw = {"samples": 15000, "keep": 15000, "population": 200, "generations": 1000}
    result = run(space, objective, CoarseToFine(**kw), budget=space.cardinality, seed=0)
    archs = space.arch(result.history["index"])
    assert result.evaluations == (every <= limit).sum()  # every arch within the bound, each once
    assert (closed.measure("params", archs) <= limit).all()
    assert "no new arch within the bounds left" in result.searcher_report["note"]
    assert int(result.searcher_report["fine archs"].split("coarse, ")[1].split(" new random")[0]) > 0
