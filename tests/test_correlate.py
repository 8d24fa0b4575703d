"""``nas-lab correlate``: Kendall tau / Spearman rho of proxies vs a table metric, its files, and bad input.

Cheap proxies only (``params``, ``flops``) on small samples.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nas_lab.cli.main import main
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.objectives.zero_cost.correlate import correlate, rank_correlations, stratified_indices
from nas_lab.objectives.zero_cost.precompute import sample_indices
from nas_lab.spaces.hyvitas import HyViTasSpace


def nas_lab(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_LAB_CACHE", str(tmp_path / "cache"))


def test_tau_and_rho_are_scipys_on_the_real_values(tmp_path):
    space = HyViTasSpace()
    indices = sample_indices(space, 25, seed=5)
    result = correlate(space, ["params", "flops"], "ood.sketch", indices, tmp_path / "out", workers=2, progress=False)
    archs = space.arch(indices)
    sketch = TabularObjective(space, "ood.sketch").measure("ood.sketch", archs)
    params = space.params(archs)  # the params proxy is the model's parameter count, here in closed form
    np.testing.assert_array_equal(result.values["params"], params)
    np.testing.assert_array_equal(result.values["ood.sketch"], sketch)
    row = result.frame.set_index("proxy")
    assert row.loc["params", "kendall_tau"] == pytest.approx(stats.kendalltau(params, sketch).statistic, abs=1e-12)
    assert row.loc["params", "spearman_rho"] == pytest.approx(stats.spearmanr(params, sketch).statistic, abs=1e-12)
    flops = result.values["flops"].to_numpy()
    assert row.loc["flops", "kendall_tau"] == pytest.approx(stats.kendalltau(flops, sketch).statistic, abs=1e-12)
    assert row.loc["flops", "spearman_rho"] == pytest.approx(stats.spearmanr(flops, sketch).statistic, abs=1e-12)
    assert (row["archs"] == 25).all() and 0 < row.loc["params", "kendall_tau"] < row.loc["params", "spearman_rho"] < 1


def test_nan_proxies_and_non_finite_metrics_are_left_out_and_counted_while_infinities_rank():
    proxy = np.array([1.0, 2.0, np.nan, 4.0, np.inf, 6.0, 3.0, -np.inf])
    metric = np.array([10.0, 30.0, 5.0, 20.0, 50.0, np.nan, 40.0, 0.0])
    got = rank_correlations(proxy, metric)
    keep = [0, 1, 3, 4, 6, 7]
    assert got["archs"] == 6
    assert got["kendall_tau"] == pytest.approx(stats.kendalltau(proxy[keep], metric[keep]).statistic)
    assert got["spearman_rho"] == pytest.approx(stats.spearmanr([1, 2, 4, 9, 3, -9], metric[keep]).statistic)


def test_stratified_sample_takes_one_arch_per_equal_count_stratum():
    values = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0])
    candidates = np.arange(100, 109)
    picked = stratified_indices(values, candidates, 3, seed=0)
    by_value = candidates[np.argsort(values)]
    assert [len(set(picked) & set(by_value[i:i + 3])) for i in (0, 3, 6)] == [1, 1, 1]
    np.testing.assert_array_equal(picked, stratified_indices(values, candidates, 3, seed=0))
    np.testing.assert_array_equal(np.sort(stratified_indices(values, candidates, 9, seed=1)), candidates)


def test_reference_values_give_rho_per_proxy(tmp_path, capsys):
    space = HyViTasSpace()
    every = np.arange(space.cardinality)
    ref = tmp_path / "reference"
    ref.mkdir()
    # someone else's params: our count in millions, for every arch, in index order (a monotone map: rho 1)
    pd.DataFrame({"index": every, "params": space.params(space.arch(every)) / 1e6}).to_csv(ref / "params.csv",
                                                                                          index=False)
    out_dir = tmp_path / "corr"
    code, out, err = nas_lab(capsys, "correlate", "space=hyvitas", "proxies=params,flops", "metric=id", "sample=40",
                             "stratify=true", f"reference={ref}", f"out={out_dir}", "workers=1", "--no-progress")
    assert code == 0, err
    frame = pd.read_csv(out_dir / "correlation.csv").set_index("proxy")
    assert frame.loc["params", "reference_rho"] == pytest.approx(1.0) and np.isnan(frame.loc["flops", "reference_rho"])
    assert "rho with reference" in out
    values = pd.read_csv(out_dir / "values.csv")
    ids = TabularObjective(space, "id").values()
    np.testing.assert_array_equal(values["index"], stratified_indices(ids, every, 40, seed=0))


def test_cli_prints_the_table_and_writes_csv_and_plots(tmp_path, capsys):
    out_dir = tmp_path / "corr"
    code, out, err = nas_lab(capsys, "correlate", "space=hyvitas", "proxies=params,flops", "metric=ood.c5", "sample=30",
                             f"out={out_dir}", "workers=1", "--no-progress")
    assert code == 0, err
    assert "hyvitas: zero-cost proxies vs RedIN-C 5 (ood.c5, table hyvitas-sim (SIMULATED table)), 30 archs" in out
    frame = pd.read_csv(out_dir / "correlation.csv")
    assert list(frame["proxy"]) == ["params", "flops"] and (frame["archs"] == 30).all()
    for r in frame.itertuples():
        assert f"{r.proxy:<12} {30:>6} {r.kendall_tau:>12.3f} {r.spearman_rho:>13.3f}" in out
    values = pd.read_csv(out_dir / "values.csv")
    assert list(values.columns) == ["index", "ood.c5", "params", "flops"] and len(values) == 30
    assert (out_dir / "correlation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out_dir / "correlation.pdf").read_bytes()[:5] == b"%PDF-"


def test_nb201_defaults_to_cifar10_test_accuracy(tmp_path, capsys, shared_data):
    code, out, err = nas_lab(capsys, "correlate", "space=nb201", "proxies=params", "sample=50", f"table={shared_data}",
                             f"out={tmp_path / 'nb'}", "workers=1", "--no-progress")
    assert code == 0, err
    assert "nb201: zero-cost proxies vs CIFAR-10 test (test.cifar10, table nb201), 50 archs" in out
    assert "SIMULATED" not in out
    frame = pd.read_csv(tmp_path / "nb" / "correlation.csv")
    assert frame.loc[0, "kendall_tau"] > 0.3  # bigger NB201 cells are more accurate, on real data


@pytest.mark.parametrize("args, message", [
    (["proxies=params", "metric=nope"], "table 'hyvitas-sim' has no metric 'nope'; valid: id,"),
    (["proxies=nope"], "unknown zero-cost proxy 'nope'; valid: entropic"),
    (["proxies=params", "metric=id", "table=missing.csv"], "table 'missing.csv' is neither a built-in table"),
    (["proxies=params", "sample=7000"], "sample must lie in 1..6561"),
    (["proxies=params", "bins=3"], "unknown setting 'bins' of `nas-lab correlate`; valid: space, proxies"),
    (["proxies=params", "reference=nowhere"], "reference=nowhere is not a folder"),
    (["proxies=params", "stratify=maybe"], "stratify"),
])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    code, out, err = nas_lab(capsys, "correlate", *args, f"out={tmp_path / 'corr'}", "--no-progress")
    assert code == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "corr").exists()


def test_a_space_too_large_to_list_is_sampled_never_stratified(tmp_path, capsys):
    """Stratifying ranks every arch by the metric: on ViTAS's 10^43 archs that is refused, in one sentence."""
    code, out, err = nas_lab(capsys, "correlate", "space=vitas", "proxies=params", "metric=id", "stratify=true",
                             f"out={tmp_path / 'corr'}", "--no-progress")
    assert code == 2 and out == "" and "Traceback" not in err
    assert ("stratify=true ranks every arch of the space by the metric, and space 'vitas' has "
            "13,410,075,304,385,010,772,842,580,246,288,435,776,192,030, too many; leave stratify out") in err
    assert not (tmp_path / "corr").exists()
