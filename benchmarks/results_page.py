"""Write a benchmark's measured table and figures into the docs' results section, stamped with where they came from.

Benchmarks run as ``python benchmarks/bench_x.py`` (so ``from results_page import add_docs_flag, write_page`` works)
and print what they measured; with ``--docs`` they also write ``docs/results/<name>.md`` and save their figures under
``docs/results/img/``. Each page says which commit (and whether the tree had uncommitted changes), the UTC date, the
machine (cores, CPU model, GPU) and the exact command line produced it, so no figure in the docs is typed by hand and
re-running the benchmark is how a page is updated.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
IMAGES = RESULTS / "img"


def add_docs_flag(parser: argparse.ArgumentParser) -> None:
    """Give a benchmark's parser ``--docs``: also write the measured results into the docs' results section."""
    parser.add_argument("--docs", action="store_true",
                        help="also write the measured results into the docs' results section (docs/results/)")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit() -> str:
    """The short commit of the working tree, with "+ uncommitted changes" when it differs from that commit."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown (not a git checkout)"
    status = _git("status", "--porcelain") or ""
    # results pages this or an earlier benchmark just wrote are not changes to the code that measured them
    dirty = [line for line in status.splitlines() if not line[3:].startswith("docs/results")]
    return f"{head} + uncommitted changes" if dirty else head


def cpu_model() -> str:
    """The CPU model as /proc/cpuinfo names it, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpu() -> str:
    """The GPU(s) torch sees, or "none" (torch absent, or no CUDA device)."""
    try:
        import torch
    except ImportError:
        return "none"
    if not torch.cuda.is_available():
        return "none"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ", ".join(names)


def machine() -> str:
    """Cores usable by this process, CPU model, GPU, and the 1-minute load average (other work on the machine
    slows what a benchmark times)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    return f"{cores} cores, {cpu_model()}, GPU: {gpu()}{load}"


def command_line() -> str:
    """The command that ran this benchmark, as it would be typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def stamp() -> str:
    """The provenance block a results page starts with."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "!!! info \"Generated page\"\n"
        f"    Written by `{command_line()}` (do not edit by hand; re-run the command to update it).\n\n"
        f"    - commit: `{commit()}`\n"
        f"    - date: {date}\n"
        f"    - machine: {machine()}\n"
    )


def write_page(args: argparse.Namespace, name: str, title: str, markdown: str, figures: dict | None = None,
               intro: str | None = None) -> Path | None:
    """Write ``docs/results/<name>.md``: ``title``, the provenance stamp, ``intro``, ``markdown`` (the measured
    table) and ``figures`` (``{file stem: matplotlib figure or path of an image file}``, or a list of them, saved as
    ``img/<name>-<stem>.png`` and shown below the table). Does nothing, and returns None, unless the benchmark ran
    with ``--docs``."""
    if not getattr(args, "docs", False):
        return None
    IMAGES.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}\n", stamp()]
    if intro:
        parts.append(intro.strip() + "\n")
    parts.append(markdown.strip() + "\n")
    if isinstance(figures, (list, tuple)):
        figures = {f"figure{i + 1}": figure for i, figure in enumerate(figures)}
    for stem, figure in (figures or {}).items():
        if isinstance(figure, (str, Path)):  # an image a study or a tool already wrote
            file = IMAGES / f"{name}-{stem}{Path(figure).suffix}"
            shutil.copyfile(figure, file)
        else:
            file = IMAGES / f"{name}-{stem}.png"
            figure.savefig(file, dpi=120, bbox_inches="tight")
        parts.append(f"![{stem}](img/{file.name})\n")
    page = RESULTS / f"{name}.md"
    page.write_text("\n".join(parts))
    print(f"wrote {page}", file=sys.stderr)
    return page


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.stream.flush()


class Recording:
    """What a recorded benchmark adds to its page beyond its printed output: Markdown sections and figures."""

    def __init__(self):
        self.sections: list[str] = []
        self.figures: dict = {}

    def add(self, markdown: str) -> None:
        self.sections.append(markdown)


@contextlib.contextmanager
def recorded(args: argparse.Namespace, name: str, title: str, intro: str | None = None):
    """Run the block with what it prints also kept; when it ends without an exception (a benchmark with nothing to
    measure raises ``SystemExit``) and the benchmark ran with ``--docs``, write the page: the printed output
    verbatim, then what the block ``add``-ed. The benchmark's figures are thus the ones it printed, never retyped."""
    recording = Recording()
    if not getattr(args, "docs", False):
        yield recording
        return
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield recording
    output = tee.copy.getvalue().rstrip()
    markdown = "\n\n".join(["What it printed:", f"```text\n{output}\n```", *recording.sections])
    write_page(args, name, title, markdown, recording.figures, intro)


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [header, rule, *[[str(c) for c in row] for row in rows]]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
