"""``nas-lab plot``: the figure of one run record, or the decision importance of a study folder."""

from __future__ import annotations

from pathlib import Path

from nas_lab.cli.common import add_command
from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, save_figure
from nas_lab.core.settings import Setting, help_text, read_overrides

#: figure formats ``out=`` may name, by suffix
FORMATS = ("png", "pdf", "svg")
SETTINGS = {s.name: s for s in (
    Setting("kind", str, None, choices=("run", "importance"),
            help="what to draw (none: run for a record file, importance for a study folder)"),
    Setting("out", str, None, help=f"figure file, its format by suffix: {', '.join(FORMATS)} "
                                   "(none: next to the input, RUN.png or STUDY/importance.png)"),
    Setting("objective", str, None, help="importance: the study objective whose runs are used (none: the first)"),
    Setting("metric", str, None, help="importance: the metric explained (none: the objective's first target)"),
    Setting("seed", int, 0, ge=0, le=2**32 - 1, help="importance: seed of fANOVA's random forest"),
    Setting("trees", int, 64, ge=1, le=1024,
            help="importance: trees of fANOVA's random forest (more: steadier shares, slower)"),
    Setting("dpi", int, 150, ge=50, le=600, help="resolution of a png"),
)}

HELP = f"""\
Draw a figure from results already on disk; nothing is run again.

kind=run (the input is a run record, the JSON file `nas-lab run` writes under results/runs/):
  one target:      every evaluated architecture's value in evaluation order under the incumbent
                   curve (best feasible so far), with the benchmark table's optimum where recorded;
  several targets: every evaluated architecture on each pair of targets with the run's front (and
                   the true front on a tabulated space), and the hypervolume against evaluations.
kind=importance (the input is a study folder): which decisions of the space explain the target,
  as fANOVA shares of its variance over every architecture the study's runs evaluated (a bar chart).
Far degenerate architectures (e.g. NAS-Bench-201 cells with 10 % accuracy at 0 ms) are drawn at
the axis edge with their values noted, instead of stretching the axes.

Settings (key=value):
{help_text(SETTINGS)}

examples:
  nas-lab plot results/runs/nb201_gp_test.cifar10_seed0_20261207-101500.json
  nas-lab plot RUN.json out=figures/run.pdf
  nas-lab plot results/studies/nb201 kind=importance metric=test.cifar10 out=importance.svg
"""


def add_parser(sub) -> None:
    p = add_command(sub, "plot", "draw the figure of a run record, or a study's decision importance", command, HELP)
    p.add_argument("path", metavar="RUN.json|STUDY_DIR",
                   help="a run record (kind=run) or a study folder (kind=importance)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. out=run.pdf kind=importance")


def command(args) -> int:
    s, _ = read_overrides(SETTINGS, args.overrides, "plot")
    path = Path(args.path)
    kind = s["kind"] or ("importance" if path.is_dir() else "run")
    default = path / "importance.png" if kind == "importance" else path.with_suffix(".png")
    out = Path(s["out"]) if s["out"] else default
    if out.suffix.lstrip(".").lower() not in FORMATS:
        raise UserError(f"out={out} has no figure suffix; name a file ending in {', '.join('.' + f for f in FORMATS)}")
    if out.is_dir():
        raise UserError(f"out={out} is a folder; name a file in it, e.g. out={out / 'figure.png'}")
    if kind == "run":
        figure = _run_figure(path)
    else:
        figure = _importance_figure(path, s)
    try:
        save_figure(figure, out, dpi=s["dpi"])
    except OSError as err:
        raise UserError(f"cannot write the figure to {out}: {reason(err)}; choose another out=FILE") from None
    print(f"written: {out}")
    return 0


def _run_figure(path: Path):
    from nas_lab.core import record
    from nas_lab.study.run_plots import run_figure

    if path.is_dir():
        raise UserError(f"{path} is a folder, not a run record; give a record file (`nas-lab run` writes them under "
                        "results/runs/), or kind=importance for a study folder")
    return run_figure(record.read(path))


def _importance_figure(path: Path, s: dict):
    from nas_lab.study.importance import importance_figure, study_importance
    from nas_lab.study.report import read_study

    study = read_study(path)
    return importance_figure(study_importance(study, s["objective"], s["metric"], s["seed"], s["trees"]))
