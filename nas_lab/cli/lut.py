"""``nas-lab lut build`` / ``nas-lab lut validate``: a latency look-up table measured on this machine.

``build`` measures every block of a space (``objectives/latency/measure.py``) into
the table that ``objective=latency.lut`` and ``'constraint=latency.lut<=X'`` read;
``validate`` measures random whole models against the table's predictions.
"""

from __future__ import annotations

from pathlib import Path

from nas_lab.cli.common import add_command, interruptible
from nas_lab.core import registry
from nas_lab.core.settings import Setting, help_text, read_overrides

SETTINGS = {s.name: s for s in (
    Setting("space", str, "hyvitas", help="the space (its parameters as space.<param>=VALUE)"),
    Setting("threads", int, 1, ge=1, le=1024, help="thread count the table is for"),
    Setting("resolution", int, None, ge=1, le=4096, help="input side in px (none: the space's)"),
    Setting("clock", str, "cpu", choices=("cpu", "wall"), help="the thread's CPU time (threads=1; robust on a shared "
                                                                "machine) or wall time"),
    Setting("warmup", int, None, ge=0, le=100_000, help="untimed calls per round (none: 5)"),
    Setting("repeats", int, None, ge=1, le=100_000, help="timed calls per round, their median kept (none: 20)"),
    Setting("rounds", int, None, ge=1, le=1000, help="rounds over all blocks (or models) in turn, the fastest kept "
                                                     "(none: 5; validate: the table's)"),
    Setting("calibrate", int, None, ge=0, le=10_000,
            help="(build) whole models measured for the correction (none: 10)"),
    Setting("seed", int, None, ge=0, le=2**32 - 1, help="seed of the models drawn (none: 0 for build, 1 for validate)"),
    Setting("sample", int, 50, ge=1, le=100_000, help="(validate) random models measured end to end"),
    Setting("out", str, None, help="build: the table file (none: in $NAS_LAB_CACHE/latency); validate: the folder "
                                   "of validate.csv / validate.png (none: results/lut/<space>)"),
    Setting("lut", str, None, help="(validate) the table file, if not the default one"),
)}
#: settings that only one action takes
ONLY = {"build": ("calibrate",), "validate": ("sample", "lut")}

HELP = f"""\
Build a latency look-up table by measuring every distinct block of a space's models with torch on
this machine (batch 1, warm-up, median of repeated runs, fixed thread count), then a few whole models
for the correction (a line through their summed and measured latency); or validate a table against \
whole models measured end to end.
A build is resumable: what was measured is kept, so run the same command again after an interruption.

Settings (key=value):
{help_text(SETTINGS)}

examples:
  nas-lab lut build space=nb201
  nas-lab lut validate space=hyvitas sample=50
  nas-lab run space=hyvitas objective=id 'constraint=latency.lut<=12'
"""


def add_parser(sub) -> None:
    p = add_command(sub, "lut", "build or validate a latency look-up table measured on this machine", command, HELP)
    p.add_argument("action", choices=("build", "validate"), help="build (or finish) a table, or validate one")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=nb201 threads=1")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def command(args) -> int:
    from nas_lab.objectives.latency import measure
    from nas_lab.objectives.latency.table import TableKey, locate

    other = ONLY["validate" if args.action == "build" else "build"]
    known = {n: setting for n, setting in SETTINGS.items() if n not in other}
    s, space_params = read_overrides(known, args.overrides, f"lut {args.action}", passed=("space.",))
    params = {k.removeprefix("space."): v for k, v in space_params.items()}
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
