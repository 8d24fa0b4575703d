"""The decoupled searcher (seed 002): phases that move only their own decisions, determinism, the parameter cap,
the data-free reason for decoupling, the one-tag fallback and bad input through the CLI."""

import warnings

import numpy as np
import pytest
from test_cli_bad_input import refused  # the CLI's one-sentence, exit-2 check

from nas_lab.core.constraint import Constrained, Constraint
from nas_lab.core.errors import UserError
from nas_lab.core.joint import SpaceMetrics
from nas_lab.core.objective import Evaluation, Objective
from nas_lab.core.runner import run
from nas_lab.searchers.decoupled import DecoupledSearch
from nas_lab.spaces.nb201 import NB201Space

SMALL = {"topology_metric": "topo", "size_metric": "size", "subpopulations": 3, "subpopulation_size": 8,
         "subpopulation_tournament": 3, "subpopulation_budget": 15, "handover": 4, "population": 12,
         "tournament": 4, "phases": 4, "phase_budget": 25}
PLANNED = 3 * 15 + 4 * 25


class TwoProxies(Objective):
    """Stand-ins for the two proxies: ``topo`` rewards high options of topology decisions only, ``size`` the
    options of size decisions (the largest networks score highest, as LogSynflow does)."""

    name = "topo,size"
    targets = ("topo", "size")
    directions = ("max", "max")

    def __init__(self, space):
        self.space = space
        self.topology = np.array([d.tag == "topology" for d in space.decisions])

    def evaluate(self, archs, rng):
        a = np.asarray(archs, dtype=float)
        topo = (a[:, self.topology] ** 2).sum(axis=1)
        size = a[:, ~self.topology].sum(axis=1) + 0.1 * topo
        return Evaluation(np.column_stack([topo, size]), self.directions, np.ones(len(a)), np.ones(len(a), bool))


def capped(space, bound: float):
    return Constrained(TwoProxies(space), [Constraint.parse(f"params<={bound}")], {"params": SpaceMetrics(space)})


def test_mutate_mask_moves_only_marked_decisions(space):
    rng = np.random.default_rng(0)
    archs = space.sample(rng, 500)
    mask = np.array([d.tag == "size" for d in space.decisions])
    for k in (1, 2, 8):
        out = space.mutate(archs, rng, k, mask)
        changed = out != archs
        assert not changed[:, ~mask].any()
        assert (changed.sum(axis=1) == min(k, mask.sum())).all()


def test_phases_never_move_the_other_tags_decisions(space):
    searcher = DecoupledSearch(**SMALL)
    seeds, children = {}, []  # per phase: frozen decisions of the archs it started from; (phase, mask, members, archs)
    ask = searcher.ask

    def recording(n):
        archs = ask(n)
        stage = searcher._stages[min(searcher._current, len(searcher._stages) - 1)]
        if stage.mask is not None and len(archs):
            frozen = space.arch(np.array(stage.pool))[:, ~stage.mask]
            seeds.setdefault(stage.name, {tuple(a) for a in frozen})  # first ask: the pool is the seeds
            members = {tuple(a) for a in space.arch(np.array(stage.members))[:, ~stage.mask]}
            children.append((stage.name, stage.mask, members, archs))
        return archs

    searcher.ask = recording
    result = run(space, capped(space, 2e6), searcher, budget=PLANNED, seed=3)
    assert set(seeds) == {"topology phase 1", "size phase 2", "topology phase 3", "size phase 4"}
    for name, mask, members, archs in children:  # each child keeps the frozen decisions of a member
        assert all(tuple(child) in members for child in archs[:, ~mask]), name
    for stage in searcher._stages[3:]:  # so no arch of a phase carries frozen decisions its seeds lacked
        frozen = {tuple(a) for a in space.arch(np.array(stage.pool))[:, ~stage.mask]}
        assert frozen <= seeds[stage.name], stage.name
        assert stage.new > 0
    assert result.best_index is not None


def test_same_seed_same_run(space):
    a = run(space, capped(space, 2e6), DecoupledSearch(**SMALL), budget=PLANNED, seed=7)
    b = run(space, capped(space, 2e6), DecoupledSearch(**SMALL), budget=PLANNED, seed=7)
    c = run(space, capped(space, 2e6), DecoupledSearch(**SMALL), budget=PLANNED, seed=8)
    assert a.history["index"].tolist() == b.history["index"].tolist()
    assert a.best_index == b.best_index and a.searcher_report == b.searcher_report
    assert a.history["index"].tolist() != c.history["index"].tolist()


@pytest.mark.parametrize("bound", [6e5, 1.2e6, 2e6])
def test_pick_respects_the_cap_and_no_proxy_is_spent_beyond_it(space, bound):
    objective = capped(space, bound)
    result = run(space, objective, DecoupledSearch(**SMALL), budget=PLANNED, seed=1)
    params = space.params(space.arch(result.history["index"]))
    assert (params <= bound).all()  # children beyond the cap are redrawn before anything is evaluated
    assert space.params(space.arch(result.best_index)[None])[0] <= bound
    # the size phase pushes to the cap: the pick uses most of it
    assert space.params(space.arch(result.best_index)[None])[0] >= 0.6 * bound
    # the pick is the last (size) phase's fittest by size, on a topology the topology phases chose
    assert result.searcher_report["final stage"].startswith("size phase 4 of 7")
    best = space.arch(result.best_index)
    topology = np.array([d.tag == "topology" for d in space.decisions])
    assert best[topology].sum() >= 3  # of 4 (two topology decisions, options 0..2)


def test_cap_no_arch_meets_is_refused_before_any_evaluation(space):
    with pytest.raises(UserError, match="constraint params<=1000 leaves no architecture of space 'hyvitas': params "
                                        "runs from 4.989e.05 to 4.037e.06"):
        capped(space, 1e3)  # below the smallest arch: the constrained objective refuses it, nothing runs


def test_one_tag_space_runs_as_the_single_metric_search_with_a_warning():
    space = NB201Space()
    with pytest.warns(UserWarning, match="only topology decisions"):
        degraded = run(space, TwoProxies(space), DecoupledSearch(**SMALL), budget=PLANNED, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = run(space, TwoProxies(space), DecoupledSearch(**{**SMALL, "fitness": "topology"}), budget=PLANNED,
                    seed=2)
    assert degraded.history["index"].tolist() == plain.history["index"].tolist()
    assert degraded.best_index == plain.best_index
    assert "nothing is decoupled" in degraded.searcher_report["note"]


def test_combined_fitness_is_the_sum_of_max_normalised_proxies(space):
    searcher = DecoupledSearch(**{**SMALL, "fitness": "combined"})
    result = run(space, TwoProxies(space), searcher, budget=PLANNED, seed=4)
    values = result.history["value"]
    idx = result.history["index"][:5]
    expected = (values[:5] / values.max(axis=0)).sum(axis=1)
    np.testing.assert_allclose(searcher._score(idx.tolist(), "combined"), expected, rtol=1e-12)
    assert result.searcher_report["final stage"].startswith("phase 4 of 7")


def test_widening_grows_logsynflow_and_leaves_the_entropic_score_nearly_flat(space):
    """Seed 002, Table 4: on a size-only space the Entropic Score barely ranks (tau 0.03), LogSynflow does (0.76).
    Data-free: every size decision of HyViTas from its smallest to its largest option (params x8), topology fixed,
    at 32 px, batch 2."""
    import torch

    from nas_lab.objectives.zero_cost.proxies import evaluate_proxies

    size = np.array([d.tag == "size" for d in space.decisions])
    scores = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small float64 models: threads on a busy machine only slow them down
    try:
        for topology in (0, 2):
            for width in (0, 2):
                arch = np.where(size, width, topology)
                scores[topology, width] = evaluate_proxies(space, arch, ["entropic", "logsynflow"], resolution=32,
                                                           batch_size=2)
    finally:
        torch.set_num_threads(threads)
    for topology in (0, 2):
        narrow, wide = scores[topology, 0], scores[topology, 2]
        assert wide["logsynflow"] > 4 * narrow["logsynflow"]  # measured x8.0
        assert abs(wide["entropic"] / narrow["entropic"] - 1) < 0.1  # measured +3 % and -5 %
    # the Entropic Score does move with the topology: kernels 3 -> 7 change it more than any widening
    topology_shift = abs(scores[2, 0]["entropic"] / scores[0, 0]["entropic"] - 1)
    assert topology_shift > 0.3  # measured 36 %


# -- bad input through the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def zc_run(tmp_path):
    return ["run", "--no-save", "space=hyvitas", "searcher=decoupled", "objective=zc.logsynflow",
            f"objective.cache={tmp_path / 'zc.sqlite'}"]


def test_cli_cap_no_arch_meets(capsys, zc_run):
    refused(capsys, *zc_run, "budget=900", "constraint=params<=1000", valid=("meets params<=1000", "loosen"))


def test_cli_unknown_proxy(capsys, zc_run):
    refused(capsys, *zc_run, "budget=900", "searcher.topology_metric=zc.entropy",
            valid=("unknown zero-cost proxy 'entropy'", "entropic"))


def test_cli_budget_below_the_plan(capsys, zc_run):
    refused(capsys, *zc_run, "budget=100", valid=("plans 900 evaluations", "budget=900"))


def test_cli_bad_parameters(capsys, zc_run):
    refused(capsys, *zc_run, "searcher.fitness=both", valid=("decoupled, combined, topology, size",))
    refused(capsys, *zc_run, "searcher.subpopulation_budget=10",
            valid=("subpopulation_budget must lie in 25..10,000,000 (subpopulation_size), got 10",))
