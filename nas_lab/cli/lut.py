"""``nas-lab lut build`` / ``nas-lab lut validate``: a latency look-up table measured on this machine.

``build`` measures every block of a space (``objectives/latency/measure.py``) into
the table that ``objective=latency.lut`` and ``constraint=latency.lut<=X`` read;
``validate`` measures random whole models against the table's predictions.
"""

from __future__ import annotations

from pathlib import Path

from nas_lab.cli.common import add_command, interruptible
from nas_lab.core import registry
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.registry import Param

HELP = """\
Build a latency look-up table by measuring every distinct block of a space's models with torch on
this machine (batch 1, warm-up, median of repeated runs, fixed thread count), then a few whole models
for the correction (a line through their summed and measured latency); or validate a table against whole models measured end to end.
A build is resumable: what was measured is kept, so run the same command again after an interruption.

Settings (key=value):
  space=hyvitas space.<param>=VALUE   the space (and its parameters, e.g. space.variant=xxs)
  threads=1 resolution=PX             thread count and input side (default: the space's) the table is for
  clock=cpu|wall                      time the thread's CPU time (threads=1; robust on a shared machine) or wall time
  warmup=5 repeats=20 rounds=5        per round: untimed calls, then timed calls (median); rounds over all
                                      blocks (or models) in turn, the fastest round kept (validate: the table's)
  calibrate=10 seed=0                 (build) whole models measured for the correction, drawn with seed
  sample=50 seed=1                    (validate) random models measured end to end, drawn with seed
  out=PATH                            build: the table file (default: in $NAS_LAB_CACHE/latency);
                                      validate: folder for validate.csv / validate.png (default results/lut/<space>)
  lut=PATH                            (validate) the table file, if not the default one

examples:
  nas-lab lut build space=nb201
  nas-lab lut validate space=hyvitas sample=50
  nas-lab run space=hyvitas objective=id constraint=latency.lut<=12
"""

SETTINGS = {p.name: p for p in (
    Param("space", "hyvitas", str), Param("threads", 1, int), Param("resolution", None, int), Param("clock", "cpu", str),
    Param("warmup", None, int), Param("repeats", None, int), Param("rounds", None, int), Param("calibrate", None, int),
    Param("seed", None, int),
    Param("sample", 50, int), Param("out", None, str), Param("lut", None, str),
)}
#: settings that only one action takes
ONLY = {"build": ("calibrate",), "validate": ("sample", "lut")}


def add_parser(sub) -> None:
    p = add_command(sub, "lut", "build or validate a latency look-up table measured on this machine", command, HELP)
    p.add_argument("action", choices=("build", "validate"), help="build (or finish) a table, or validate one")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=nb201 threads=1")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _settings(overrides: list[str], action: str) -> tuple[dict, dict]:
    """``(settings, space parameters)`` of the overrides, each setting coerced to its type."""
    values, space_params = {n: p.default for n, p in SETTINGS.items()}, {}
    other = ONLY["validate" if action == "build" else "build"]
    for item in overrides:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. space=nb201 threads=1")
        if key.startswith("space.") and len(key) > 6:
            space_params[key[6:]] = value
        elif key in SETTINGS and key not in other:
            values[key] = SETTINGS[key].coerce(value, "")
        else:
            valid = [n for n in SETTINGS if n not in other] + ["space.<param>"]
            raise UserError(f"unknown setting {shorten(repr(key))} of `nas-lab lut {action}`; valid: {', '.join(valid)}")
    return values, space_params


def command(args) -> int:
    from nas_lab.objectives.latency import measure
    from nas_lab.objectives.latency.table import TableKey, locate

    s, params = _settings(args.overrides, args.action)
    space = registry.create("space", s["space"], params)
    timing = {k: s[k] for k in ("warmup", "repeats", "rounds")}
    progress = not args.no_progress
    if args.action == "build":
        key = TableKey.current(space, s["threads"], s["resolution"], s["clock"])
        path = Path(s["out"]).expanduser().resolve() if s["out"] else key.default_path()
        with interruptible(f"every block measured so far is in {path}; run the same command again to finish the table"):
            table, measured = measure.build(space, key, path, calibrate=s["calibrate"], seed=s["seed"],
                                            progress=progress, **timing)
        n = len(space.latency_blocks(key.resolution))
        print(f"lut build {space.name}: {measured} times taken now; {n} blocks and "
              f"{len(table.calibration['measured'])} whole models x {table.rounds} rounds in the table, correction "
              f"{table.correction(space)}\n  {key.device}, torch {key.torch}, {key.threads} thread(s), "
              f"{key.resolution}x{key.resolution} inputs, batch 1, {key.clock} clock\ntable {path}")
        return 0
    table = locate(space, s["threads"], s["resolution"], s["lut"], s["clock"])
    out = Path(s["out"] or Path("results/lut") / space.name)
    with interruptible("a validation keeps nothing until it ends; run the same command again"):
        result = measure.validate(space, table, s["sample"], 1 if s["seed"] is None else s["seed"], out=out,
                                  progress=progress, **timing)
    print(result.text(table))
    print("written: " + ", ".join(str(p) for p in result.paths))
    return 0
