"""Any Optuna sampler as a searcher: TPE, random, GP, NSGA-II, NSGA-III, quasi-Monte Carlo.

Every decision of the space is one categorical parameter (named by the
decision, choices = its option indices), suggested with
``trial.suggest_categorical`` in decision order (``study.ask`` with fixed
distributions gives the same trials but costs a third more). One trial per ask:
the sampler sees every result before its next suggestion, exactly as when
driving Optuna directly. A trial that repeats an
arch evaluated earlier in the run is answered from the runner's cache and
still told to Optuna with its values, so the sampler behaves as it would
alone, while the budget counts distinct archs (which Optuna by itself cannot).

Directions come from the objective (``maximize`` for accuracies, ``minimize``
for latency and size). Under constraints (``'constraint=params<=1e6'``) each
trial carries one constraint value, the arch's violation (<= 0 is feasible,
Optuna's convention), which the samplers that handle constraints (TPE, GP,
NSGA-II, NSGA-III) use: with Optuna >= 5 through ``Trial.set_constraint``
(``constraints_func`` is deprecated there), with Optuna 4 through a
``constraints_func`` reading the trial's ``violation`` user attribute.
Otherwise an infeasible or failed (NaN) evaluation is told as a failed trial,
which samplers leave out of their model.

Sampler options: the common ones are parameters of this searcher (``None``
keeps Optuna's default; setting one the chosen sampler does not take is an
error); any other keyword of the sampler's constructor with a plain value goes
in ``options``, e.g. ``searcher.sampler=nsga3 searcher.options=dividing_parameter=4``.
``seed`` comes from the run's seed and ``constraints_func`` from the constraints.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Annotated, Any

import numpy as np

from nas_lab.core import settings
from nas_lab.core.errors import UserError
from nas_lab.core.objective import CUT, Evaluation
from nas_lab.core.searcher import Searcher
from nas_lab.core.settings import Setting

#: searcher.sampler name -> optuna.samplers class name
SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "nsga2": "NSGAIISampler",
    "nsga3": "NSGAIIISampler",
    "qmc": "QMCSampler",
}
#: typed parameters of this searcher that are passed through to the samplers taking them
PASSED = ("n_startup_trials", "n_ei_candidates", "multivariate", "group", "population_size", "crossover_prob",
          "mutation_prob", "swapping_prob", "deterministic_objective", "qmc_type", "scramble")
#: constructor arguments the adapter sets itself
_OWN = ("seed", "constraints_func")
#: a violation Optuna is told instead of an infinite one
_HUGE = 1e30


class OptunaSearch(Searcher):
    """Any Optuna sampler (tpe, random, gp, nsga2, nsga3, qmc), one trial per ask, categorical decisions."""

    name = "optuna"
    title = "Optuna"
    multi_objective = True

    def __init__(
        self,
        sampler: Annotated[str, Setting(choices=tuple(SAMPLERS), help="Optuna sampler (cmaes is not offered: it models "
                                        "continuous parameters only)")] = "tpe",
        n_startup_trials: Annotated[int | None, Setting(ge=0, le=1_000_000,
                                                        help="random trials before the model (TPE, GP)")] = None,
        n_ei_candidates: Annotated[int | None, Setting(ge=1, le=1_000_000,
                                                       help="candidates scored per TPE trial")] = None,
        multivariate: Annotated[bool | None, Setting(help="TPE over the joint distribution of decisions")] = None,
        group: Annotated[bool | None, Setting(help="multivariate TPE split by co-occurring parameters")] = None,
        population_size: Annotated[int | None, Setting(ge=2, le=1_000_000, help="population of NSGA-II/III")] = None,
        crossover_prob: Annotated[float | None, Setting(ge=0, le=1, help="NSGA-II/III crossover probability")] = None,
        mutation_prob: Annotated[float | None, Setting(ge=0, le=1,
                                                       help="NSGA-II/III per-parameter mutation probability")] = None,
        swapping_prob: Annotated[float | None, Setting(ge=0, le=1,
                                                       help="NSGA-II/III uniform-crossover swap probability")] = None,
        deterministic_objective: Annotated[bool | None, Setting(help="GP sampler: the objective has no noise")] = None,
        qmc_type: Annotated[str | None, Setting(choices=("sobol", "halton"), help="QMC sequence")] = None,
        scramble: Annotated[bool | None, Setting(help="QMC: scramble the sequence")] = None,
        options: Annotated[dict[str, Any] | None,
                           Setting(help="any other keyword of the sampler, key=value,key=value")] = None,
    ):
        self.sampler = sampler
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        self.multivariate = multivariate
        self.group = group
        self.population_size = population_size
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        self.swapping_prob = swapping_prob
        self.deterministic_objective = deterministic_objective
        self.qmc_type = qmc_type
        self.scramble = scramble
        self.options = Setting("options", dict, None).coerce(options, "searcher") or {}
        self._class_name = SAMPLERS[sampler]
        self._kwargs = self._sampler_kwargs()
        self._make_sampler(seed=0)  # Optuna checks the option values now, before any run starts

    # -- sampler construction ---------------------------------------------------------------------
    def _sampler_kwargs(self) -> dict:
        cls = getattr(_optuna().samplers, self._class_name)
        takes = [n for n, p in inspect.signature(cls).parameters.items() if n not in _OWN and _plain(p)]
        kwargs = {p: getattr(self, p) for p in PASSED if getattr(self, p) is not None}
        extra = {k: _typed(k, v, cls) for k, v in self.options.items()}
        both = sorted(set(kwargs) & set(extra))
        if both:
            raise UserError(f"searcher.{both[0]} is given twice, as a parameter and in searcher.options; give it once")
        kwargs.update(extra)
        own = sorted(set(kwargs) & set(_OWN))
        if own:
            raise UserError(f"searcher.options cannot set {own[0]!r}: the adapter sets it "
                            f"({'from the run seed' if own[0] == 'seed' else 'from the constraints'})")
        unknown = sorted(set(kwargs) - set(takes))
        if unknown:
            raise UserError(f"Optuna's {self._class_name} (searcher.sampler={self.sampler}) takes no option "
                            f"{unknown[0]!r}; valid: {', '.join(takes) or 'none'}")
        if self.sampler == "qmc":  # a seeded QMC sampler needs no reminder that its seed is shared
            kwargs.setdefault("warn_asynchronous_seeding", False)
        return kwargs

    def _make_sampler(self, seed: int, constraints_func=None):
        optuna = _optuna()
        cls = getattr(optuna.samplers, self._class_name)
        kwargs = dict(self._kwargs, seed=seed)
        if constraints_func is not None and "constraints_func" in inspect.signature(cls).parameters:
            kwargs["constraints_func"] = constraints_func
        try:
            with _quiet():
                return cls(**kwargs)
        except (TypeError, ValueError) as e:
            message = str(e).strip().rstrip(".").replace("\n", " ")
            raise UserError(f"Optuna's {self._class_name} refused the options "
                            f"{', '.join(f'{k}={v!r}' for k, v in self._kwargs.items())}: {message}") from None

    # -- ask/tell ---------------------------------------------------------------------------------
    def reset(self, space, objective, rng):
        super().reset(space, objective, rng)
        optuna = _optuna()
        self._seed = int(rng.integers(2**31))
        self._constrained = bool(objective.constraints)
        self._set_constraint = hasattr(optuna.trial.Trial, "set_constraint")  # Optuna >= 5
        old_style = self._constrained and not self._set_constraint
        sampler = self._make_sampler(self._seed, _violation if old_style else None)
        self._constraints_told = self._constrained and (
            self._set_constraint or "constraints_func" in inspect.signature(type(sampler)).parameters)
        directions = ["maximize" if d == "max" else "minimize" for d in objective.directions]
        with _quiet():
            self._study = optuna.create_study(sampler=sampler, directions=directions)
        self._choices = [(name, list(range(int(size)))) for name, size in zip(space.names, space.sizes)]
        self._trial = None
        self._trials = 0

    def ask(self, n: int) -> np.ndarray:
        with _quiet():
            self._trial = trial = self._study.ask()
            arch = [trial.suggest_categorical(name, choices) for name, choices in self._choices]
        return np.array([arch], dtype=np.int64)

    def tell(self, archs: np.ndarray, evaluation: Evaluation) -> None:
        from optuna.trial import TrialState

        trial, self._trial = self._trial, None
        values = evaluation.values[0]
        failed = evaluation.source[0] == CUT or not np.isfinite(values).all()
        with _quiet():
            if failed or (not evaluation.feasible[0] and not self._constraints_told):
                self._study.tell(trial, state=TrialState.FAIL)
            else:
                if self._constraints_told:
                    v = float(evaluation.violation[0])
                    v = 0.0 if evaluation.feasible[0] else (min(v, _HUGE) if v > 0 else _HUGE)
                    if self._set_constraint:
                        trial.set_constraint("violation", v)
                    else:
                        trial.set_user_attr("violation", v)
                self._study.tell(trial, values.tolist() if len(values) > 1 else float(values[0]))
        self._trials += 1

    def report(self) -> dict:
        """Trials told (repeats included), and the seed the sampler got (driving it directly with it gives the
        same trials)."""
        return {"trials": self._trials, "sampler_seed": self._seed} if hasattr(self, "_seed") else {}


def _plain(param: inspect.Parameter) -> bool:
    """Whether a sampler argument takes a plain value (number, flag, name), not an object or a callable."""
    note = str(param.annotation)
    return not any(word in note
                   for word in ("Callable", "Sampler", "Mutation", "Crossover", "ndarray", "Trial", "dict"))


def _typed(key: str, value, sampler_class):
    """An ``options`` value as its declaration here reads it (``n_startup_trials`` and the other typed
    parameters, bounds included) or, for any other keyword, as the type the sampler's signature annotates
    (int, float, bool or str), so Optuna never meets a value of the wrong type mid-run."""
    declared = settings.declared(OptunaSearch)
    if key in declared:
        return declared[key].coerce(value, "searcher.options")
    param = inspect.signature(sampler_class).parameters.get(key)
    note = "" if param is None else str(param.annotation)
    kind = next((t for t in (bool, int, float, str) if t.__name__ in note.replace("None", "").split(" | ")), None)
    return value if kind is None else settings.Setting(key, kind, None).coerce(value, "searcher.options")


def _violation(trial) -> tuple[float]:
    """Optuna's ``constraints_func``: the violation the adapter attached to the trial (<= 0 is feasible)."""
    return (trial.user_attrs.get("violation", 0.0),)


def _optuna():
    """optuna, imported on first use (``nas-lab list`` stays fast) with its logging quietened to warnings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class _quiet(warnings.catch_warnings):
    """Optuna's ExperimentalWarnings (GP, QMC, constraints) silenced for the duration of a call."""

    def __enter__(self):
        out = super().__enter__()
        from optuna.exceptions import ExperimentalWarning

        warnings.simplefilter("ignore", ExperimentalWarning)
        return out
