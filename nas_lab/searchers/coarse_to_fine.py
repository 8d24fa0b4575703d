"""Latency-aware coarse-to-fine search (AutoViT, seed 001, Algorithm 1): a cheap coarse filter, then evolution.

**Coarse** (free): draw ``samples`` (N, 1,000) distinct random archs, keep those
within every free bound of the run (``'constraint=latency.lut<=X,params<=Y'``), rank
them by ``key`` and keep the first ``keep`` (K, 50) as the first generation.
The bounds are read through ``core.searcher.cheap_bounds``: those measured at no
cost (the latency look-up table for ``latency.lut``, the space's closed-form
sizes for ``params``) on a metric that is not a target, so no arch of the coarse
stage is evaluated by the run's objective or charged to the budget. Any other
bound (``test.cifar10>=94``: an accuracy, known only by evaluating) filters
nothing here: the run's evaluations, charged, mark the archs breaking it
infeasible, and they are never parents.

**Fine**: evolution seeded with those K, every candidate scored by the run's
objective (``objective=supernet.id``: accuracy with weights inherited from the
variant's supernet). Per generation, ``population`` (50) new archs, each, as in
the paper's Eq. 9, a crossover of two distinct parents with probability
``crossover_prob`` or else a mutant of one parent; the parents are the
``parents`` (10) fittest archs evaluated so far. A mutant changes each depth
decision (a name ending in ``depth``, or ``stages``) with probability
``depth_prob`` (0.2) and each other (block) decision with probability
``block_prob`` (0.4), each move to a different option chosen uniformly; only
decisions active in the parent move. The search ends after ``generations``
(20) generations, the seeded one included: 50 + 19 x 50 = 1,000 archs, or when
the budget runs out first.

Every proposed arch is new to the run, keeps the space's rules (the width rule)
and meets every free bound: children outside them are redrawn (``DRAW_ROUNDS``
rounds of candidates); a generation still short takes the next-ranked coarse
archs not yet proposed, then new random archs within the bounds, so a coarse
sample that covers (nearly) the whole space never starves the evolution; the
search ends early, saying so in its report, only when no arch within the free
bounds is left unproposed. The report counts where the fine stage's archs came
from (children, coarse reserve, new random draws).

**Choices where the paper is silent** (ours):

- ``key``, the coarse ranking: ``params`` (default) keeps the largest networks
  within the bounds: parameter count is the cheapest zero-cost proxy and a
  strong one (Abdelfattah et al., ICLR 2021), and the paper's Fig. 4 describes its
  skeletons by size and latency budget. ``latency``: the slowest within the
  bound (the latency budget used in full). ``eq3``: the smallest ``L + tradeoff
  x C``, the paper's Eq. 3 with L the bound's latency (ms) and C millions of
  parameters (``tradeoff``, lambda, 1 ms per M). ``random``: no ranking, the
  first K within the bounds (Algorithm 1 read literally).
- K = 50 (the population, so the first generation is the coarse stage's output),
  N = 1,000.
- crossover probability 0.5: half the children crossed, half mutated, as in
  AutoFormer's evolution that AutoViT's settings (50 / 20 / 10 / 0.2 / 0.4) follow;
  crossover is uniform (each decision from either parent).
- parents are the fittest of every arch evaluated so far (elitist), not of the
  last generation only.
- fitness is the objective's first target (Eq. 2: accuracy under the latency
  bound); Eq. 8's size target is left to the ``params`` bound.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.joint import SpaceMetrics
from nas_lab.core.objective import CUT, Evaluation
from nas_lab.core.searcher import Searcher, cheap_bounds, sample_distinct, within
from nas_lab.core.settings import Setting

#: coarse ranking keys (see the module docstring)
KEYS = ("params", "latency", "eq3", "random")
#: last part of the name of a depth decision
DEPTH_WORDS = ("depth", "stages")
#: rounds of candidate children drawn before a generation falls back on the coarse reserve
DRAW_ROUNDS = 20
#: random archs drawn at least per round once children and the coarse reserve run short
FRESH_DRAW = 256


class CoarseToFine(Searcher):
    """AutoViT's latency-aware coarse-to-fine search: random archs filtered by cheap bounds and ranked, then evolution."""  # noqa: E501 (this one line is the summary `nas-lab list` shows)

    name = "coarse_to_fine"
    title = "Coarse-to-fine"
    needs = ("sample", "crossover")

    def __init__(
        self,
        samples: Annotated[int, Setting(ge=1, le=10_000_000, help="random archs of the coarse stage")] = 1000,
        keep: Annotated[int, Setting(ge=1, le="samples", help="best-ranked coarse archs that seed the evolution")] = 50,
        key: Annotated[str, Setting(choices=KEYS,
                                    help="coarse ranking: params, latency, eq3 (latency + tradeoff x "
                                         "params) or random")] = "params",
        tradeoff: Annotated[float, Setting(ge=0, le=1e6, help="ms per million parameters in the eq3 ranking")] = 1.0,
        population: Annotated[int, Setting(ge=1, le="space.cardinality",
                                           help="archs per generation of the fine stage")] = 50,
        generations: Annotated[int, Setting(ge=1, le=100_000, help="generations of the fine stage")] = 20,
        parents: Annotated[int, Setting(ge=1, le=10_000, help="best archs kept as parents per generation")] = 10,
        depth_prob: Annotated[float, Setting(ge=0, le=1, help="mutation probability of a depth decision")] = 0.2,
        block_prob: Annotated[float, Setting(ge=0, le=1, help="mutation probability of any other decision")] = 0.4,
        crossover_prob: Annotated[float, Setting(ge=0, le=1,
                                                 help="probability that a child is a crossover of two parents")] = 0.5,
    ):
        self.samples = samples
        self.keep = keep
        self.key = key
        self.tradeoff = tradeoff
        self.population = population
        self.generations = generations
        self.parents = parents
        self.depth_prob = depth_prob
        self.block_prob = block_prob
        self.crossover_prob = crossover_prob

    # -- coarse stage ------------------------------------------------------------------------------
    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        self._bounds = bounds = cheap_bounds(space, objective)
        self._latency = next(((c, m) for c, m in bounds if c.metric.startswith("latency.") and c.op in ("<=", "<")),
                             None)
        self._rates = np.where([n.rsplit(".", 1)[-1] in DEPTH_WORDS for n in space.names],
                               self.depth_prob, self.block_prob)
        self._proposed: set[int] = set()  # archs proposed to the runner: a child may be one the coarse stage drew
        self._outside: set[int] = set()  # archs drawn afresh that break a free bound
        drawn = sample_distinct(space, rng, self.samples, set())
        fit = drawn[within(bounds, drawn)]
        if not len(fit):
            limits = " and ".join(str(c) for c, _ in bounds)
            raise UserError(f"no architecture of space {space.name!r} among {len(drawn):,} drawn at random meets "
                            f"{limits}; loosen the bound (or raise searcher.samples)")
        ranked = fit[np.argsort(-self._rank(fit), kind="stable")]
        self._seeds, self._reserve = ranked[: self.keep], list(ranked[self.keep:])
        self._coarse = (len(drawn), len(fit))
        self._generation = 0  # generations asked so far
        self._archs = np.empty((0, space.dim), dtype=np.int64)  # every arch told back, and its fitness
        self._fitness = np.empty(0)
        self._short = ""
        self._sources = dict.fromkeys(("children", "reserve", "random"), 0)  # where the fine stage's archs came from

    def _rank(self, archs: np.ndarray) -> np.ndarray:
        """Coarse score of each arch, larger first (``key``)."""
        if self.key == "random":
            return np.zeros(len(archs))
        if self.key in ("latency", "eq3") and self._latency is None:
            raise UserError(f"searcher.key={self.key} ranks by the latency bound, but the run has none; add "
                            "'constraint=latency.lut<=X' (after nas-lab lut build) or use searcher.key=params")
        params = None
        if self.key in ("params", "eq3"):
            closed = SpaceMetrics(self.space)
            if not closed.can_measure("params"):
                raise UserError(f"searcher.key={self.key} needs closed-form parameter counts, which space "
                                f"{self.space.name!r} lacks; use searcher.key=latency or random")
            params = closed.measure("params", archs)
            if self.key == "params":
                return params
        c, measurer = self._latency
        latency = np.asarray(measurer.measure(c.metric, archs), dtype=float)
        return latency if self.key == "latency" else -(latency + self.tradeoff * params / 1e6)

    # -- fine stage --------------------------------------------------------------------------------
    def ask(self, n: int) -> np.ndarray:
        if self._short or self._generation >= self.generations:
            return np.empty((0, self.space.dim), dtype=np.int64)
        if self._generation == 0:
            out = self._seeds
            self._proposed.update(self.space.index(out).tolist())
        else:
            out = self._children(min(n, self.population))
        if not len(out):
            self._short = f"no new arch within the bounds left after {self._generation} generations"
            return out
        self._generation += 1
        return out[:n]

    def _children(self, count: int) -> np.ndarray:
        """``count`` new archs within the bounds: crossovers and mutants of the fittest, then the coarse reserve."""
        parents = self._fittest()
        out = np.empty((0, self.space.dim), dtype=np.int64)
        for _ in range(DRAW_ROUNDS if len(parents) else 0):
            m = 2 * (count - len(out)) + 8
            first = self.rng.integers(len(parents), size=m)
            second = (first + self.rng.integers(1, max(len(parents), 2), size=m)) % len(parents)  # another parent
            crossed = self.rng.random(m) < (self.crossover_prob if len(parents) > 1 else 0.0)
            kids = np.where(crossed[:, None], self.space.crossover(parents[first], parents[second], self.rng),
                            self.mutate(parents[first]))
            out = np.concatenate([out, self._admit(kids, count - len(out))])
            if len(out) >= count:
                break
        self._sources["children"] += len(out)
        while len(out) < count and self._reserve:  # short: next-ranked coarse archs not proposed as children
            taken, self._reserve = self._reserve[: count - len(out)], self._reserve[count - len(out):]
            admitted = self._admit(np.array(taken, dtype=np.int64), count - len(out))
            self._sources["reserve"] += len(admitted)
            out = np.concatenate([out, admitted])
        while len(out) < count:  # no reserve left: new random archs within the bounds, until none is left
            drawn = sample_distinct(self.space, self.rng, max(count - len(out), FRESH_DRAW),
                                    self._proposed | self._outside)
            if not len(drawn):
                break
            fits = within(self._bounds, drawn)
            self._outside.update(self.space.index(drawn[~fits]).tolist())
            admitted = self._admit(drawn[fits], count - len(out))
            self._sources["random"] += len(admitted)
            out = np.concatenate([out, admitted])
        return out

    def mutate(self, archs: np.ndarray) -> np.ndarray:
        """Each active decision of each arch moved to another option (uniform) with probability ``depth_prob``
        (depth decisions) or ``block_prob`` (the others); the result may break the space's rules or the bounds
        (``_admit`` filters)."""
        archs = np.asarray(archs, dtype=np.int64)
        moved = (self.rng.random(archs.shape) < self._rates) & self.space.active(archs)
        shift = 1 + (self.rng.random(archs.shape) * (self.space.sizes - 1)).astype(np.int64)
        return self.space.representative(np.where(moved, (archs + shift) % self.space.sizes, archs))

    def _admit(self, kids: np.ndarray, count: int) -> np.ndarray:
        """The first ``count`` of ``kids`` that are valid, within the bounds and new to the run (marked proposed)."""
        kids = kids[self.space.is_valid(kids)]
        kids = kids[within(self._bounds, kids)]
        out = []
        for arch, i in zip(kids, self.space.index(kids).tolist()):
            if len(out) == count:
                break
            if i not in self._proposed:
                self._proposed.add(i)
                out.append(arch)
        return np.array(out, dtype=np.int64).reshape(-1, self.space.dim)

    def _fittest(self) -> np.ndarray:
        """The ``parents`` fittest archs evaluated so far (feasible ones only)."""
        ok = np.isfinite(self._fitness)
        order = np.argsort(-self._fitness[ok], kind="stable")[: self.parents]
        return self._archs[ok][order]

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        keep = evaluation.source != CUT
        self._archs = np.concatenate([self._archs, np.asarray(archs, dtype=np.int64)[keep]])
        self._fitness = np.concatenate([self._fitness, evaluation.fitness[keep, 0]])

    def report(self) -> dict:
        if not hasattr(self, "_coarse"):
            return {}
        drawn, fit = self._coarse
        out = {"coarse": f"{drawn} drawn, {fit} within the bounds, {len(self._seeds)} kept by {self.key}",
               "fine": f"{self._generation} of {self.generations} generations"}
        if sum(self._sources.values()):
            out["fine archs"] = ", ".join(f"{n} {what}" for what, n in zip(
                ("children", "next-ranked coarse", "new random"), self._sources.values()))
        notes = [self._short] if self._short else []
        if self._latency is None:
            notes.append("the run has no latency bound ('constraint=latency.lut<=X'), so none was enforced")
        if notes:
            out["note"] = "; ".join(notes)
        return out
