"""mkdocs hook: the parameter tables of the docs are generated at build time from the declarations themselves.

A page writes a marker where a table belongs and the hook replaces it, so the docs, ``nas-lab list`` and ``--help``
all read the same ``Setting`` declarations and cannot drift apart:

- ``<!-- parameters KIND NAME -->``: the parameters a registered plug-in (``searcher rea``, ``space nb201``,
  ``objective tabular``, ``dataset digits``) declares in its constructor (``nas_lab.core.registry.parameters``);
- ``<!-- settings MODULE:NAME -->``: a command's settings, a module constant mapping names to ``Setting``
  (``nas_lab.core.config:RUN_SETTINGS``);
- ``<!-- plugins KIND -->``: every registered plug-in of a kind with the first line of its docstring;
- ``<!-- results -->``: the results pages benchmarks wrote (``docs/results/*.md``), with the commit and date each
  is stamped with.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from nas_lab.core import registry
from nas_lab.core.settings import Setting

MARKER = re.compile(r"^([ \t]*)<!--\s*(parameters|settings|plugins|results)\s*([^>]*?)\s*-->", re.M)
STAMP = re.compile(r"^\s*- (commit|date): `?([^`\n]*)`?$", re.M)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, tuple):
        value = ",".join(map(str, value)) if value else ""
    return "none" if value is None else f"`{value}`" if value != "" else "(empty)"


def _valid(setting: Setting) -> str:
    if setting.choices:
        return "one of " + ", ".join(f"`{c}`" for c in setting.choices)
    return _cell(setting.bounds()) if setting.type in (int, float) else ""


def settings_table(settings: list[Setting]) -> str:
    """A Markdown table of settings: name, type, default, bounds or choices, help."""
    if not settings:
        return "*(no parameters)*"
    rows = ["| parameter | type | default | valid values | help |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| `{s.name}` | `{s.type_name()}` | {_default(s)} | {_valid(s)} | {_cell(s.help)} |" for s in settings]
    return "\n".join(rows)


def plugins_table(kind: str) -> str:
    rows = ["| name | what it is |", "| --- | --- |"]
    for name in registry.names(kind):
        obj = registry.load(kind, name)
        summary = obj.summary if isinstance(getattr(obj, "summary", None), str) else registry.summary(obj)
        rows.append(f"| `{name}` | {_cell(summary)} |")
    return "\n".join(rows)


def results_table(folder: Path) -> str:
    """One row per generated results page: its title (linked), commit and date."""
    rows = ["| page | commit | date |", "| --- | --- | --- |"]
    for page in sorted(folder.glob("*.md")):
        if page.name == "index.md":
            continue
        text = page.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        stamp = dict(STAMP.findall(text))
        rows.append(f"| [{_cell(title)}]({page.name}) | `{stamp.get('commit', '?')}` | {stamp.get('date', '?')} |")
    return "\n".join(rows) if len(rows) > 2 else "*(no results page has been generated yet)*"


def _generate(what: str, args: list[str], docs: Path) -> str:
    if what == "results":
        return results_table(docs / "results")
    if what == "parameters":
        kind, name = args
        return settings_table(registry.parameters(registry.load(kind, name)))
    if what == "settings":
        module, _, attr = args[0].partition(":")
        return settings_table(list(getattr(importlib.import_module(module), attr).values()))
    return plugins_table(args[0])


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        """The generated table, indented as the marker was (inside a tab or an admonition)."""
        table = _generate(match.group(2), match.group(3).split(), Path(config["docs_dir"]))
        return "\n".join(match.group(1) + line for line in table.splitlines())

    return MARKER.sub(replace, markdown)
