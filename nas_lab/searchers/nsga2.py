"""NSGA-II (Deb, Pratap, Agarwal & Meyarivan, IEEE TEVC 2002) from pymoo, driven through its ask/tell interface.

Everything evolutionary is pymoo's own: integer random sampling of the first
population, binary tournaments on constraint-domination, rank and crowding
distance, the variation operators and rank-and-crowding survival. This class
only translates between the two ask/tell conventions:

- ``ask`` hands out pymoo's whole next population (the first one, then one
  batch of offspring per generation) as option indices. pymoo removes duplicates
  within a generation and against the current population only, so an offspring
  may repeat an arch evaluated generations ago: the runner answers it from the
  run's cache at no cost, and the budget counts distinct archs only.
- ``tell`` sets every member's objectives (minimisation form, maximised
  metrics negated). Under constraints (``'constraint=params<=1e6'``) the problem
  has one inequality constraint ``G`` = the constraint violation (0 when
  feasible), so pymoo's constraint-domination applies: feasible beats
  infeasible, and infeasible archs are ranked by their violation. A failed
  (NaN) evaluation, or an arch the budget cut off on the last step, gets
  objectives (and a violation) of ``FAILED``, worse than any real one. Without
  constraints no ``G`` is declared, so pymoo skips its feasibility split, as its
  own loop does on an unconstrained problem.

Operators (``crossover``, ``mutation``):

- ``sbx`` / ``pm`` (defaults): pymoo's documented recipe for discrete
  variables, simulated binary crossover and polynomial mutation on the option
  indices with probability 1 and distribution index 3, rounded back to
  integers (``RoundingRepair``). Neighbouring options are close, which suits
  ordered decisions (widths, depths, kernel sizes). pymoo's continuous
  defaults (crossover probability 0.9, indices 15 and 20) barely move an
  index among 3 to 5 options: on NB201 they reached 1,000 distinct archs in
  43 generations instead of 27, at 2.7x the time, for no better front.
- ``ux``: uniform crossover, each decision from either parent with p = 1/2;
  ``reset``: each decision redrawn uniformly among its options with probability
  ``mutation_rate``. Neither assumes an order, which suits nominal decisions
  (NB201's cell operations).

Duplicates (``duplicates``): ``population`` (default, pymoo's own) keeps the
offspring of a generation distinct from each other and from the current
population; repeats of older archs are answered from the cache. ``run`` also
drops offspring equal to any arch evaluated earlier in the run (pymoo's
mating then retries, up to its 100 attempts), so every generation is charged
in full.

A population that has converged (one target, typically) makes pymoo re-propose
evaluated archs only; after ``patience`` generations in a row without a new
arch the searcher stops and the run notes that it finished early, instead of
idling until the runner's limit.

The population defaults to 50, ViTAS's setting; offspring per generation
defaults to the population size (pymoo's default).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from nas_lab.core.fronts import minimisation
from nas_lab.core.objective import CUT, EVALUATED, Evaluation
from nas_lab.core.searcher import Searcher
from nas_lab.core.settings import Setting
from nas_lab.core.space import Space

#: objectives (and constraint violation) of a failed or cut evaluation: worse than any real value, yet finite
#: (pymoo's crowding distance subtracts objectives, and infinities would make NaNs)
FAILED = 1e30

CROSSOVERS = ("sbx", "ux")
#: most archs of one generation: pymoo compares each pair of a generation for duplicates (a dense n x n distance
#: matrix, 200 MB at 5,000)
MAX_GENERATION = 5_000
MUTATIONS = ("pm", "reset")
DUPLICATES = ("population", "run")


class NSGA2(Searcher):
    """NSGA-II (pymoo): non-dominated sorting, crowding distance, constraint-domination tournaments."""

    name = "nsga2"
    title = "NSGA-II"
    multi_objective = True

    def __init__(
        self,
        population: Annotated[int, Setting(ge=2, le=("space.cardinality", MAX_GENERATION),
                                           help="survivors per generation (tournaments pick between two)")] = 50,
        offspring: Annotated[int | None, Setting(ge=1, le=MAX_GENERATION,
                                                 help="children per generation (none: the population size)")] = None,
        crossover: Annotated[str, Setting(choices=CROSSOVERS,
                                          help="sbx (simulated binary on indices) or ux (uniform)")] = "sbx",
        crossover_prob: Annotated[float, Setting(ge=0, le=1, help="probability that a pair is crossed")] = 1.0,
        crossover_eta: Annotated[float, Setting(gt=0, le=1000,
                                                help="SBX distribution index (larger: children nearer parents)")] = 3.0,
        mutation: Annotated[str, Setting(choices=MUTATIONS,
                                         help="pm (polynomial on indices) or reset (a random option)")] = "pm",
        mutation_rate: Annotated[float | None, Setting(gt=0, le=1,
                                                       help="per-decision mutation probability (none: "
                                                            "1/decisions)")] = None,
        mutation_eta: Annotated[float, Setting(gt=0, le=1000, help="polynomial mutation's distribution index")] = 3.0,
        duplicates: Annotated[str, Setting(choices=DUPLICATES,
                                           help="children dropped as duplicates of the population or "
                                                "of the whole run")] = "population",
        patience: Annotated[int, Setting(ge=1, le=1_000_000,
                                         help="generations in a row without a new arch after which the search "
                                              "stops")] = 10,
    ):
        self.population = population
        self.offspring = offspring
        self.crossover = crossover
        self.crossover_prob = crossover_prob
        self.crossover_eta = crossover_eta
        self.mutation = mutation
        self.mutation_rate = mutation_rate
        self.mutation_eta = mutation_eta
        self.duplicates = duplicates
        self.patience = patience

    # -- pymoo objects, also used by benchmarks and tests to run pymoo's own loop with the same settings --
    def pymoo_problem(self, space: Space, n_obj: int, n_constr: int = 0):
        """The pymoo ``Problem`` of a space: one integer variable per decision, bounds 0..options-1."""
        from pymoo.core.problem import Problem
        from pymoo.core.variable import Choice

        problem = Problem(n_var=space.dim, n_obj=n_obj, n_ieq_constr=n_constr, xl=np.zeros(space.dim),
                          xu=(space.sizes - 1).astype(float), vtype=int)
        # the options of each decision, for the reset mutation (set after construction: pymoo's bounds stay arrays)
        problem.vars = {name: Choice(options=np.arange(size)) for name, size in zip(space.names, space.sizes)}
        return problem

    def pymoo_algorithm(self, space: Space, seed: int):
        """pymoo's ``NSGA2`` configured with this searcher's parameters, seeded with ``seed``."""
        from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.crossover.ux import UX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        rate = {} if self.mutation_rate is None else {"prob_var": self.mutation_rate}
        if self.crossover == "sbx":
            crossover = SBX(prob=self.crossover_prob, eta=self.crossover_eta, vtype=float, repair=RoundingRepair())
        else:
            crossover = UX(prob=self.crossover_prob)
        if self.mutation == "pm":
            mutation = PM(prob=1.0, eta=self.mutation_eta, vtype=float, repair=RoundingRepair(), **rate)
        else:
            mutation = _ResetMutation(prob=1.0, **rate)
        repair = {} if type(space).is_valid is Space.is_valid else {"repair": _ValidRepair(space, seed)}
        duplicates = _RunDuplicates(space) if self.duplicates == "run" else True
        return PymooNSGA2(pop_size=self.population, n_offsprings=self.offspring, sampling=IntegerRandomSampling(),
                          crossover=crossover, mutation=mutation, eliminate_duplicates=duplicates, seed=seed, **repair)

    # -- ask/tell ---------------------------------------------------------------------------------
    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        from pymoo.core.evaluator import Evaluator
        from pymoo.core.termination import NoTermination

        self._constrained = bool(objective.constraints)
        self._problem = self.pymoo_problem(space, len(objective.targets), int(self._constrained))
        self._seed = int(rng.integers(2**31))
        self._algorithm = self.pymoo_algorithm(space, self._seed)
        self._algorithm.setup(self._problem, termination=NoTermination(), verbose=False)
        self._evaluator = Evaluator()
        self._pending = None  # the population handed out by the last ask, until it is told
        self._generations = 0
        self._stale = 0  # generations in a row that brought no arch new to the run

    def ask(self, n: int) -> np.ndarray:
        if self._stale >= self.patience:  # converged: pymoo only re-proposes archs already evaluated
            return np.empty((0, self.space.dim), dtype=np.int64)
        if self._pending is None:
            self._pending = self._algorithm.ask()
        if self._pending is None or len(self._pending) == 0:  # no new offspring: the population is the whole space
            self._pending = None
            return np.empty((0, self.space.dim), dtype=np.int64)
        return np.rint(self._pending.get("X").astype(float)).astype(np.int64)

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        from pymoo.problems.static import StaticProblem

        pop, self._pending = self._pending, None
        F = minimisation(evaluation.values, evaluation.directions)
        failed = ~np.isfinite(F).all(axis=1) | (evaluation.source == CUT)
        out = {}
        if self._constrained:
            # G <= 0 is feasible; an infeasible arch without a sized violation lies behind every sized one
            violation = np.nan_to_num(np.asarray(evaluation.violation, dtype=float), nan=FAILED, posinf=FAILED)
            out["G"] = np.where(evaluation.feasible & ~failed, 0.0,
                                np.where(~failed & (violation > 0), np.minimum(violation, FAILED / 2), FAILED))[:, None]
        else:
            failed |= ~evaluation.feasible
        F[failed] = FAILED
        self._evaluator.eval(StaticProblem(self._problem, F=F, **out), pop)
        self._algorithm.tell(infills=pop)
        self._generations += 1
        self._stale = 0 if (evaluation.source == EVALUATED).any() else self._stale + 1
        if self.duplicates == "run":
            self._algorithm.eliminate_duplicates.seen.update(self.space.index(archs[evaluation.source != CUT]).tolist())

    def report(self) -> dict:
        """Generations told, the seed pymoo's generator got (pymoo's own loop with it proposes the same archs), and
        whether the search stopped as converged."""
        if not hasattr(self, "_seed"):
            return {}
        out = {"generations": self._generations, "pymoo_seed": self._seed}
        if self._stale >= self.patience:
            many = f"{self.patience} generations in a row" if self.patience > 1 else "a generation"
            out["converged"] = f"stopped after {many} proposed only evaluated archs"
        return out


def _reset_mutation_class():
    from pymoo.operators.mutation.rm import ChoiceRandomMutation

    class ResetMutation(ChoiceRandomMutation):
        """pymoo's random-choice mutation, kept on integer arrays (pymoo's version returns objects)."""

        def _do(self, problem, X, **kwargs):
            return super()._do(problem, X, **kwargs).astype(np.int64)

    return ResetMutation


def _ResetMutation(**kwargs):  # noqa: N802 - builds a pymoo operator, imported lazily
    return _reset_mutation_class()(**kwargs)


def _RunDuplicates(space: Space):  # noqa: N802 - builds a pymoo operator, imported lazily
    from pymoo.core.duplicate import DefaultDuplicateElimination

    class RunDuplicates(DefaultDuplicateElimination):
        """pymoo's duplicate elimination, plus every arch evaluated in the run so far (``seen``: arch indices)."""

        def __init__(self):
            super().__init__()
            self.seen: set[int] = set()

        def do(self, pop, *args, **kwargs):
            if len(pop) and self.seen:
                idx = space.index(np.rint(pop.get("X").astype(float)).astype(np.int64)).tolist()
                pop = pop[np.array([i not in self.seen for i in idx], dtype=bool)]
            return super().do(pop, *args, **kwargs)

    return RunDuplicates()


def _ValidRepair(space: Space, seed: int):  # noqa: N802 - builds a pymoo operator, imported lazily
    from pymoo.core.repair import Repair

    rng = np.random.default_rng(seed)

    class ValidRepair(Repair):
        """Archs outside the space's own constraints are replaced by valid archs drawn at random."""

        def _do(self, problem, X, **kwargs):
            X = np.rint(np.asarray(X, dtype=float)).astype(np.int64)
            bad = ~space.is_valid(X)
            if bad.any():
                X[bad] = space.sample(rng, int(bad.sum()))
            return X

    return ValidRepair()
