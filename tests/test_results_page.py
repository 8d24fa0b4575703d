"""benchmarks/results_page.py writes a stamped results page only when a benchmark runs with ``--docs``."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import results_page  # noqa: E402


@pytest.fixture
def pages(tmp_path, monkeypatch):
    monkeypatch.setattr(results_page, "RESULTS", tmp_path)
    monkeypatch.setattr(results_page, "IMAGES", tmp_path / "img")
    parser = argparse.ArgumentParser()
    results_page.add_docs_flag(parser)
    return parser, tmp_path


def test_without_docs_flag_nothing_is_written(pages):
    parser, folder = pages
    assert results_page.write_page(parser.parse_args([]), "x", "X", "| a |") is None
    assert list(folder.iterdir()) == []


def test_page_has_table_figure_and_provenance(pages, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser, folder = pages
    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_x.py", "--docs", "--seeds", "3"])
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    markdown = results_page.table(["a", "b"], [[1, 2]])
    page = results_page.write_page(parser.parse_args(["--docs"]), "x", "Title", markdown, figures={"curve": figure},
                                   intro="What it measures.")
    plt.close(figure)
    text = page.read_text()
    assert page == folder / "x.md" and text.startswith("# Title\n")
    assert "python benchmarks/bench_x.py --docs --seeds 3" in text
    assert "commit: `" in text and "UTC" in text and "cores" in text and "GPU: " in text
    assert "| a | b |\n| :--- | ---: |\n| 1 | 2 |" in text and "What it measures." in text
    assert (folder / "img" / "x-curve.png").stat().st_size > 0 and "](img/x-curve.png)" in text


def test_figures_may_be_a_list_or_image_files(pages, tmp_path):
    parser, folder = pages
    image = tmp_path / "plot.png"
    image.write_bytes(b"\x89PNG made elsewhere")
    page = results_page.write_page(parser.parse_args(["--docs"]), "w", "W", "table", figures=[image])
    assert (folder / "img" / "w-figure1.png").read_bytes() == image.read_bytes()
    assert "](img/w-figure1.png)" in page.read_text()


def test_recorded_keeps_what_the_benchmark_printed(pages, capsys):
    parser, folder = pages
    with results_page.recorded(parser.parse_args(["--docs"]), "y", "Y", "Intro.") as page:
        print("searcher  median ms\nrea       3.8")
        page.add("| extra |")
    text = (folder / "y.md").read_text()
    assert "```text\nsearcher  median ms\nrea       3.8\n```" in text and "| extra |" in text
    assert "rea       3.8" in capsys.readouterr().out  # still printed


def test_recorded_writes_nothing_without_docs_or_on_failure(pages):
    parser, folder = pages
    with results_page.recorded(parser.parse_args([]), "z", "Z"):
        print("measured")
    with pytest.raises(RuntimeError), results_page.recorded(parser.parse_args(["--docs"]), "z", "Z"):
        raise RuntimeError("benchmark failed")
    assert not (folder / "z.md").exists()
