"""``nb201``: the real NAS-Bench-201 / NATS-Bench topology table, read from public releases.

Two releases make the table, both indexed by the NB201 / NATS-Bench topology
index (``NB201Space.index``):

- ``nats_bench.csv`` (NATS-Bench API export, e.g. the v-tao/nats-bench-landscape
  CSV): test accuracy in % after 200 epochs, mean over training seeds, on
  CIFAR-10, CIFAR-100 and ImageNet16-120 (columns ``test.cifar10``,
  ``test.cifar100``, ``test.imagenet16``). Rows are matched to archs by their
  arch strings, never by row order. There is NO validation accuracy in it, so a
  search on this table optimises TEST accuracy: published NB201 search results
  select on validation accuracy and are not directly comparable.
- optionally HELP's ``help_nasbench201_latency/<device>.pt`` next to the CSV:
  measured latency in ms of every cell on 27 devices (``latency.<device>``).
  Each file is a PyTorch zip archive whose pickle holds a plain list; it is read
  without torch by an unpickler that refuses every global, so a tampered file
  can fail to load but can never run code.

``params`` is computed by the space (``NB201Space.params``) for the CIFAR-10
network (10 classes); the CIFAR-100 and ImageNet16-120 networks differ only in
their classifier.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import pickle
import zipfile
from functools import cache
from pathlib import Path

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.space import Space
from nas_lab.objectives.tabular.table import Table
from nas_lab.spaces.nb201 import NB201Space

__all__ = ["CSV_NAME", "DESCRIPTION", "LATENCY_DIR", "build_table", "locate", "read", "recognises"]

CSV_NAME = "nats_bench.csv"
LATENCY_DIR = "help_nasbench201_latency"
DESCRIPTION = (
    "NATS-Bench test accuracy (mean over seeds, 200 epochs) and HELP latency; searches here optimise "
    "TEST accuracy — published NB201 search results used validation accuracy, so do not compare them as equal "
    "(params: the CIFAR-10 network's count)"
)

_ARCH_COLUMN = "ArchitectureString"
_ACCURACY = {
    "CIFAR10TestAccuracy200Epochs": "test.cifar10",
    "CIFAR100TestAccuracy200Epochs": "test.cifar100",
    "ImageNetTestAccuracy200Epochs": "test.imagenet16",
}
_INDEX_FILE = "str_arch2idx.pt"  # HELP's string -> index map: the CSV's own strings give the index already
_ENV_PATH, _ENV_DATA = "NAS_LAB_NB201", "NAS_LAB_DATA"


def recognises(path: Path) -> bool:
    """Whether ``path`` is in the NATS-Bench release layout: a folder, or a CSV whose header names
    ``ArchitectureString``."""
    if path.is_dir():
        return True
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, newline="", errors="replace") as fh:
        header = next(csv.reader([fh.readline()]), [])
    return _ARCH_COLUMN in (h.strip() for h in header)


def read(path, space: Space) -> Table:
    """The ``nb201`` table from ``nats_bench.csv`` (or a folder holding it) plus any HELP latency files beside it."""
    path = Path(path)
    csv_path = path / CSV_NAME if path.is_dir() else path
    if path.is_dir() and not csv_path.is_file() and space.name != NB201Space.name:
        raise UserError(f"folder {path} holds no table that space {space.name!r} can read (a folder is read as a "
                        f"NATS-Bench release, {CSV_NAME}, for space nb201 only); give a .npz or .csv table file, or "
                        f"leave out table= for the space's own ({space.default_table or 'none'})")
    _check_space(space)
    if not csv_path.is_file():
        where = f"folder {path} holds no {CSV_NAME}" if path.is_dir() else f"{path} does not exist"
        raise UserError(f"cannot load the NB201 table: {where}; give {CSV_NAME} or the folder that holds it")
    frame = _read_csv(csv_path)
    order = _row_order(frame[_ARCH_COLUMN], space, csv_path)
    columns = {name: frame[col][order] for col, name in _ACCURACY.items()}
    columns.update(_latencies(csv_path.parent / LATENCY_DIR, space.cardinality))
    columns["params"] = space.params(space.all_archs(), num_classes=10)
    return Table(space, columns, name="nb201", simulated=False, description=DESCRIPTION)


def _check_space(space: Space) -> None:
    if space.name != NB201Space.name or space.decisions != NB201Space.decisions:
        raise UserError(f"the NATS-Bench table is defined over space 'nb201' only, not {space.name!r}; use space=nb201")


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """The accuracy columns (float arrays; empty or NA cells are NaN) and the arch strings (str array) of the CSV.

    Read with the csv module, not pandas: this is the tabular run path, and
    pandas would cost more time and memory than the whole 3 MB table. Blank
    lines are skipped and other columns ignored, as ``pandas.read_csv`` does.
    """
    wanted = (*_ACCURACY, _ARCH_COLUMN)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = csv.reader(fh)
            header = [h.strip() for h in next(rows, [])]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise UserError(f"NATS-Bench CSV {path} lacks the column(s) {', '.join(missing)}; "
                                f"it needs {', '.join(_ACCURACY)} and {_ARCH_COLUMN}")
            at = [header.index(c) for c in wanted]
            width = max(at) + 1
            pick = operator.itemgetter(*at)
            cells = [pick(row) if len(row) >= width else pick(row + [""] * width) for row in rows if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path} as a NATS-Bench CSV ({exc})") from None
    columns = list(zip(*cells)) if cells else [()] * len(wanted)
    frame = {_ARCH_COLUMN: np.array(columns[-1], dtype=str)}
    for name, values in zip(_ACCURACY, columns):
        frame[name] = _floats(values, name, path)
    return frame


#: cells read as missing values (NaN), as pandas reads them
_NA = {"", "nan", "NaN", "NAN", "-nan", "-NaN", "NA", "N/A", "n/a", "<NA>", "#N/A", "#NA", "null", "NULL", "None"}


def _floats(values, column: str, path: Path) -> np.ndarray:
    """A float array of a column's cells (missing ones NaN); ``UserError`` naming the first cell that is no number."""
    try:
        return np.array(values, dtype=float)  # every cell a number: numpy parses them all at once
    except ValueError:
        pass
    try:
        return np.array([float("nan") if v.strip() in _NA else float(v) for v in values], dtype=float)
    except ValueError:
        row = next(i for i, v in enumerate(values) if not _is_number(v))
        raise UserError(f"cannot read {path} as a NATS-Bench CSV: data row {row + 1}, column {column}, holds "
                        f"{values[row][:40]!r}, not a number (or an empty cell for a missing value)") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip() in _NA
    return True


def _row_order(strings: np.ndarray, space: Space, path: Path) -> np.ndarray:
    """Row of each arch index, from the rows' arch strings; ``UserError`` unless each arch has exactly one row."""
    n = space.cardinality
    if len(strings) < n:
        raise UserError(f"NATS-Bench CSV {path} has {len(strings):,} data rows, fewer than the {n:,} archs of "
                        "NB201 (a truncated file?); it needs one row per arch")
    texts = strings
    try:
        index = space.index(space.from_strings(texts))
    except UserError as exc:  # it names the string, not its row: find the row (error path only)
        row = next(i for i, text in enumerate(texts) if not _parses(space, text))
        raise UserError(f"NATS-Bench CSV {path}, data row {row + 1}: {exc}") from None
    counts = np.bincount(index, minlength=n)
    if (counts > 1).any():
        rows = np.flatnonzero(index == int(np.argmax(counts > 1)))
        raise UserError(f"NATS-Bench CSV {path} repeats the arch {strings[rows[0]]} in data rows "
                        f"{rows[0] + 1} and {rows[1] + 1}; each of the {n:,} archs needs exactly one row")
    order = np.empty(n, dtype=np.int64)
    order[index] = np.arange(n)  # n rows, none repeated: every arch is present
    return order


def _parses(space: Space, text: str) -> bool:
    try:
        space.from_strings(text)
    except UserError:
        return False
    return True


def _latencies(folder: Path, n: int) -> dict[str, np.ndarray]:
    """``latency.<device>`` columns from HELP's ``<device>.pt`` files, or none without the folder."""
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.glob("*.pt") if p.name != _INDEX_FILE)
    return {f"latency.{p.stem}": _read_latency(p, n) for p in files}


class _NoGlobals(pickle.Unpickler):
    """Unpickles plain containers and numbers only: any reference to a class or function is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it refers to the global {module}.{name}, refused: only plain numbers are loaded")


def _read_latency(path: Path, n: int) -> np.ndarray:
    """One HELP latency file: a PyTorch zip archive whose ``data.pkl`` is a list of ``n`` numbers (ms)."""
    expected = f"expected a PyTorch zip archive holding a list of {n:,} latencies in ms"
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [m for m in archive.namelist() if m.rsplit("/", 1)[-1] == "data.pkl"]
            if len(pickles) != 1:
                raise ValueError(f"it holds {len(pickles)} data.pkl members, not one")
            values = _NoGlobals(io.BytesIO(archive.read(pickles[0]))).load()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can fail with almost any exception type
        raise UserError(f"cannot read latency file {path} ({exc}); {expected}") from None
    if not isinstance(values, list):
        raise UserError(f"latency file {path} holds a {type(values).__name__}, not a list; {expected}")
    if len(values) != n:
        raise UserError(f"latency file {path} lists {len(values):,} values, not {n:,}; {expected}")
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        kinds = ", ".join(sorted({type(v).__name__ for v in values}))
        raise UserError(f"latency file {path} holds values of type {kinds}; {expected}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argmax(bad))
        raise UserError(f"latency file {path} has the non-finite value {arr[first]} at index {first}; {expected}")
    return arr.astype(float)


def locate() -> Path:
    """Where the NB201 data is: ``$NAS_LAB_NB201``, else ``$NAS_LAB_DATA/nats_bench.csv``, else
    ``./data/nats_bench.csv``."""
    explicit = os.environ.get(_ENV_PATH)
    if explicit:
        if not Path(explicit).exists():
            raise UserError(f"{_ENV_PATH}={explicit} does not exist; set it to {CSV_NAME} or the folder that holds it")
        return Path(explicit).resolve()
    candidates = [Path(os.environ[_ENV_DATA]) / CSV_NAME] if os.environ.get(_ENV_DATA) else []
    candidates.append(Path.cwd() / "data" / CSV_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise UserError(
        f"no NB201 data found (looked for {' and '.join(map(str, candidates))}); pass table=PATH, the folder with "
        f"{CSV_NAME} from the NATS-Bench API (e.g. the v-tao/nats-bench-landscape CSV) and optionally HELP's "
        f"{LATENCY_DIR}/ latency files, or set {_ENV_DATA} to that folder"
    )


@cache
def _cached(path: Path) -> Table:
    return read(path, NB201Space())


def build_table(space: Space) -> Table:
    """The real NB201 table found by ``locate`` (no download), read once per process and path."""
    _check_space(space)
    return _cached(locate())
