"""Any nas_lab searcher as an Optuna sampler: ``optuna.create_study(sampler=NasLabSampler("gp", seed=0))``.

The reverse of ``searchers/optuna_sampler.py`` (Optuna's samplers inside a nas_lab run). The study's parameters
are the space: every categorical parameter that all finished trials share (Optuna's intersection search space)
is one decision of a ``CategoricalSpace``, with the parameter's choices as its options; the study's directions
are the targets' (``maximize`` -> ``max``). Each trial asks the searcher, through a ``Bridge``, for one arch
(``sample_relative``); its result goes back when the trial ends (``after_trial``): a failed or pruned trial as a
failed evaluation, a trial whose constraints (``trial.set_constraint``) are violated as an infeasible one.

Repeats: an arch the study has already evaluated (by this sampler, an enqueued trial or another worker) is not
given to a new trial; the searcher gets that trial's result at once and is asked again, so ``n_trials`` counts
distinct archs, as a nas_lab budget does.

Independent sampling, uniform over the choices, only where Optuna needs it: parameters outside the relative
space (the first trial, whose parameters nobody knows yet, and parameters some trials do not suggest), trials
that start while every arch of the searcher's batch is still being evaluated (``n_jobs > 1``), and trials after
the searcher has nothing more to propose (a warning says so). A non-categorical parameter is refused.

When the relative space changes (a parameter appears in every trial, or stops doing so) the searcher starts again
on the new space; archs the study has evaluated are then answered from their trials as above.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas_lab.core.errors import UserError
from nas_lab.core.searcher import Searcher
from nas_lab.core.space import CategoricalSpace
from nas_lab.integrations.bridge import Bridge, make_searcher

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class NasLabSampler(BaseSampler):
    """An Optuna sampler that proposes each trial's categorical parameters with a nas_lab searcher.

    ``searcher``: a registered name (``gp``, ``rea``, ``bananas``, ``nsga2``, ...) whose settings are keyword
    arguments, checked as ``nas-lab run searcher.PARAM=...`` checks them, or a ``Searcher`` object. ``seed``
    seeds the searcher as ``nas-lab run seed=...`` does (the same random numbers) and the independent draws;
    None draws fresh entropy.
    """

    def __init__(self, searcher: str | Searcher = "gp", *, seed: int | None = None, **settings: Any):
        self._searcher = make_searcher(searcher, settings)
        # child 0 is what nas_lab's runner gives its searcher (child 1 goes to its objective)
        searcher_seed, _, random_seed = np.random.SeedSequence(seed).spawn(3)
        self._searcher_rng = np.random.default_rng(searcher_seed)
        self._rng = np.random.default_rng(random_seed)
        self._intersection = IntersectionSearchSpace()
        self._bridge: Bridge | None = None
        self._space: dict[str, CategoricalDistribution] = {}  # the relative space the bridge searches
        self._given: dict[int, int] = {}  # number of a trial given a searcher's arch -> the arch's index
        self._read: set[int] = set()  # numbers of the finished trials reported to the bridge
        self._lock = threading.Lock()  # n_jobs > 1 runs trials in threads sharing this sampler
        self._warned = False

    def __str__(self) -> str:
        return f"NasLabSampler({self._searcher.name})"

    @property
    def nas_lab_searcher(self) -> Searcher:
        """The nas_lab searcher this sampler drives."""
        return self._searcher

    def reseed_rng(self) -> None:
        """Fresh entropy for the independent draws (Optuna calls this for ``n_jobs > 1``); the searcher keeps its
        generator, shared by the threads through the lock."""
        self._rng = np.random.default_rng()

    # -- relative sampling: the searcher -----------------------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if len(study.directions) > 1 and not self._searcher.multi_objective:
            raise UserError(f"searcher {self._searcher.name!r} is single-objective, but the study has "
                            f"{len(study.directions)} objectives; use a multi-objective searcher such as nsga2")
        space = {}
        for name, distribution in self._intersection.calculate(study).items():
            _refuse_unless_categorical(name, distribution)
            if not distribution.single():
                space[name] = distribution
        return space

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:  # an enqueued trial brings its own arch
            return {}
        with self._lock:
            if self._bridge is None or search_space != self._space:
                self._start(study, search_space)
            for finished in study.get_trials(deepcopy=False, states=FINISHED):
                if finished.number not in self._read:
                    self._report(finished, finished.state, finished.values)
            arch = self._bridge.propose()
            if arch is None:
                if self._bridge.note and not self._warned:
                    self._warned = True
                    warnings.warn(f"{self._bridge.note}; NasLabSampler samples the next trials at random",
                                  stacklevel=2)
                return {}
            self._given[trial.number] = int(self._bridge.space.index(arch))
            return {name: d.choices[int(o)] for (name, d), o in zip(self._space.items(), arch)}

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values) -> None:
        with self._lock:
            if self._bridge is not None and trial.number not in self._read:
                self._report(trial, state, values)

    def _start(self, study: Study, space: dict[str, BaseDistribution]) -> None:
        """(Re)start the searcher on the relative ``space``."""
        self._space = dict(space)
        decisions = CategoricalSpace("optuna", {name: d.choices for name, d in space.items()})
        directions = ["max" if d == StudyDirection.MAXIMIZE else "min" for d in study.directions]
        targets = study.metric_names or (["value"] if len(directions) == 1 else
                                         [f"values_{i}" for i in range(len(directions))])
        self._bridge = Bridge(self._searcher, decisions, targets, directions, self._searcher_rng)
        self._given, self._read = {}, set()

    def _report(self, trial: FrozenTrial, state: TrialState, values) -> None:
        """Tell the bridge what ``trial`` found: its values if it completed, a failure otherwise."""
        self._read.add(trial.number)
        index = self._given.pop(trial.number, None)
        if index is None:
            index = self._index_of(trial)
        if index is None:  # the trial did not set every parameter of the space
            return
        constraints = np.asarray(list(trial.constraints.values()), dtype=float)
        self._bridge.report(index, values if state == TrialState.COMPLETE else None,
                            feasible=bool((constraints <= 0).all()),
                            violation=float(np.clip(constraints, 0, None).sum()))

    def _index_of(self, trial: FrozenTrial) -> int | None:
        """Arch index of the parameters ``trial`` set, or None if it lacks one of the space."""
        arch = []
        for name, distribution in self._space.items():
            if trial.distributions.get(name) != distribution:
                return None
            arch.append(int(distribution.to_internal_repr(trial.params[name])))
        return int(self._bridge.space.index(np.array(arch)))

    # -- independent sampling: uniform ------------------------------------------------------------------------
    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        _refuse_unless_categorical(param_name, param_distribution)
        with self._lock:
            return param_distribution.choices[int(self._rng.integers(len(param_distribution.choices)))]


def _refuse_unless_categorical(name: str, distribution: BaseDistribution) -> None:
    if not isinstance(distribution, CategoricalDistribution):
        raise UserError(f"parameter {name!r} is not categorical ({type(distribution).__name__}), but NasLabSampler "
                        "searches categorical parameters only (trial.suggest_categorical); give it a list of choices")

