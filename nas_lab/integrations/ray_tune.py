"""Any nas_lab searcher as a Ray Tune search algorithm: ``tune.TuneConfig(search_alg=NasLabSearch("gp", seed=0))``.

The space is the ``tune.choice`` entries of the search space (nested dicts flattened to ``a/b`` names), each a
decision of a ``CategoricalSpace`` with its categories as options; ``metric``/``mode`` (a name and ``max``/``min``,
or lists of them for a multi-objective searcher such as ``nsga2``) are the targets. ``suggest`` hands each trial
one arch of the searcher's batch (``integrations.bridge``); ``on_trial_complete`` tells its result, a trial that
errored or reported no value as a failed evaluation. An arch already evaluated is answered from that trial and
never given to a new one. While every arch of a batch is out in running trials ``suggest`` returns None (Tune asks
again later); once the searcher has nothing more to propose it returns ``Searcher.FINISHED``. Any other kind of
search-space entry (``tune.uniform``, ``tune.randint``, ``tune.grid_search``, ``tune.sample_from``) is refused.
``save``/``restore`` pickle the whole state, the nas_lab searcher's included (Tune checkpoints it with the
experiment).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from ray.tune.search import UNDEFINED_METRIC_MODE, UNDEFINED_SEARCH_SPACE
from ray.tune.search import Searcher as TuneSearcher
from ray.tune.search.sample import Categorical
from ray.tune.search.variant_generator import parse_spec_vars
from ray.tune.utils.util import flatten_dict, unflatten_dict

from nas_lab.core.errors import UserError
from nas_lab.core.searcher import Searcher
from nas_lab.core.space import CategoricalSpace
from nas_lab.integrations.bridge import Bridge, make_searcher


class NasLabSearch(TuneSearcher):
    """A Ray Tune searcher that proposes each trial's ``tune.choice`` values with a nas_lab searcher.

    ``searcher``: a registered name (``gp``, ``rea``, ``bananas``, ``nsga2``, ...) whose settings are keyword
    arguments, checked as ``nas-lab run searcher.PARAM=...`` checks them, or a ``Searcher`` object. ``space``:
    a search space, when it is not given to the ``Tuner`` as ``param_space``. ``seed`` seeds the searcher as
    ``nas-lab run seed=...`` does; None draws fresh entropy.
    """

    def __init__(self, searcher: str | Searcher = "gp", space: dict | None = None, metric: str | list | None = None,
                 mode: str | list | None = None, *, seed: int | None = None, **settings: Any):
        super().__init__(metric=metric, mode=mode)
        self._searcher = make_searcher(searcher, settings)
        # child 0 of the seed is what nas_lab's runner gives its searcher
        self._rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self._choices: dict[str, list] = {}  # flattened name -> categories of each searched entry
        self._fixed: dict[str, Any] = {}  # flattened name -> value of a choice with one category
        self._bridge: Bridge | None = None
        self._given: dict[str, int] = {}  # trial id -> index of the arch it evaluates
        if space:
            self._set_space(space)

    @property
    def nas_lab_searcher(self) -> Searcher:
        """The nas_lab searcher this search algorithm drives (not ``searcher``: Tune takes an object with one for a
        wrapper of another search algorithm)."""
        return self._searcher

    def set_search_properties(self, metric: str | list | None, mode: str | list | None, config: dict,
                              **spec) -> bool:
        if self._choices or self._fixed:
            return False
        self._set_space(config)
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def _set_space(self, space: dict) -> None:
        _, _, grids = parse_spec_vars(space)  # before flattening, which turns a grid into a plain entry
        if grids:
            raise UserError(f"entry {'/'.join(map(str, grids[0][0]))!r} is not a tune.choice (tune.grid_search), but "
                            "NasLabSearch searches tune.choice entries only; write it as tune.choice([...])")
        _, domains, _ = parse_spec_vars(flatten_dict(space, prevent_delimiter=True))
        for path, domain in domains:
            name = "/".join(map(str, path))
            if not isinstance(domain, Categorical):
                raise UserError(f"entry {name!r} is not a tune.choice ({type(domain).__name__} domain), but "
                                "NasLabSearch searches tune.choice entries only; give it a list of choices")
            if len(domain.categories) > 1:
                self._choices[name] = list(domain.categories)
            else:
                self._fixed[name] = domain.categories[0]

    def suggest(self, trial_id: str) -> dict | str | None:
        if not (self._choices or self._fixed):
            raise RuntimeError(UNDEFINED_SEARCH_SPACE.format(cls=type(self).__name__, space="space"))
        if not self._metric or not self._mode:
            raise RuntimeError(UNDEFINED_METRIC_MODE.format(cls=type(self).__name__, metric=self._metric,
                                                            mode=self._mode))
        if not self._choices:  # nothing to search: every entry has one value
            return unflatten_dict(dict(self._fixed))
        if self._bridge is None:
            metrics = [self._metric] if isinstance(self._metric, str) else list(self._metric)
            modes = [self._mode] if isinstance(self._mode, str) else list(self._mode)
            self._bridge = Bridge(self._searcher, CategoricalSpace("tune", self._choices), metrics, modes, self._rng)
        arch = self._bridge.propose()
        if arch is None:
            return TuneSearcher.FINISHED if self._bridge.note else None
        self._given[trial_id] = int(self._bridge.space.index(arch))
        values = {name: options[int(o)] for (name, options), o in zip(self._choices.items(), arch)}
        return unflatten_dict({**self._fixed, **values})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        index = self._given.pop(trial_id, None)
        if index is None:  # a trial this searcher did not suggest
            return
        metrics = [self._metric] if isinstance(self._metric, str) else list(self._metric)
        ok = not error and result is not None and all(result.get(m) is not None for m in metrics)
        self._bridge.report(index, [float(result[m]) for m in metrics] if ok else None)

    def get_state(self) -> dict:
        """Everything, the nas_lab searcher's state included (Tune pickles it with the experiment)."""
        return dict(self.__dict__)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))
