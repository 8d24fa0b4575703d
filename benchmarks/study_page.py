"""A study's report as a results page of the docs: its table and plots, as ``nas-lab report`` writes them.

A study is run with ``nas-lab study CONFIG`` (hours, for the 500-repeat ones); this script then rewrites its report
from the run records (``nas_lab.study.report.write_report``, what ``nas-lab report`` does) and, with ``--docs``,
writes ``docs/results/study-<name>.md``: the study's config, the report's Markdown and its PNG plots, stamped like
every results page. So the study tables the docs quote are the report's own, never retyped.

    nas-lab study experiments/nb201.yaml table=PATH
    python benchmarks/study_page.py results/studies/nb201 --docs
"""

import argparse
import sys
from pathlib import Path

from nas_lab.study.report import write_report

from results_page import add_docs_flag, recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_dir", type=Path, help="a study folder (results/studies/<name>)")
    add_docs_flag(parser)
    args = parser.parse_args()
    name = args.study_dir.resolve().name
    config = (args.study_dir / "study.yaml").read_text()
    with recorded(args, f"study-{name}", f"Study {name}", f"The report of `nas-lab study` over {name}'s config:\n\n"
                  f"```yaml\n{config.strip()}\n```") as page:
        report = write_report(args.study_dir)
        print(f"{name}: report rewritten from {args.study_dir / 'runs.jsonl'}")
        # the report's own Markdown, its title a section of the page, its plots shown rather than named
        lines = [line for line in report.markdown.splitlines() if not line.startswith("Plots: ")]
        page.add("\n".join(["#" + lines[0], *lines[1:]]))
        page.figures.update({plot.stem: plot for plot in report.paths if plot.suffix == ".png"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
