"""Training logs a user can look at afterwards: every scalar the training loop reports (loss, accuracy, learning
rate, images/s, ...) goes to ``scalars.csv`` always, and to TensorBoard event files when the ``tensorboard`` package
is installed (``pip install nas-lab[tensorboard]``; then ``tensorboard --logdir FOLDER``).

The CSV has one row per ``scalars`` call: ``step`` then one column per scalar name in order of first appearance.
A name seen for the first time (``val_accuracy`` at the end of the first epoch) adds a column: the file is
rewritten once with the wider header, earlier rows blank in it, so the file is always one valid table that pandas
or a spreadsheet reads as is. Opening a folder that already holds a log (a resumed training) appends to it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
from pathlib import Path

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, write_atomic

CSV_NAME = "scalars.csv"
#: the names TensorBoard gives its event files
EVENTS = "events.out.tfevents.*"


def tensorboard_available() -> bool:
    """Whether TensorBoard event files can be written (torch's SummaryWriter needs the ``tensorboard`` package)."""
    return importlib.util.find_spec("tensorboard") is not None


class TrainingLog:
    """Scalars of a training run, logged to ``folder``: a CSV always, TensorBoard events when ``tensorboard`` is
    true, or when it is None (the default) and the package is installed. A log already in the folder is appended
    to (a resumed training), or removed first when ``fresh``. A context manager; ``close`` ends it."""

    def __init__(self, folder: str | Path, tensorboard: bool | None = None, fresh: bool = False):
        self.folder = Path(folder)
        if tensorboard and not tensorboard_available():
            raise UserError("TensorBoard logs need the tensorboard package: pip install 'nas-lab[tensorboard]' "
                            "(or log the CSV alone)")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if fresh:  # a training that starts over: the log of an earlier attempt would mix with this one's
                for old in (self.folder / CSV_NAME, *self.folder.glob(EVENTS)):
                    old.unlink(missing_ok=True)
            self.path = self.folder / CSV_NAME
            self.columns = self._existing_columns()
            self._file = self.path.open("a", newline="")
        except OSError as err:
            raise UserError(f"cannot write the training log in {self.folder}: {reason(err)}; choose another "
                            "folder") from None
        self._csv = csv.writer(self._file)
        if not self.columns:
            self.columns = ["step"]
            self._csv.writerow(self.columns)
        self._events = None
        if tensorboard or (tensorboard is None and tensorboard_available()):
            from torch.utils.tensorboard import SummaryWriter

            self._events = SummaryWriter(log_dir=str(self.folder))

    def _existing_columns(self) -> list[str]:
        """The header of a log already in the folder (a resumed run appends under it); [] if none."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        with self.path.open(newline="") as f:
            header = next(csv.reader(f), [])
        return header if header[:1] == ["step"] else []

    @property
    def tensorboard(self) -> bool:
        """Whether this log writes TensorBoard event files."""
        return self._events is not None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``values`` (name -> number) at training ``step``; a non-finite value is kept (``nan``, ``inf``),
        since a diverging loss is what a user looks for."""
        new = [name for name in values if name not in self.columns]
        if new:
            self._widen(new)
        row = {name: float(value) for name, value in values.items()}
        self._csv.writerow([step, *(_cell(row[c]) if c in row else "" for c in self.columns[1:])])
        self._file.flush()
        if self._events is not None:
            for name, value in row.items():
                self._events.add_scalar(name, value, global_step=step)

    def _widen(self, names: list[str]) -> None:
        """Add columns ``names``: rewrite the file once with the wider header (earlier rows blank in them)."""
        self._file.close()
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        self.columns += names
        text = io.StringIO(newline="")
        csv.writer(text).writerows([self.columns] + [r + [""] * (len(self.columns) - len(r)) for r in rows])
        write_atomic(self.path, text.getvalue())
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)

    def close(self) -> None:
        """Flush and close the CSV and the event files (idempotent)."""
        if not self._file.closed:
            self._file.close()
        if self._events is not None:
            self._events.close()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cell(value: float) -> str:
    """A float as the CSV writes it: ``repr`` precision (round-trips exactly), ``nan``/``inf`` as Python spells them."""
    return repr(value) if math.isfinite(value) else str(value)
