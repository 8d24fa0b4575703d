"""Training-free decoupled evolutionary search (seed 002, ESFormer): one proxy shapes the topology, another sizes it.

Seed 002 finds the Entropic Score good at ranking topologies and blind to width
(Kendall tau 0.03 on a size-only space), and LogSynflow the reverse (0.76 on
size, 0.31 on topology), so it searches each kind of decision with the proxy
that sees it. Every decision of a space is tagged ``topology`` or ``size``
(``core.space.Decision``); this searcher is why.

Stages, each an aging evolution (REA) with FreeREA's operators: per step, a
tournament's two fittest members give two children, a mutant of the fittest
with 1 to ``mutations`` decisions changed (uniform) and a uniform crossover of
the two; both join, the two oldest members leave.

1. Multi-start: ``subpopulations`` (5) independent random populations of
   ``subpopulation_size`` (25, tournament 5), fitness the topology metric,
   every decision mutable.
2. Main search: population ``population`` (50, tournament 10), ``phases`` phases
   alternating a topology phase (fitness ``topology_metric``, only topology
   decisions move) and a size phase (fitness ``size_metric``, only size
   decisions move). Crossover takes the frozen decisions from the fittest
   parent, so a topology phase never changes a size decision and vice versa.

The proxies come from the objective, never from networks built here: a metric
that is one of the objective's targets is read from the evaluation
(``objective=zc.entropic,zc.logsynflow``), any other is asked of the objective
(``objective.measure``: ``objective=zc.logsynflow`` measures ``zc.entropic``
from the same zero-cost cache). Both are maximised.

The paper's stages last minutes (3 per subpopulation, 5 per phase); here
they last a number of new archs evaluated (``subpopulation_budget`` 60,
``phase_budget`` 100: the same 3:5 ratio, 900 in all), so runs are
deterministic; ``time_limit`` (seconds) can end each stage earlier, at its
share of the limit in proportion to its budget. A stage whose last ``STALL``
(100) children were all archs evaluated before has converged and ends early,
leaving its unspent budget unused.

Choices where the paper is silent:

- Handed on: the ``handover`` (10) fittest of each subpopulation, so five
  subpopulations fill the main population of 50; each later phase starts from
  the ``population`` fittest archs of the previous phase (its starting members
  included) by that phase's fitness, the least fit of them aging out first.
- First phase: ``first="topology"``; with 6 phases the search ends on a size
  phase, so the final model is sized by LogSynflow on a topology the Entropic
  Score chose.
- Final model (``Searcher.pick``): the fittest feasible arch of the last phase
  by that phase's fitness; not the best of the run by either proxy (the largest
  network under the cap wins LogSynflow regardless of topology).
- Constraints (``'constraint=params<=3.5e6'``): archs breaking a bound are never
  members' parents nor the pick (fitness -inf). Children and random members
  that break a bound measured cheaply (closed-form ``params``) are redrawn
  before they are proposed, so no proxy is computed for them; a bound that no
  random arch meets in ``DRAW_ROUNDS`` rounds of draws is refused.
- A space whose decisions all carry one tag (NB201: six topology edges) has
  nothing to decouple; rather than refuse, the search runs with that tag's
  metric in every stage (``fitness=topology`` on NB201), says so in its report
  and warns, so the ablation still runs on the one space with a real table.

``fitness`` runs the ablation of seed 002's Table 5 with the same stages and
operators: ``size`` (LogSynflow only), ``combined`` (FreeREA's sum of the two
proxies, each divided by the largest value seen so far in the run), every
decision mutable in every stage; ``topology`` likewise with the Entropic Score.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.objective import CUT, EVALUATED, Evaluation, default_direction
from nas_lab.core.searcher import Searcher, cheap_bounds, sample_distinct, within
from nas_lab.core.settings import Setting
from nas_lab.core.space import TAGS

FITNESS = ("decoupled", "combined", "topology", "size")
#: a stage whose last this many children were all archs evaluated before has converged, and ends
STALL = 100
#: candidates drawn per round, and rounds, when looking for archs within a cheaply measured bound
DRAW_ROUNDS = 50


@dataclass
class _Stage:
    """One evolution: a subpopulation of the multi-start or one phase of the main search."""

    name: str
    fitness: str  # topology, size or combined
    mask: np.ndarray | None  # decisions that may change (None: all)
    size: int
    tournament: int
    budget: int  # new archs to evaluate
    share: float  # seconds of the time limit (inf without one)
    fill: bool = True  # starts from random members (a subpopulation, or a phase with nothing handed on)
    members: list[int] = field(default_factory=list)  # arch indices, oldest first
    pool: list[int] = field(default_factory=list)  # every arch the stage held, for its best
    new: int = 0
    idle: int = 0  # archs told since the last new one
    started: float | None = None


class DecoupledSearch(Searcher):
    """Training-free decoupled evolution (Entropic Score for topology, LogSynflow for size), seed 002."""

    name = "decoupled"
    title = "Decoupled"
    needs = ("sample", "mutate", "crossover")
    multi_objective = True  # reads its two proxies from a two-target objective as well as from one

    def __init__(
        self,
        topology_metric: Annotated[str, Setting(help="metric that judges topology decisions")] = "zc.entropic",
        size_metric: Annotated[str, Setting(help="metric that judges size decisions")] = "zc.logsynflow",
        fitness: Annotated[str, Setting(choices=FITNESS,
                                        help="decoupled: each tag by its own metric; topology or "
                                             "size: that metric throughout; combined: both")] = "decoupled",
        subpopulations: Annotated[int, Setting(ge=1, le=10_000,
                                               help="independent topology searches before the phases")] = 5,
        subpopulation_size: Annotated[int, Setting(ge=1, le="space.cardinality",
                                                   help="members of each subpopulation")] = 25,
        subpopulation_tournament: Annotated[int, Setting(ge=1, le="subpopulation_size",
                                                         help="tournament of a subpopulation")] = 5,
        subpopulation_budget: Annotated[int, Setting(ge="subpopulation_size", le=10_000_000,
                                                     help="new archs per subpopulation (its random members "
                                                          "come first)")] = 60,
        handover: Annotated[int, Setting(ge=1, le="subpopulation_size",
                                         help="best members each subpopulation hands to the phases")] = 10,
        population: Annotated[int, Setting(ge=1, le="space.cardinality",
                                           help="members of the phases' population")] = 50,
        tournament: Annotated[int, Setting(ge=1, le="population", help="tournament of the phases")] = 10,
        phases: Annotated[int, Setting(ge=1, le=10_000, help="alternating topology and size phases")] = 6,
        phase_budget: Annotated[int, Setting(ge=1, le=10_000_000, help="new archs per phase")] = 100,
        first: Annotated[str, Setting(choices=TAGS, help="tag of the first phase")] = "topology",
        mutations: Annotated[int, Setting(ge=1, le="space.dim", help="decisions changed per child")] = 2,
        time_limit: Annotated[float | None, Setting(gt=0, le=1e9,
                                                    help="seconds for the whole search, shared by its stages "
                                                         "(none: no limit)")] = None,
    ):
        self.topology_metric = topology_metric
        self.size_metric = size_metric
        self.fitness = fitness
        self.subpopulations = subpopulations
        self.subpopulation_size = subpopulation_size
        self.subpopulation_tournament = subpopulation_tournament
        self.subpopulation_budget = subpopulation_budget
        self.handover = handover
        self.population = population
        self.tournament = tournament
        self.phases = phases
        self.phase_budget = phase_budget
        self.first = first
        self.mutations = mutations
        self.time_limit = time_limit

    @property
    def planned(self) -> int:
        """New archs the whole search evaluates when no stage ends early."""
        return self.subpopulations * self.subpopulation_budget + self.phases * self.phase_budget

    # -- setup -------------------------------------------------------------------------------------------
    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        tags = np.array([d.tag for d in space.decisions])
        self._note = ""
        mode = self.fitness
        if mode == "decoupled" and len(set(tags)) == 1:
            mode = str(tags[0])
            self._note = (f"space {space.name!r} has only {mode} decisions, so nothing is decoupled: every stage "
                          f"searches by {self._metric(mode)} (as fitness={mode})")
            warnings.warn(f"searcher decoupled: {self._note}", stacklevel=2)
        self._mode = mode
        needed = {"topology": [self.topology_metric], "size": [self.size_metric]}.get(
            mode, [self.topology_metric, self.size_metric])
        for metric in needed:
            if metric not in objective.targets:  # the objective's own sentence for a metric it cannot give
                objective.measure(metric, np.empty((0, space.dim), dtype=np.int64))
        self._needed = needed
        self._bounds = cheap_bounds(space, objective)
        share = np.inf if self.time_limit is None else self.time_limit / self.planned
        start = self._mode_fitness(mode, "topology")
        self._stages = [_Stage(f"subpopulation {i + 1}", start, None, self.subpopulation_size,
                               self.subpopulation_tournament, self.subpopulation_budget,
                               share * self.subpopulation_budget) for i in range(self.subpopulations)]
        other = TAGS[1 - TAGS.index(self.first)]
        for p in range(self.phases):
            tag = self.first if p % 2 == 0 else other
            mask = (tags == tag) if mode == "decoupled" else None
            label = f"{tag} phase" if mode == "decoupled" else "phase"
            self._stages.append(_Stage(f"{label} {p + 1}", self._mode_fitness(mode, tag), mask, self.population,
                                       self.tournament, self.phase_budget, share * self.phase_budget))
        self._current = 0
        self._values: dict[int, np.ndarray] = {}  # arch index -> (topology, size) values, -inf when infeasible
        self._scale = np.zeros(2)  # largest |value| of each metric among feasible archs, for fitness=combined
        self._handed: list[int] = []
        self._proposed: set[int] = set()
        self._checked = False

    @staticmethod
    def _mode_fitness(mode: str, tag: str) -> str:
        """A stage's fitness: the tag's metric when decoupled, else the mode's."""
        return tag if mode == "decoupled" else mode

    def _metric(self, fitness: str) -> str:
        return {"topology": self.topology_metric, "size": self.size_metric}.get(
            fitness, f"the sum of max-normalised {self.topology_metric} and {self.size_metric}")

    # -- ask ---------------------------------------------------------------------------------------------
    def ask(self, n: int) -> np.ndarray:
        if not self._checked:  # the first ask sees the whole budget: a search the budget would cut is refused
            self._checked = True
            if n < self.planned:
                raise UserError(f"searcher decoupled plans {self.planned} evaluations ({self.subpopulations} "
                                f"subpopulations x {self.subpopulation_budget} and {self.phases} phases x "
                                f"{self.phase_budget}) but the run's budget leaves {n}; give budget={self.planned} "
                                "or lower searcher.subpopulation_budget / searcher.phase_budget")
        while self._current < len(self._stages):
            stage = self._stages[self._current]
            if stage.started is None:
                self._start(stage)
            if not self._over(stage):
                archs = np.empty((0, self.space.dim), dtype=np.int64)
                if stage.fill and len(stage.members) < stage.size:
                    archs = self._fill(stage.size - len(stage.members))
                    stage.fill = len(archs) == stage.size - len(stage.members)  # short: no more to draw
                if not len(archs):
                    archs = self._children(stage)
                if len(archs):
                    return archs
            self._finish(stage)
        return np.empty((0, self.space.dim), dtype=np.int64)

    def _over(self, stage: _Stage) -> bool:
        return stage.new >= stage.budget or stage.idle >= STALL or time.perf_counter() - stage.started > stage.share

    def _start(self, stage: _Stage) -> None:
        """Seed a main phase with the previous stage's fittest (after the multi-start: every subpopulation's)."""
        stage.started = time.perf_counter()
        if self._current < self.subpopulations:
            return
        if self._current == self.subpopulations:
            seeds = list(dict.fromkeys(self._handed))
        else:
            previous = self._stages[self._current - 1]
            seeds = self._fittest(previous.pool, previous.fitness, stage.size)
        seeds = self._fittest(seeds, stage.fitness, stage.size)[::-1]  # least fit first: it ages out first
        stage.members, stage.pool, stage.fill = list(seeds), list(seeds), not seeds

    def _finish(self, stage: _Stage) -> None:
        if self._current < self.subpopulations:
            self._handed += self._fittest(stage.pool, stage.fitness, self.handover)
        self._current += 1

    def _fill(self, size: int) -> np.ndarray:
        """Random members, distinct from every arch drawn before, within the cheap bounds."""
        if not self._bounds:
            return sample_distinct(self.space, self.rng, size, self._proposed)
        out, drawn = [], 0
        for _ in range(DRAW_ROUNDS):
            cand = sample_distinct(self.space, self.rng, DRAW_ROUNDS, self._proposed)
            drawn += len(cand)
            out += list(cand[within(self._bounds, cand)])
            if len(out) >= size or not len(cand):
                break
        if not out and not any(np.isfinite(v).any() for v in self._values.values()):
            bounds = " and ".join(str(c) for c, _ in self._bounds)
            raise UserError(f"no architecture of space {self.space.name!r} among {drawn:,} drawn at random meets "
                            f"{bounds}; loosen the bound")
        return np.array(out[:size], dtype=np.int64).reshape(-1, self.space.dim)

    def _children(self, stage: _Stage) -> np.ndarray:
        """A mutant of a tournament's fittest and a crossover of its two fittest, within the cheap bounds."""
        members = np.array(stage.members)
        if not len(members):
            return np.empty((0, self.space.dim), dtype=np.int64)
        for _ in range(DRAW_ROUNDS):
            drawn = self.rng.choice(len(members), min(stage.tournament, len(members)), replace=False)
            ranked = members[drawn][np.argsort(-self._score(members[drawn], stage.fitness), kind="stable")]
            first, second = self.space.arch(np.array(ranked[:2]))[[0, -1]]
            second = second if stage.mask is None else np.where(stage.mask, second, first)  # frozen from the fittest
            k = min(int(self.rng.integers(1, self.mutations + 1)), self.space.dim)
            m = DRAW_ROUNDS if self._bounds else 1
            mutants = self.space.mutate(np.repeat(first[None], m, 0), self.rng, k, stage.mask)
            crossed = self.space.crossover(np.repeat(first[None], m, 0), np.repeat(second[None], m, 0), self.rng)
            kids = np.concatenate([c[within(self._bounds, c)][:1] for c in (mutants, crossed)])
            if len(kids):
                break
        return kids

    # -- tell --------------------------------------------------------------------------------------------
    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        keep = evaluation.source != CUT
        archs = np.asarray(archs)[keep]
        idx = [int(i) for i in self.space.index(archs)] if len(archs) else []
        self._record(archs, idx, evaluation, keep)
        if self._current >= len(self._stages):
            return
        stage = self._stages[self._current]
        for i in idx:
            stage.members.append(i)
            stage.pool.append(i)
            if len(stage.members) > stage.size:
                stage.members.pop(0)  # aging: the oldest member leaves
        new = np.flatnonzero(evaluation.source[keep] == EVALUATED)
        stage.new += len(new)
        stage.idle = len(idx) - 1 - new[-1] if len(new) else stage.idle + len(idx)

    def _record(self, archs: np.ndarray, idx: list[int], evaluation: Evaluation, keep: np.ndarray) -> None:
        """Both metrics (higher is better) of the archs seen for the first time; -inf for infeasible ones."""
        fresh = np.array([i not in self._values for i in idx], dtype=bool)
        if not fresh.any():
            return
        rows = np.flatnonzero(keep)[fresh]
        values = np.full((len(rows), 2), np.nan)
        for col, metric in ((0, self.topology_metric), (1, self.size_metric)):
            if metric not in self._needed:
                continue
            if metric in self.objective.targets:
                j = self.objective.targets.index(metric)
                sign = 1.0 if evaluation.directions[j] == "max" else -1.0
                values[:, col] = sign * evaluation.values[rows, j]
            else:
                sign = 1.0 if default_direction(metric) == "max" else -1.0
                values[:, col] = sign * np.asarray(self.objective.measure(metric, archs[fresh]), dtype=float)
        used = [c for c, m in enumerate((self.topology_metric, self.size_metric)) if m in self._needed]
        ok = evaluation.feasible[rows] & np.isfinite(values[:, used]).all(axis=1)
        values[~ok] = -np.inf
        if ok.any():
            self._scale = np.maximum(self._scale, np.nan_to_num(np.abs(values[ok]).max(axis=0)))
        for i, v in zip(np.array(idx)[fresh], values):
            self._values[int(i)] = v

    # -- fitness and the answer ----------------------------------------------------------------------------
    def _score(self, idx, fitness: str) -> np.ndarray:
        v = np.array([self._values[int(i)] for i in idx]).reshape(-1, 2)
        if fitness == "topology":
            return v[:, 0]
        if fitness == "size":
            return v[:, 1]
        return (v / np.where(self._scale > 0, self._scale, 1.0)).sum(axis=1)

    def _fittest(self, idx: list[int], fitness: str, k: int) -> list[int]:
        """Up to ``k`` distinct feasible archs of ``idx``, fittest first."""
        idx = list(dict.fromkeys(idx))
        if not idx:
            return []
        score = self._score(idx, fitness)
        order = np.argsort(-score, kind="stable")
        return [idx[i] for i in order[:k] if np.isfinite(score[i])]

    def _last(self) -> _Stage | None:
        """The stage in progress, or the last one when the search is over."""
        reached = [s for s in self._stages if s.started is not None] if hasattr(self, "_stages") else []
        return reached[-1] if reached else None

    def pick(self) -> int | None:
        stage = self._last()
        best = self._fittest(stage.pool, stage.fitness, 1) if stage is not None else []
        return best[0] if best else None

    def report(self) -> dict:
        stage = self._last()
        if stage is None:
            return {}
        pick = self.pick()
        out = {"final stage": f"{stage.name} of {len(self._stages)}, {stage.new} new archs",
               "pick": f"architecture {pick}, the stage's fittest by {self._metric(stage.fitness)}"
               if pick is not None else "none: the stage held no feasible architecture"}
        if self._note:
            out["note"] = self._note
        return out
