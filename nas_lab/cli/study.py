"""``nas-lab study``: a grid of runs (searchers x objectives x repeats) in parallel, recorded and resumable, then
its report."""

from __future__ import annotations

import sys
from pathlib import Path

from nas_lab.cli.common import add_command, interruptible
from nas_lab.cli.report import print_report
from nas_lab.core.parallel import ADDRESS, EXECUTOR, GPUS_PER_RUN, WORKERS
from nas_lab.core.settings import Setting, help_text, parse_overrides, read
from nas_lab.study.config import STUDY_SETTINGS, StudyConfig
from nas_lab.study.engine import Progress, run_study
from nas_lab.study.store import DAMAGED_FILE, RUNS_FILE, FolderLock, Store, key_of

#: how and where a study runs (what it is comes from its config and the other overrides)
EXECUTION = {s.name: s for s in (
    Setting("out", str, None, help="study folder (none: results/studies/<name>)"),
    WORKERS, EXECUTOR, ADDRESS, GPUS_PER_RUN,
)}


HELP = f"""\
Run a comparison study: every searcher x every objective x repeats, in parallel,
recorded run by run in STUDY_DIR/runs.jsonl (resumable: run the same command
again after a crash to finish), then report it (Markdown, CSV, LaTeX, plots).

Overrides (key=value) of the config's keys, written as in `nas-lab run`:
{help_text({k: v for k, v in STUDY_SETTINGS.items()
            if k not in ("searchers", "space_params", "objective_params", "dataset_params")})}
  searchers=a,b            run a subset of the config's searcher rows
  objective=a,b            one objective of two metrics, as in `nas-lab run` ([a,b] alike)
  'objectives=[a,b],[c,d]' a grid of objectives: a bracket is one objective, a bare comma separates them
And how the study runs:
{help_text(EXECUTION)}

examples:
  nas-lab study experiments/hyvitas_table4.yaml
  nas-lab study experiments/hyvitas_table4.yaml repeats=20 executor=ray
"""


def add_parser(sub) -> None:
    p = add_command(sub, "study", "run a comparison study (searchers x objectives x repeats) and report it", command,
                    HELP)
    p.add_argument("config", metavar="CONFIG.yaml", help="study config, e.g. experiments/hyvitas_table4.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. repeats=50 workers=2 executor=ray")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def command(args) -> int:
    overrides = parse_overrides(args.overrides)
    settings = read(EXECUTION, {k: v for k, v in overrides if k in EXECUTION}, "")
    settings = {**{n: s.default for n, s in EXECUTION.items()}, **settings}
    study = StudyConfig.load(args.config, {k: v for k, v in overrides if k not in EXECUTION})
    directory = Path(settings["out"] or Path("results/studies") / study.name)
    workers = settings["workers"]
    keys = {spec.key for spec in study.runs()}
    if directory.is_dir():  # a folder in use is refused before any bar is drawn (run_study locks it); a new one is free
        FolderLock(directory).acquire().release()
    already = [r for r in Store(directory).records() if key_of(r) in keys]
    progress = Progress(len(keys), already, enabled=not args.no_progress)
    try:
        with interruptible(f"finished runs are kept in {directory}; run the same command again to complete the study"):
            outcome = run_study(study, directory, workers, settings["executor"], settings["executor.address"],
                                on_records=progress.update, gpus_per_run=settings["executor.gpus_per_run"])
    finally:
        progress.close()
    if outcome.damaged:
        print(f"nas-lab: note: {outcome.damaged} damaged line(s) of {directory / RUNS_FILE} (blank, not JSON, "
              f"or not a complete run record) were moved to {directory / DAMAGED_FILE} and their runs run again",
              file=sys.stderr)
    print(f"study {study.name}: {outcome.ran} runs now, {outcome.skipped} already recorded, {outcome.total} in all; "
          f"folder {directory}")
    return print_report(directory)
