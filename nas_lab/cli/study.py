"""``nas-lab study``: a grid of runs (searchers x objectives x repeats) in parallel, recorded and resumable, then
its report."""

from __future__ import annotations

import sys
from pathlib import Path

from nas_lab.cli.common import add_command, interruptible
from nas_lab.cli.report import print_report
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.registry import Param
from nas_lab.study.config import StudyConfig
from nas_lab.study.engine import Progress, run_study
from nas_lab.study.store import DAMAGED_FILE, RUNS_FILE, FolderLock, Store

HELP = """\
Run a comparison study: every searcher x every objective x repeats, in parallel,
recorded run by run in STUDY_DIR/runs.jsonl (resumable: run the same command
again after a crash to finish), then report it (Markdown, CSV, LaTeX, plots).

Overrides (key=value):
  repeats=N budget=N seed=N space=NAME table=NAME|PATH   change the study
  searchers=a,b objectives=x,y                          run a subset
  objectives=[a,b],[c,d]                                 several-metric objectives, in brackets
  report=params,test.cifar10                            the report's columns (default: the table's accuracies)
  out=DIR            study folder (default results/studies/<name>)
  workers=N          parallel workers (default: number of cores)
  executor=local|ray executor.address=auto              Ray: local, or join a cluster

examples:
  nas-lab study experiments/hyvitas_table4.yaml
  nas-lab study experiments/hyvitas_table4.yaml repeats=20 executor=ray
"""

EXECUTION_DEFAULTS = {"out": "", "workers": "", "executor": "local", "executor.address": ""}


def add_parser(sub) -> None:
    p = add_command(sub, "study", "run a comparison study (searchers x objectives x repeats) and report it", command,
                    HELP)
    p.add_argument("config", metavar="CONFIG.yaml", help="study config, e.g. experiments/hyvitas_table4.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. repeats=50 workers=2 executor=ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def command(args) -> int:
    settings = dict(EXECUTION_DEFAULTS)
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. repeats=50 workers=2")
        (settings if key.strip() in EXECUTION_DEFAULTS else overrides)[key.strip()] = value.strip()
    study = StudyConfig.load(args.config, overrides)
    directory = Path(settings["out"] or Path("results/studies") / study.name)
    workers = Param("workers", 0, int).coerce(settings["workers"], "") if settings["workers"] else None
    keys = {spec.key for spec in study.runs()}
    FolderLock(directory).acquire().release()  # a folder in use is refused before any bar is drawn (run_study locks it)
    already = [r for r in Store(directory).records() if r["key"] in keys]
    progress = Progress(len(keys), already, enabled=not args.no_progress)
    try:
        with interruptible(f"finished runs are kept in {directory}; run the same command again to complete the study"):
            outcome = run_study(study, directory, workers, settings["executor"], settings["executor.address"] or None,
                                on_records=progress.update)
    finally:
        progress.close()
    if outcome.damaged:
        print(f"nas-lab: note: {outcome.damaged} damaged line(s) of {directory / RUNS_FILE} (blank, or not a JSON run "
              f"record) were moved to {directory / DAMAGED_FILE} and their runs run again", file=sys.stderr)
    print(f"study {study.name}: {outcome.ran} runs now, {outcome.skipped} already recorded, {outcome.total} in all; folder {directory}")
    return print_report(directory)
