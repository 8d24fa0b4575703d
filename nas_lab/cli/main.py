"""The ``nas-lab`` command: ``run`` one search, ``study`` a grid of them, ``report`` it, ``plot`` a run or a study's
decision importance, ``list`` plug-ins;
``precompute`` zero-cost proxies into their cache and ``correlate`` them with a benchmark metric; ``lut`` builds
and validates a latency look-up table; ``train`` trains one arch from scratch, tests and exports it.

Each command is a module of ``nas_lab.cli`` with ``add_parser(sub)``, which
registers its ``command(args)``; ``common`` says how any of them ends (exit
status, the one sentence on bad input or an interrupt). This module only builds
the parser and dispatches.
"""

from __future__ import annotations

import argparse
import sys

from nas_lab.cli import correlate, listing, lut, plot, precompute, report, run, study, train
from nas_lab.cli.common import run_command
from nas_lab.core.errors import shorten

#: the commands, in the order ``nas-lab --help`` lists them
COMMANDS = (run, study, precompute, correlate, lut, train, report, plot, listing)


class Parser(argparse.ArgumentParser):
    """argparse, ending a malformed command line like any other bad input: one sentence and exit status 2 (its
    own error prints the usage block first)."""

    def error(self, message: str):
        self.exit(2, f"nas-lab: error: {message}; see `{self.prog} --help`\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="nas-lab", description="Neural architecture search research framework.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)

    # overrides may come after options (``run --json seed=3``): gather the stragglers
    args, extra = parser.parse_known_args(argv)
    stray = [e for e in extra if e.startswith("-") or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {shorten(' '.join(stray))}")
    if extra:
        args.overrides += extra
    return run_command(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
