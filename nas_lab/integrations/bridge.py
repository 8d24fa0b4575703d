"""A nas_lab searcher driven by another tool's trial loop (Optuna, Ray Tune): one arch per trial.

There the tool, not nas_lab's runner, owns the loop: it wants one configuration when a trial starts and reports
each trial's result when it ends, possibly out of order, and it also reports trials the searcher never proposed
(the user's own, a resumed study's, another worker's). ``Bridge`` keeps the runner's contract with the searcher
all the same (``core/runner.py``): it asks for a batch, hands out its archs one trial at a time, answers an arch
the tool has already evaluated from that result instead of spending a trial on it (a nas_lab budget counts
distinct archs; asking again is free), and tells the searcher the whole batch, in order, once every arch of it
has an answer (``EVALUATED`` by its trial, or ``CACHED``). A failed or pruned trial is told as a failed evaluation
(NaN values, infeasible), as the runner tells a diverged training; asking for that arch again is answered the
same way, as within a nas_lab run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas_lab.core import registry
from nas_lab.core.charged import Charged
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.objective import CACHED, DIRECTIONS, EVALUATED, Evaluation, Objective
from nas_lab.core.runner import MAX_IDLE_ASKS, check_compatible, check_proposal
from nas_lab.core.searcher import Searcher
from nas_lab.core.space import OPERATORS, Space

#: archs asked of the searcher at a time: a tool does not say how many trials it will run (the runner passes the
#: budget left), so searchers size their batches by their own settings (gp's ``batch``), up to this
ASK = 100


class TrialsObjective(Objective):
    """What a searcher driven by a tool knows of the objective: its targets and directions (the study's). The
    tool's trials evaluate; the searcher sees this only through ``Charged``, which refuses ``evaluate``."""

    name = "trials"

    def __init__(self, space: Space, targets: Sequence[str], directions: Sequence[str]):
        bad = [d for d in directions if d not in DIRECTIONS]
        if bad:
            raise UserError(f"direction {shorten(repr(bad[0]))} is not one a nas_lab searcher optimises; valid: "
                            f"{', '.join(DIRECTIONS)}")
        self.space = space
        self.targets = tuple(targets)
        self.directions = tuple(directions)


class Bridge:
    """Drives ``searcher`` over ``space`` for targets with ``directions`` (``max``/``min``): ``propose`` gives the
    next arch a trial should evaluate, ``report`` takes any finished trial's result."""

    def __init__(self, searcher: Searcher, space: Space, targets: Sequence[str], directions: Sequence[str],
                 rng: np.random.Generator):
        objective = TrialsObjective(space, targets, directions)
        check_compatible(space, objective, searcher)
        self.searcher = searcher
        self.space = space
        self.directions = objective.directions
        #: arch index -> (values (k,), feasible, violation) of every arch the tool has evaluated
        self.known: dict[int, tuple[np.ndarray, bool, float]] = {}
        #: why the searcher proposes nothing more ("" while it does)
        self.note = ""
        self._batch: np.ndarray | None = None  # the archs asked last, until they are told
        self._waiting: dict[int, list[int]] = {}  # arch index handed out -> positions of the batch awaiting its result
        self._idle = 0  # batches in a row with no arch new to the tool
        searcher.reset(space, Charged(objective, self.known.__contains__), rng)

    def propose(self) -> np.ndarray | None:
        """The next arch ``(d,)`` to evaluate, or None: the searcher has nothing more (``note`` says why) or its
        batch's archs are all handed out and some trials are still running (a parallel study)."""
        while not self.note:
            if self._batch is None:
                self._ask()
                continue
            while self._next < len(self._batch):
                pos, index = self._next, self._index[self._next]
                self._next += 1
                if index in self.known:  # evaluated already: answered from that trial, no trial spent
                    self._answer([pos], self.known[index], CACHED)
                elif index in self._waiting:  # twice in one batch: one trial, the second answered from it
                    self._waiting[index].append(pos)
                else:
                    self._waiting[index] = [pos]
                    return self._batch[pos]
            if self._waiting:
                return None
            self._tell()
        return None

    def report(self, index: int, values: Sequence[float] | None, feasible: bool = True, violation: float = 0.0):
        """A trial evaluated arch ``index``: its ``values`` (None for a failed or pruned trial), whether it meets
        the tool's constraints and by how much it misses them. The first result of an arch is the one kept."""
        if index in self.known:
            return
        if values is None:
            result = (np.full(len(self.directions), np.nan), False, np.nan)
        else:
            result = (np.asarray(values, dtype=float).reshape(len(self.directions)), bool(feasible), float(violation))
        self.known[index] = result
        positions = self._waiting.pop(index, [])
        if positions:
            self._answer(positions[:1], result, EVALUATED)
            self._answer(positions[1:], result, CACHED)
            if not self._waiting and self._next == len(self._batch):
                self._tell()

    # -- the batch -------------------------------------------------------------------------------------------
    def _ask(self) -> None:
        archs = np.asarray(self.searcher.ask(ASK), dtype=np.int64)
        if archs.size == 0:
            self.note = f"searcher {self.searcher.name!r} has nothing more to propose"
            return
        check_proposal(self.space, self.searcher, archs)
        self._batch = archs
        self._index = self.space.index(archs).tolist()
        self._values = np.full((len(archs), len(self.directions)), np.nan)
        self._feasible = np.zeros(len(archs), dtype=bool)
        self._violation = np.full(len(archs), np.nan)
        self._source = np.full(len(archs), CACHED, dtype=np.int8)
        self._next = 0

    def _answer(self, positions: list[int], result: tuple[np.ndarray, bool, float], source: int) -> None:
        values, feasible, violation = result
        self._values[positions] = values
        self._feasible[positions] = feasible
        self._violation[positions] = violation
        self._source[positions] = source

    def _tell(self) -> None:
        evaluation = Evaluation(values=self._values, directions=self.directions, cost=np.zeros(len(self._batch)),
                                feasible=self._feasible, violation=self._violation, source=self._source)
        archs, self._batch = self._batch, None
        self.searcher.tell(archs, evaluation)
        self._idle = 0 if (evaluation.source == EVALUATED).any() else self._idle + 1
        if self._idle >= MAX_IDLE_ASKS:
            self.note = f"searcher {self.searcher.name!r} proposed only evaluated archs {MAX_IDLE_ASKS} times in a row"


def make_searcher(searcher: str | Searcher, settings: dict) -> Searcher:
    """A registered searcher by name with its ``settings`` (read and checked by its declarations, as
    ``searcher.PARAM=value`` on the command line), or a ``Searcher`` object as it is; ``UserError`` for one that
    needs more of a space than named categorical choices offer (a supernet to train: darts, spos)."""
    if isinstance(searcher, Searcher):
        if settings:
            raise UserError(f"settings {', '.join(sorted(settings))} apply to a searcher given by name, not to a "
                            f"searcher object; set them when you make the object")
    elif isinstance(searcher, str):
        searcher = registry.create("searcher", searcher, settings)
    else:
        raise UserError(f"searcher must be a registered name or a Searcher, got {shorten(repr(searcher))}")
    missing = sorted(set(searcher.needs) - set(OPERATORS))
    if missing:  # refused now rather than at the second trial, when the space is known
        raise UserError(f"searcher {searcher.name!r} needs a space that offers {', '.join(missing)}, which a space of "
                        f"categorical parameters does not (it offers {', '.join(OPERATORS)})")
    return searcher
