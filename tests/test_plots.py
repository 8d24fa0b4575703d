"""Figures a reviewer accepts: the axis rules of ``metric_axes`` on numbers made up to show each rule, and the front
figures of a small multi-objective NAS-Bench-201 study on the real table (its chance-level cells, 10 % CIFAR-10
accuracy at ~0 ms, are the degenerate points the figures must mark rather than stretch their axes to)."""

import numpy as np
import pytest
import yaml
from conftest import SHARED_DATA
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from test_study_report import run_grid

from nas_lab.study.config import StudyConfig
from nas_lab.study.metric_axes import Metric, View, choose_view, choose_views, new_figure, note_outside, scatter_in_view
from nas_lab.study.plots import fronts_figure, hypervolume_figure, write_plots
from nas_lab.study.report import read_study

needs_nb201 = pytest.mark.skipif(not (SHARED_DATA / "nats_bench.csv").exists(),
                                 reason="NB201 table not in ../shared/data")


def test_a_far_cluster_is_left_out_of_the_view_but_the_bulk_is_not():
    rng = np.random.default_rng(0)
    bulk = rng.uniform(86, 94, 40)
    view = choose_view(np.concatenate([bulk, [10.0, 10.0000001, 9.99999]]), "%")  # chance-level cells, float noise
    assert not view.log
    assert 85 < view.low < bulk.min() and bulk.max() < view.high < 95  # the bulk, with a margin of a few %
    assert view.below(np.array([10.0])).all() and not (view.below(bulk) | view.above(bulk)).any()
    # no gap: nothing is left out, whatever the spread
    spread = rng.uniform(0, 100, 50)
    wide = choose_view(spread, "%")
    assert wide.low < spread.min() and wide.high > spread.max()


def test_positive_quantities_spanning_decades_get_a_log_axis_and_scores_do_not():
    params = np.geomspace(7e4, 1.3e6, 30)
    assert choose_view(params, "parameters").log
    assert not choose_view(np.geomspace(1, 80, 30), "%").log  # an accuracy is never on a log axis
    assert not choose_view(np.linspace(1.0, 3.0, 30), "ms").log  # less than a decade
    # a span made only by far values stays linear: 1-3 ms with a few ~0.005 ms cells, which on a linear axis sit
    # next to 1 ms (not far), so the view keeps them
    view = choose_view(np.concatenate([np.linspace(1.0, 3.0, 30), [0.005, 0.0051]]), "ms")
    assert not view.log and view.low < 0.005


def test_joint_views_let_a_point_far_on_one_axis_not_stretch_the_other():
    rng = np.random.default_rng(1)
    bulk = np.column_stack([rng.uniform(86, 94, 40), rng.uniform(1, 25, 40)])
    degenerate = np.array([[10.0, 0.005], [10.0, 0.09], [10.0, 0.3]])  # far on accuracy, spread on latency
    views = choose_views(np.vstack([bulk, degenerate]), ["%", "ms"])
    assert views[0].low > 80 and views[1].low > 0.8  # latency view set by the points inside the accuracy view


def test_labels_say_the_unit_and_which_way_is_better():
    assert Metric("latency.pixel3", "latency.pixel3", "ms", "min").axis_label() == \
        "latency.pixel3 (ms, lower is better)"
    assert Metric("test.cifar10", "CIFAR-10 test", "%", "max").axis_label() == "CIFAR-10 test (%, higher is better)"
    assert Metric("params", "params", "parameters", "min").axis_label() == "params (count, lower is better)"
    assert Metric("params", "params", "parameters").format(1_290_000) == "1.29 M"
    assert Metric("latency.x", "latency.x", "ms").format(0.0052) == "0.0052 ms"
    assert Metric("evaluation", "evaluation", named=True).format(14) == "evaluation 14"


def test_points_outside_the_view_are_drawn_at_its_edge_and_noted():
    fig = new_figure(4, 4)
    ax = fig.subplots()
    x, y = np.array([90.0, 92.0, 10.0]), np.array([5.0, 9.0, 0.004])
    xv, yv = View(85, 95), View(1, 20, log=True)
    ax.set_xlim(xv.low, xv.high), ax.set_yscale("log"), ax.set_ylim(yv.low, yv.high)
    outside = scatter_in_view(ax, x, y, xv, yv, s=10, color="C0")
    note_outside(ax, x, y, Metric("a", "acc", "%"), Metric("l", "lat", "ms"), outside)
    assert outside.tolist() == [False, False, True]
    edge = [c for c in ax.collections if not c.get_clip_on()]
    assert len(edge) == 1 and np.allclose(edge[0].get_offsets(), [[85, 1]])  # on the corner it lies beyond
    assert any("1 architecture outside the view" in t.get_text() and "(10 %, 0.004 ms)" in t.get_text()
               for t in ax.texts)


@pytest.fixture(scope="module")
def mo_study(tmp_path_factory):
    """Random search at budgets 20 and 30, NSGA-II at 30 only, on a 2- and a 3-target NB201 problem."""
    if not (SHARED_DATA / "nats_bench.csv").exists():
        pytest.skip("NB201 table not in ../shared/data")
    config = StudyConfig.from_dict(yaml.safe_load("""
        name: mo_plots
        space: nb201
        budget: [20, 30]
        repeats: 2
        seed: 0
        objectives: [[test.cifar10, latency.pixel3], [test.cifar100, latency.raspi4, params]]
        searchers: {random: {}, nsga2: {budgets: [30]}}
    """), {"table": str(SHARED_DATA)})
    return read_study(run_grid(tmp_path_factory.mktemp("mo") / "study", config))


def _scattered(ax) -> np.ndarray:
    return np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)] or [np.zeros((0, 2))])


@needs_nb201
def test_front_panels_only_for_searchers_that_ran_in_the_setting(mo_study):
    two_budget20 = fronts_figure(mo_study, "test.cifar10,latency.pixel3", 20)
    two_budget30 = fronts_figure(mo_study, "test.cifar10,latency.pixel3", 30)
    assert [ax.get_title() for ax in two_budget20.axes] == ["Random search"]  # NSGA-II ran at 30 only
    assert [ax.get_title() for ax in two_budget30.axes] == ["Random search", "NSGA-II"]
    for fig in (two_budget20, two_budget30):
        assert all(len(_scattered(ax)) for ax in fig.axes)  # no empty panel


@needs_nb201
def test_degenerate_cells_are_marked_not_stretching_the_accuracy_axis(mo_study):
    fig = fronts_figure(mo_study, "test.cifar10,latency.pixel3", 30)
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low > 50 and high < 100  # the 10 % cells would pull it to 0
        assert ax.get_xlabel() == "CIFAR-10 test (%, higher is better)"
        assert ax.get_ylabel() == "latency.pixel3 (ms, lower is better)"
        points = _scattered(ax)
        assert np.isclose(points[:, 0], low).any()  # the true front's 10 % cell, at the left edge
        assert any("outside the view" in t.get_text() and "10 %" in t.get_text() for t in ax.texts)


@needs_nb201
def test_three_targets_are_projections_of_points_with_params_in_engineering_notation(mo_study):
    fig = fronts_figure(mo_study, "test.cifar100,latency.raspi4,params", 30)
    assert len(fig.axes) == 3 * 2  # three pairs x two searchers
    for ax in fig.axes:
        assert not ax.get_lines()  # points, no line through a projection
        if ax.get_ylabel().startswith("params"):
            assert ax.get_yscale() == "log" and isinstance(ax.yaxis.get_major_formatter(), EngFormatter)
        if ax.get_xlabel().startswith("latency"):
            assert ax.get_xscale() == "log"
    two = fronts_figure(mo_study, "test.cifar10,latency.pixel3", 30)
    assert all(ax.get_lines() for ax in two.axes)  # two targets: staircases


@needs_nb201
def test_hypervolume_panels_and_written_files(mo_study):
    fig = hypervolume_figure(mo_study)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 3, 2, 3]  # searchers that ran + the true front
    names = [p.name for p in write_plots(mo_study)]
    fronts = [f"fronts_{n}.{ext}" for n in range(1, 5) for ext in ("png", "pdf")]
    assert names == ["hypervolume.png", "hypervolume.pdf", *fronts]
