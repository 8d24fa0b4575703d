"""Our zero-cost proxies on real NAS-Bench-201 cells, through `nas-lab correlate`, against the field.

Reads ../shared/data (skipped with the reason when it is absent): the NATS-Bench
CIFAR-10 test accuracies and FreeREA's NASWOT / Synflow / LogSynflow / params of
every NB201 cell. One `nas-lab correlate` run over a fixed stratified sample of
200 cells (one per 1/200-quantile of test accuracy: a simple random sample's
rho varies about 0.03 from draw to draw, a stratified one's less) computes all
eight proxies and writes the figures every check reads.

BATCH images per proxy evaluation (the published figures used 64 to 128 real
CIFAR-10 images) keep the module to a few minutes on 2 CPU cores; each check
prints what it found.
"""

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from nas_lab.cli.main import main

SAMPLE_SIZE = 200
BATCH = 16
PROXIES = ("params", "naswot", "snip", "grad_norm", "jacob_cov", "synflow", "logsynflow", "entropic")
#: Spearman rho with CIFAR-10 test accuracy over all of NB201, as published: Abdelfattah et al. (ICLR 2021)
#: for synflow, jacob_cov, snip, grad_norm; FreeREA's full-space values for NASWOT and LogSynflow
PUBLISHED = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59, "naswot": 0.78, "logsynflow": 0.83}
TOLERANCE = 0.06
FREEREA = ("naswot", "synflow", "logsynflow")


@pytest.fixture(scope="module")
def correlation(shared_data, tmp_path_factory):
    """The figures (one row per proxy), every cell's values, and what the command printed."""
    out = tmp_path_factory.mktemp("correlate")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["correlate", "space=nb201", f"proxies={','.join(PROXIES)}", "metric=test.cifar10",
                     f"sample={SAMPLE_SIZE}", "stratify=true", f"batch_size={BATCH}", f"table={shared_data}",
                     f"reference={shared_data / 'freerea_nats' / 'cifar10'}", f"out={out}",
                     f"cache={out / 'zero_cost.sqlite'}", "--no-progress"])
    assert code == 0
    print("\n" + printed.getvalue())
    return pd.read_csv(out / "correlation.csv").set_index("proxy"), pd.read_csv(out / "values.csv"), printed.getvalue()


def test_the_sample_spans_the_accuracy_range_one_cell_per_stratum(correlation, shared_data):
    _, values, _ = correlation
    accuracy = np.sort(pd.read_csv(shared_data / "nats_bench.csv")["CIFAR10TestAccuracy200Epochs"].to_numpy())
    strata = np.array_split(accuracy, SAMPLE_SIZE)
    ours = np.sort(values["test.cifar10"].to_numpy())
    assert len(ours) == SAMPLE_SIZE == values["index"].nunique()
    assert all(s.min() <= a <= s.max() for s, a in zip(strata, ours))


def test_params_equal_nats_bench(correlation, shared_data):
    _, values, _ = correlation
    freerea = pd.read_csv(shared_data / "freerea_nats" / "cifar10" / "params.csv").set_index("index").iloc[:, 0]
    np.testing.assert_allclose(values["params"] / 1e6, freerea.loc[values["index"]].to_numpy(), atol=5e-7)


@pytest.mark.parametrize("proxy", FREEREA)
def test_ranks_cells_as_freerea_does(correlation, proxy):
    figures, _, _ = correlation
    rho = figures.loc[proxy, "reference_rho"]
    print(f"\n{proxy}: Spearman rho with FreeREA's values {rho:.3f} on the same {SAMPLE_SIZE} cells")
    assert rho >= 0.9


@pytest.mark.parametrize("proxy", sorted(PUBLISHED))
def test_rank_correlation_with_test_accuracy_is_the_published_one(correlation, proxy):
    figures, _, _ = correlation
    rho = figures.loc[proxy, "spearman_rho"]
    print(f"\n{proxy}: Spearman rho with CIFAR-10 test accuracy {rho:.3f} (published over all cells {PUBLISHED[proxy]})")
    assert abs(rho - PUBLISHED[proxy]) <= TOLERANCE


def test_entropic_and_logsynflow_correlations_are_reported(correlation):
    """Seed 002's pair on a topology space; it gives no NB201 figure, so this reports them rather than pins them."""
    figures, _, printed = correlation
    for proxy in ("entropic", "logsynflow"):
        tau, rho = figures.loc[proxy, ["kendall_tau", "spearman_rho"]]
        print(f"\n{proxy}: Kendall tau {tau:.3f}, Spearman rho {rho:.3f} with CIFAR-10 test accuracy on NB201")
        assert np.isfinite([tau, rho]).all() and figures.loc[proxy, "archs"] == SAMPLE_SIZE
        assert f"{proxy:<12} {SAMPLE_SIZE:>6,} {tau:>12.3f} {rho:>13.3f}" in printed
