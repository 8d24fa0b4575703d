"""``nas-lab report``: (re)write a study folder's report and plots, and print the report."""

from __future__ import annotations

import sys
from pathlib import Path

from nas_lab.cli.common import add_command
from nas_lab.study.store import Store


def add_parser(sub) -> None:
    p = add_command(sub, "report", "(re)write the report and plots of a study folder", command)
    p.add_argument("directory", metavar="STUDY_DIR", help="folder a study wrote, e.g. results/studies/hyvitas_table4")


def command(args) -> int:
    return print_report(Path(args.directory))


def print_report(directory: Path) -> int:
    """Write the report and plots of the study in ``directory``; print the report and the files written."""
    from nas_lab.study.report import write_report

    report = write_report(directory)
    store = Store(directory)
    for _ in store.records():  # the report skips damaged lines too: say how many
        pass
    if store.damaged:
        print(f"nas-lab: warning: {store.damaged_note()}", file=sys.stderr)
    print(report.markdown)
    print("written: " + ", ".join(str(p) for p in report.paths))
    return 0
