"""The docs' generated tables: every marker in the pages resolves, and a table says what the declaration says."""

import importlib.util
import re
from pathlib import Path

import pytest

from nas_lab.core import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(hooks, markdown: str) -> str:
    return hooks.on_page_markdown(markdown, None, {"docs_dir": str(DOCS)}, None)


def test_a_parameter_table_is_the_declaration(hooks):
    table = render(hooks, "<!-- parameters searcher rea -->")
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    for setting in registry.parameters(registry.load("searcher", "rea")):
        assert f"`{setting.default}`" in rows[setting.name] and setting.help in rows[setting.name]
    assert "in 1..space.cardinality" in rows["population"]


def test_an_indented_marker_gives_an_indented_table(hooks):
    lines = render(hooks, '=== "tab"\n\n    <!-- settings nas_lab.core.config:RUN_SETTINGS -->').splitlines()
    assert lines[2].startswith("    | parameter |") and all(line.startswith("    |") for line in lines[2:])


def test_every_marker_in_the_docs_resolves(hooks):
    pages = sorted(DOCS.rglob("*.md"))
    markers = [m for page in pages for m in hooks.MARKER.finditer(page.read_text())]
    assert len(markers) > 30
    for page in pages:
        out = render(hooks, page.read_text())
        assert not re.search(r"<!--\s*(parameters|settings|plugins|results)\b", out), page
