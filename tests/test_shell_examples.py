"""Every ``nas-lab`` example in the README and the docs site's pages, in each command's ``--help``, in the
experiments' comments and in the package's docstrings works when pasted into bash: bash hands the command exactly the
arguments a reader sees (``<=`` is no redirection, ``[a,b]`` no glob, ``;`` or ``|`` no second command), and creates
no file."""

import argparse
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
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


#: the Markdown pages whose examples a reader pastes: the README and every page of the docs site
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def page_examples(page: Path) -> list[str]:
    """The ``nas-lab`` commands of a Markdown page: in its bash (or unlabelled) blocks, and ``nas-lab ...`` spans."""
    text = page.read_text()
    blocks = [body for lang, body in FENCE.findall(text) if lang not in ("python", "toml", "yaml")]
    prose = FENCE.sub("", text)
    spans = [" ".join(s.split()) for s in SPAN.findall(prose)]
    return [c for body in blocks for c in _commands(body.splitlines())] + spans


def readme_examples() -> list[str]:
    return page_examples(ROOT / "README.md")


def docs_examples() -> list[str]:
    return [c for page in PAGES[1:] for c in page_examples(page)]


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


EXAMPLES = sorted({c for page in PAGES for c in page_examples(page)} | set(help_examples()) | set(comment_examples()))


def test_the_examples_are_found():
    assert len(readme_examples()) > 15 and len(docs_examples()) > 60 and len(help_examples()) > 10
    assert any("constraint=" in e for e in help_examples())


def _bash(example: str, folder: Path) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``printf '%s\\0' EXAMPLE`` run by bash in ``folder``: what bash hands a
    command of that line."""
    out = subprocess.run(["bash", "-O", "failglob", "-c", "printf '%s\\0' " + example], cwd=folder,
                         capture_output=True, text=True, timeout=10)
    return out.returncode, out.stdout, out.stderr


@pytest.fixture(scope="module")
def pasted(tmp_path_factory) -> dict[str, tuple[int, str, str, list]]:
    """Every example pasted into bash, each in an empty folder of its own, a few at a time (each is a process start
    that mostly waits): ``(status, stdout, stderr, files created)`` by example."""
    root = tmp_path_factory.mktemp("pasted")

    def paste(item):
        i, example = item
        folder = root / str(i)
        folder.mkdir()
        return example, (*_bash(example, folder), list(folder.iterdir()))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(paste, enumerate(EXAMPLES)))


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_reaches_the_command_as_written(example, pasted):
    intended = shlex.split(example, comments=True)
    status, stdout, stderr, created = pasted[example]
    assert status == 0, f"bash refuses {example!r}: {stderr.strip()}"
    assert created == [], f"bash created a file from {example!r}: quote the argument"
    assert stdout.split("\0")[:-1] == intended, f"bash splits {example!r} otherwise: quote it"
