"""What every ``nas-lab`` command shares: how it is registered, and how it ends (its exit status, and what it
says when it fails or is interrupted).

Bad input of any kind ends in one sentence on stderr and exit status 2; a
traceback means a bug in nas_lab (or in a plug-in), never a user mistake. An
interrupted command (Ctrl-C, or SIGTERM while it works) says in one sentence
what it kept and how to go on, and exits as the shell reports that signal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable

from nas_lab.core.errors import UserError, shorten


def add_command(sub, name: str, blurb: str, command: Callable[[argparse.Namespace], int],
                description: str | None = None) -> argparse.ArgumentParser:
    """Register the command ``name``, run by ``command``: ``blurb`` in ``nas-lab --help``, ``description`` (laid
    out as written) in its own ``--help``."""
    p = sub.add_parser(name, help=blurb, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=command)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a terminated command cleans up as after Ctrl-C."""


class Interrupted(Exception):
    """A command stopped by ``signum``; its message says what was kept and how to go on."""

    def __init__(self, sentence: str, signum: int):
        super().__init__(sentence)
        self.signum = signum


@contextlib.contextmanager
def interruptible(sentence: str):
    """The block is a command's long work: SIGTERM raises ``Terminated`` in it, so workers are stopped and finished
    work kept as on Ctrl-C; either interrupt ends the command as ``Interrupted`` with ``sentence``."""
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        yield
    except KeyboardInterrupt as exc:
        raise Interrupted(sentence, signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum, frame):
    raise Terminated()


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``command(args)``'s exit status; one sentence on stderr for bad input (2) or an interrupt (128 + signal)."""
    try:
        return command(args)
    except UserError as err:
        print(f"nas-lab: error: {_short_words(str(err))}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"nas-lab: interrupted; {stop}", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _short_words(message: str, limit: int = 200) -> str:
    """``message`` with any run of over ``limit`` non-blank characters cut by ``shorten``: whatever a message
    echoes, a pasted 100 KB value never comes back whole."""
    return re.sub(rf"\S{{{limit + 1},}}", lambda m: shorten(m.group(0)), message)


def format_params(params: dict, sep: str = ", ") -> str:
    """``key=value`` pairs of a plug-in's parameters (or an arch's decisions) as one line."""
    return sep.join(f"{k}={v}" for k, v in params.items()) or "no parameters"
