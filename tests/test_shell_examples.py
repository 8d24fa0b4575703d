"""Every ``nas-lab`` example in the README, in each command's ``--help``, in the experiments' comments and in the
package's docstrings works when pasted into bash: bash hands the command exactly the arguments a reader sees
(``<=`` is no redirection, ``[a,b]`` no glob, ``;`` or ``|`` no second command), and creates no file."""

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from nas_lab.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.S | re.M)
SPAN = re.compile(r"``?(nas-lab\s[^`]*)``?")
COMMAND = re.compile(r"(?:^|&&|\$)\s*(nas-lab\s.*)")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _commands(lines) -> list[str]:
    """The ``nas-lab ...`` commands among ``lines``, continuation lines (``\\``) joined."""
    out, text = [], "\n".join(lines).replace("\\\n", " ")
    for line in text.splitlines():
        found = COMMAND.search(line.strip())
        if found:
            out.append(found.group(1))
    return out


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = [body for lang, body in FENCE.findall(text) if lang not in ("python", "toml", "yaml")]
    prose = FENCE.sub("", text)
    spans = [" ".join(s.split()) for s in SPAN.findall(prose)]
    return [c for body in blocks for c in _commands(body.splitlines())] + spans


def help_texts(parser: argparse.ArgumentParser):
    """The ``--help`` of ``parser`` and of each of its subcommands, recursively."""
    yield parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from help_texts(sub)


def help_examples() -> list[str]:
    parser = argparse.ArgumentParser(prog="nas-lab")
    sub = parser.add_subparsers()
    for command in COMMANDS:
        command.add_parser(sub)
    return [c for text in help_texts(parser) for c in _commands(text.splitlines())]


def comment_examples() -> list[str]:
    """Commands shown in the experiments' YAML comments and in the docstrings and comments of the package and
    the example plug-in: lines that start with one, and ````nas-lab ...```` spans."""
    files = [*sorted((ROOT / "experiments").glob("*.yaml")), *sorted((ROOT / "nas_lab").rglob("*.py")),
             *sorted((ROOT / "examples").rglob("*.py")), *sorted((ROOT / "examples").rglob("*.md"))]
    lines = [re.sub(r"^\s*#\s?", "", line).strip() for f in files for line in f.read_text().splitlines()]
    spans = [" ".join(s.split()) for line in lines for s in SPAN.findall(line)]
    return _commands(line for line in lines if line.startswith(("nas-lab ", "$ nas-lab "))) + spans


EXAMPLES = sorted(set(readme_examples()) | set(help_examples()) | set(comment_examples()))


def test_the_examples_are_found():
    assert len(readme_examples()) > 40 and len(help_examples()) > 10
    assert any("constraint=" in e for e in help_examples())


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_reaches_the_command_as_written(example, tmp_path):
    intended = shlex.split(example, comments=True)
    script = "printf '%s\\0' " + example  # bash parses the arguments as it would for nas-lab
    out = subprocess.run(["bash", "-O", "failglob", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 0, f"bash refuses {example!r}: {out.stderr.strip()}"
    assert list(tmp_path.iterdir()) == [], f"bash created a file from {example!r}: quote the argument"
    assert out.stdout.split("\0")[:-1] == intended, f"bash splits {example!r} otherwise: quote it"
