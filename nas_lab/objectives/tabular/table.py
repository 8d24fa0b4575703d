"""Columnar benchmark tables: one row per arch index of a space, one array per metric.

Row ``i`` holds the arch whose index is ``i``, so a lookup is plain array
indexing. A metric measured once per training seed is an ``(N, S)`` column;
anything else is ``(N,)``. Accuracies may be NaN (a diverged training).

Files never rely on row order: every row carries its decision values and
``load`` maps them back to arch indices, so a table written by another tool, or
with its rows shuffled, loads correctly or fails with one clear sentence.

- ``.npz`` (native): ``arch.<decision>`` arrays of option values, one array per
  metric (2-D when per seed) and a JSON ``__meta__`` entry (name, space,
  simulated, description).
- ``.csv`` (wide): a header of decision names then metric names, one row per
  arch; per-seed metric ``m`` is spelled ``m.seed0 .. m.seed<S-1>``. Empty
  cells read as NaN, as pandas writes them. ``save`` puts the metadata on a
  first ``# {json}`` line (pandas: ``read_csv(path, comment="#")``) so that a
  simulated table stays marked as simulated; ``load`` skips leading ``#`` lines.
- a NATS-Bench release (a folder, or a CSV with an ``ArchitectureString``
  column) is read by ``nats.read`` into the ``nb201`` table.

Column names follow one convention across benchmarks: ``id.top1``,
``id.top5``, ``ood.<dataset>``, ``ood.c.<corruption>.<severity>``,
``train.attempts``, ``train.hours``, ``latency.<device>``, ``params``, ``flops``.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, replacing
from nas_lab.core.space import Space

#: the 15 core ImageNet-C corruptions, in the order of Hendrycks & Dietterich
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
SEVERITIES = (1, 2, 3, 4, 5)

_ARCH = "arch."
_META = "__meta__"
_SEED = re.compile(r"^(.+)\.seed(\d+)$")
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def corruption_column(corruption: str, severity: int) -> str:
    """Column name of one ImageNet-C corruption at one severity."""
    return f"ood.c.{corruption}.{severity}"


class Table:
    """A benchmark table over every arch of one space (rows in arch-index order).

    ``name``, ``space`` (the space's name), ``simulated`` and a one-line
    ``description`` say what the data is; ``columns`` maps metric names to
    ``(N,)`` or ``(N, n_seeds)`` arrays.
    """

    def __init__(self, space: Space, columns: Mapping[str, np.ndarray], *, name: str,
                 simulated: bool = False, description: str = ""):
        n = space.cardinality
        self.columns: dict[str, np.ndarray] = {}
        seeds: dict[str, int] = {}
        for key, value in columns.items():
            arr = np.asarray(value)
            if arr.ndim not in (1, 2) or len(arr) != n:
                raise UserError(f"column {key!r} of table {name!r} has shape {arr.shape}; "
                                f"expected ({n},) or ({n}, seeds), one row per arch of space {space.name!r}")
            if arr.ndim == 2:
                seeds[key] = arr.shape[1]
            self.columns[key] = arr
        if len(set(seeds.values())) > 1:
            example = {s: k for k, s in seeds.items()}
            found = ", ".join(f"{k} has {s}" for s, k in sorted(example.items()))
            raise UserError(f"per-seed columns of table {name!r} disagree on the number of seeds ({found}); "
                            "every per-seed metric must have the same seeds")
        self.name = name
        self.space = space.name
        self.simulated = simulated
        self.description = description
        self.n_seeds = next(iter(seeds.values()), 1)
        self._space = space

    def __len__(self) -> int:
        return self._space.cardinality

    def __repr__(self) -> str:
        return (f"<table {self.name}: {len(self)} archs of {self.space}, "
                f"{len(self.columns)} columns, {self.n_seeds} seed(s)>")

    def column(self, name: str) -> np.ndarray:
        """One column; ``UserError`` with the closest name and the valid ones if it is missing."""
        if name not in self.columns:
            close = difflib.get_close_matches(name, self.columns, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"table {self.name!r} has no column {name!r}; {hint}valid: {_summary(self.columns)}")
        return self.columns[name]

    # -- files -------------------------------------------------------------
    def save(self, path) -> None:
        """Write the table as ``.npz`` (native, exact) or wide ``.csv``, chosen by the suffix."""
        path = Path(path)
        writer = {".npz": self._write_npz, ".csv": self._write_csv}.get(path.suffix.lower())
        if writer is None:
            raise UserError(f"cannot save table to {path}: unsupported suffix {path.suffix!r}; valid: .npz, .csv")
        try:
            with replacing(path) as tmp:
                writer(tmp)
        except OSError as exc:
            raise UserError(f"cannot write table to {path}: {reason(exc)}") from None

    @classmethod
    def load(cls, path, space: Space) -> Table:
        """Read a ``.npz`` or ``.csv`` table, or a benchmark release in its own layout, in arch-index order for
        ``space``."""
        path = Path(path)
        importer = _importer(path)
        if importer is not None:
            return importer(path, space)
        suffix = path.suffix.lower()
        reader = {".npz": _read_npz, ".csv": _read_csv}.get(suffix)
        if reader is None:
            raise UserError(f"cannot load table {path}: unsupported suffix {suffix!r}; valid: .npz, .csv")
        if not path.is_file():
            raise UserError(f"table file {path} does not exist; give the path of a .npz or .csv table")
        try:
            decisions, metrics, meta = reader(path, space)
        except _READ_ERRORS as exc:
            raise UserError(f"cannot read {path} as a {suffix} table ({exc})") from None
        if meta.get("space", space.name) != space.name:
            raise UserError(f"table {path} is for space {meta['space']!r}, not {space.name!r}; load it with that space")
        order = _row_order(space, decisions, path)
        for key, value in metrics.items():
            if len(value) != len(order):
                raise UserError(f"column {key!r} of table {path} has {len(value)} rows, "
                                f"but its decision columns have {len(order)}")
        return cls(space, {k: v[order] for k, v in metrics.items()}, name=meta.get("name", path.stem),
                   simulated=bool(meta.get("simulated", False)),
                   description=meta.get("description", f"benchmark table loaded from {path.name}"))

    def _decision_values(self) -> dict[str, np.ndarray]:
        archs = self._space.all_archs()
        return {d.name: np.asarray(d.options)[archs[:, i]] for i, d in enumerate(self._space.decisions)}

    def _meta(self) -> str:
        return json.dumps({"name": self.name, "space": self.space, "simulated": self.simulated,
                           "description": self.description})

    def _write_npz(self, path: Path) -> None:
        arrays = {_ARCH + k: v for k, v in self._decision_values().items()}
        arrays.update(self.columns)
        arrays[_META] = np.array(self._meta())
        with open(path, "wb") as fh:  # a file, not a name: NumPy would add .npz to the temporary name
            np.savez_compressed(fh, **arrays)

    def _write_csv(self, path: Path) -> None:
        header, cells = [], []
        for name, values in self._decision_values().items():
            header.append(name)
            cells.append(list(map(str, values.tolist())))
        for name, col in self.columns.items():
            per_seed = col.T if col.ndim == 2 else [col]
            for k, values in enumerate(per_seed):
                header.append(f"{name}.seed{k}" if col.ndim == 2 else name)
                cells.append(list(map(repr, values.tolist())))  # repr: shortest exact float text
        with open(path, "w", newline="") as fh:
            fh.write(f"# {self._meta()}\n" + ",".join(header) + "\n")
            fh.writelines(",".join(row) + "\n" for row in zip(*cells))


def _importer(path: Path):
    """The reader of a benchmark release that ``path`` is laid out as, or ``None`` for a native table."""
    from nas_lab.objectives.tabular import nats  # imports this module: load it on first use

    return nats.read if nats.recognises(path) else None


def _read_npz(path: Path, space: Space):
    with open(path, "rb") as fh:
        npy = fh.read(6) == b"\x93NUMPY"  # one bare array: np.load reads it, and it is refused below
    if not npy and not zipfile.is_zipfile(path):  # else numpy takes it for a pickle and advises loading it unsafely
        raise ValueError("it is not a NumPy .npz archive; a .npz table is one written by Table.save or np.savez")
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single array, not an archive of named columns")
    with data:
        arrays = {k: data[k] for k in data.files}
    meta = _parse_meta(str(arrays.pop(_META))) if _META in arrays else {}
    decisions = {k[len(_ARCH):]: v for k, v in arrays.items() if k.startswith(_ARCH)}
    metrics = {k: v for k, v in arrays.items() if not k.startswith(_ARCH)}
    return decisions, metrics, meta


def _read_csv(path: Path, space: Space):
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    comments = 0
    while comments < len(lines) and lines[comments].startswith("#"):
        comments += 1
    meta = _parse_meta(lines[0][1:]) if comments and lines[0][1:].strip().startswith("{") else {}
    lines = lines[comments:]
    if not lines:
        raise ValueError("it has no header row")
    header = [h.strip() for h in next(csv.reader(lines[:1]))]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise UserError(f"table {path} repeats column {repeated[0]!r} in its header; each column must appear once")
    body = [_fill_empty(line) for line in lines[1:]]
    if not body:
        raise ValueError("it has a header but no data rows")
    decision_cols = [j for j, h in enumerate(header) if h in space.names]
    metric_cols = [j for j, h in enumerate(header) if h not in space.names]
    values = _loadtxt(body, decision_cols, str)
    numbers = _loadtxt(body, metric_cols, float)
    decisions = {header[j]: values[:, i] for i, j in enumerate(decision_cols)}
    metrics, seeded = {}, {}
    for i, j in enumerate(metric_cols):
        match = _SEED.match(header[j])
        if match:
            seeded.setdefault(match[1], {})[int(match[2])] = numbers[:, i]
        else:
            metrics[header[j]] = numbers[:, i]
    for metric, seeds in seeded.items():
        if sorted(seeds) != list(range(len(seeds))):
            found = ", ".join(f"{metric}.seed{k}" for k in sorted(seeds))
            raise UserError(f"table {path} has per-seed columns {found}; "
                            f"expected {metric}.seed0 to {metric}.seed{len(seeds) - 1} without gaps")
        if metric in metrics:
            raise UserError(f"table {path} has both {metric!r} and per-seed {metric}.seed<k> columns; keep one form")
        metrics[metric] = np.stack([seeds[k] for k in range(len(seeds))], axis=1)
    return decisions, metrics, meta


def _parse_meta(text: str) -> dict:
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise ValueError("its metadata is not a JSON object")
    return meta


def _fill_empty(line: str) -> str:
    """A CSV data line with every empty cell spelled ``nan`` (pandas writes NaN as an empty cell)."""
    while ",," in line:  # one pass fills every other cell of a run of empty ones
        line = line.replace(",,", ",nan,")
    if line.startswith(","):
        line = "nan" + line
    return line + "nan" if line.endswith(",") else line


def _loadtxt(lines: list[str], cols: list[int], dtype) -> np.ndarray:
    """Columns ``cols`` of CSV data lines as a 2-D array (numpy's C parser: fast on big tables)."""
    if not cols:
        return np.empty((len(lines), 0), dtype=dtype)
    return np.loadtxt(lines, delimiter=",", quotechar='"', usecols=cols, dtype=dtype, ndmin=2)


def _row_order(space: Space, decisions: Mapping[str, np.ndarray], path: Path) -> np.ndarray:
    """Permutation putting the file's rows in arch-index order, or ``UserError`` if rows don't cover the space once."""
    missing = [name for name in space.names if name not in decisions]
    if missing:
        raise UserError(f"table {path} has no column for decision {missing[0]!r}; "
                        f"space {space.name!r} needs the decision columns {', '.join(space.names)}")
    lengths = {name: len(decisions[name]) for name in space.names}
    if len(set(lengths.values())) > 1:
        found = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise UserError(f"decision columns of table {path} differ in length ({found}); "
                        "every column needs one value per row")
    archs = np.stack([_option_index(d, decisions[d.name], path) for d in space.decisions], axis=1)
    index = space.index(archs)
    n = space.cardinality
    found, counts = np.unique(index, return_counts=True)  # the rows' size, never the space's (10^43 on ViTAS)
    if (counts > 1).any():
        first = int(np.argmax(counts > 1))
        raise UserError(f"table {path} has {counts[first]} rows for the arch "
                        f"{space.describe(space.arch(found[first]))} "
                        f"({int((counts > 1).sum())} archs repeated in all); each arch needs exactly one row")
    if len(found) < n:
        first = int(np.argmax(np.append(found != np.arange(len(found)), True)))  # the first index the rows skip
        raise UserError(f"table {path} lacks {n - len(found)} of the {n} archs of space {space.name!r} "
                        f"(first missing: {space.describe(space.arch(first))}); each arch needs exactly one row")
    order = np.empty(n, dtype=np.int64)
    order[index] = np.arange(n)
    return order


def _option_index(decision, values: np.ndarray, path: Path) -> np.ndarray:
    """Option index of each value of one decision column (numbers match numerically: ``"3.0"`` is 3)."""
    options = np.asarray(decision.options)
    values = np.asarray(values)
    try:
        match = values.astype(float)[:, None] == options.astype(float)
    except (TypeError, ValueError):
        match = values.astype(str)[:, None] == options.astype(str)
    found = match.any(axis=1)
    if not found.all():
        row = int(np.argmin(found))
        raise UserError(f"table {path}: value {values[row].item()!r} of decision {decision.name!r} "
                        f"(data row {row + 1}) is not an option; valid: {', '.join(map(str, decision.options))}")
    return match.argmax(axis=1)


def _summary(names) -> str:
    """Column names, with families of more than four (``latency.*``, ``ood.c.*``) collapsed."""
    groups: dict[str, list[str]] = {}
    for name in names:
        parts = name.split(".")
        groups.setdefault(".".join(parts[:2] if len(parts) > 2 else parts[:1]), []).append(name)
    shown = []
    for prefix, members in groups.items():
        shown.extend([f"{prefix}.*"] if len(members) > 4 else members)
    return ", ".join(shown)
