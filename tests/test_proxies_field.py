"""Our zero-cost proxies on real NAS-Bench-201 cells, through `nas-lab correlate`, against the field.

Reads ../shared/data (skipped with the reason when it is absent): the NATS-Bench
CIFAR-10 test accuracies and FreeREA's NASWOT / Synflow / LogSynflow / params of
every NB201 cell. One `nas-lab correlate` run over a fixed stratified sample of
200 cells (one per 1/200-quantile of test accuracy: a simple random sample's
rho varies about 0.03 from draw to draw, a stratified one's less) computes all
eight proxies and writes the figures every check reads.

BATCH images per proxy evaluation (the published figures used 64 to 128 real
CIFAR-10 images); each check prints what it found.

Computing every proxy of all 200 cells takes about 280 CPU-seconds (over 3
minutes on 2 cores), so it was done once: tests/data/proxies_field_nb201.csv
holds what this very command computed for the 200 cells, and
proxies_field_nb201.json the settings and proxy versions it ran with
(regenerate both with ``python tests/test_proxies_field.py`` after changing a
proxy). Each run starts the command on a fresh cache that holds those values
for 175 cells; the command itself computes every proxy of the other 25 (every
8th cell of the sample by accuracy, so they span the accuracy range) and
``params`` of all 200, then correlates all 200 cells as before: the figures are
the 200-cell figures. ``test_the_command_recomputed_the_stratified_subset_and_found_the_shipped_values``
checks that the command really computed those 25 cells and that what it found
equals the shipped values; a change to any proxy's computation that moved a
figure by anything like a tolerance below would change values of many cells,
and 25 cells spread over the range catch a change to a sixth of all cells with
probability 1 - (5/6)^25 > 0.98.
"""

import contextlib
import io
import json
from pathlib import Path

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

#: values of every proxy but ``params`` (0.02 s a cell: always computed) on the SAMPLE_SIZE cells, computed
#: once by this module's command (``python tests/test_proxies_field.py``); index, then one column per proxy
SHIPPED = Path(__file__).with_name("data") / "proxies_field_nb201.csv"
#: the settings and proxy versions SHIPPED was computed with
SHIPPED_SETTINGS = SHIPPED.with_suffix(".json")
#: the command recomputes every proxy of every RECOMPUTE-th cell of the sample in accuracy order (12 cells)
RECOMPUTE = 16
#: relative difference allowed between a recomputed value and the shipped one, per proxy: 10 times the largest
#: one measured between PyTorch's AVX-512, AVX2 and plain (no SIMD) CPU kernels on the 25 recomputed cells
#: (naswot 1.0e-7, snip 9.0e-4, grad_norm 6.9e-4, jacob_cov 6.3e-5, the float64 synflow 1.3e-8, logsynflow
#: 1.0e-9, entropic 1.0e-10): float rounding passes, while another seed already moves most values by more
#: (median over the cells: naswot 8.5e-4, snip 0.12, grad_norm 0.14, jacob_cov 2.8e-3, synflow 0.04, logsynflow
#: 1.5e-3, entropic 6.3e-3)
RTOL = {"naswot": 1e-6, "snip": 1e-2, "grad_norm": 1e-2, "jacob_cov": 1e-3, "synflow": 1e-6, "logsynflow": 1e-6,
        "entropic": 1e-6}
SEED = 0


def command(shared_data, out, cache):
    return ["correlate", "space=nb201", f"proxies={','.join(PROXIES)}", "metric=test.cifar10", f"sample={SAMPLE_SIZE}",
            "stratify=true", f"batch_size={BATCH}", f"seed={SEED}", f"table={shared_data}",
            f"reference={shared_data / 'freerea_nats' / 'cifar10'}", f"out={out}", f"cache={cache}", "--no-progress"]


def run_command(args):
    """``main(args)``'s exit status and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(args)
    return code, printed.getvalue()


def proxy_keys():
    """The cache key of each proxy under the command's settings, with the code's proxy versions."""
    from nas_lab.core import registry
    from nas_lab.objectives.zero_cost.objective import proxy_key

    space = registry.create("space", "nb201", {})
    return {p: proxy_key(space, p, SEED, None, BATCH) for p in PROXIES}


@pytest.fixture(scope="module")
def prefilled(shared_data, tmp_path_factory):
    """A fresh cache holding the shipped values of every cell but the recomputed ones.

    Returns the output folder, the cache file, the shipped values (indexed by
    cell), the recomputed cells, and the proxies whose shipped values were left
    out because the code's proxy version is not theirs (the command then
    computes them for every cell: slow, but every figure still holds).
    """
    from nas_lab.objectives.zero_cost.cache import ProxyCache

    out = tmp_path_factory.mktemp("correlate")
    cache = out / "zero_cost.sqlite"
    settings = json.loads(SHIPPED_SETTINGS.read_text())
    shipped = pd.read_csv(SHIPPED).set_index("index")
    accuracy = pd.read_csv(shared_data / "nats_bench.csv")["CIFAR10TestAccuracy200Epochs"].to_numpy()
    by_accuracy = shipped.index.to_numpy()[np.argsort(accuracy[shipped.index], kind="stable")]
    recomputed = np.sort(by_accuracy[RECOMPUTE // 2::RECOMPUTE])
    kept = shipped.drop(index=recomputed)
    same = {k: settings[k] for k in ("sample", "seed", "batch_size")} == {"sample": SAMPLE_SIZE, "seed": SEED,
                                                                          "batch_size": BATCH}
    stale = []
    store = ProxyCache(cache)
    for proxy, key in proxy_keys().items():
        if proxy not in shipped:
            continue
        if not same or settings["versions"][proxy] != key.version or settings["resolution"] != key.resolution:
            stale.append(proxy)
            continue
        store.store(key, kept.index.to_numpy(), kept[proxy].to_numpy(), np.zeros(len(kept)))  # 0 s: not computed here
    store.close()
    return out, cache, shipped, recomputed, stale


@pytest.fixture(scope="module")
def correlation(shared_data, prefilled):
    """The figures (one row per proxy), every cell's values, and what the command printed."""
    out, cache = prefilled[:2]
    code, printed = run_command(command(shared_data, out, cache))
    assert code == 0
    print("\n" + printed)
    return pd.read_csv(out / "correlation.csv").set_index("proxy"), pd.read_csv(out / "values.csv"), printed


def test_the_command_recomputed_the_stratified_subset_and_found_the_shipped_values(prefilled, correlation):
    from nas_lab.objectives.zero_cost.cache import ProxyCache

    _, cache, shipped, recomputed, stale = prefilled
    _, values, _ = correlation
    assert not stale, (f"{SHIPPED.name} holds values of other proxy versions or settings for {', '.join(stale)}; "
                       "regenerate it with `python tests/test_proxies_field.py`")
    assert sorted(values["index"]) == sorted(shipped.index)  # the command drew the cells the file holds
    assert len(recomputed) == SAMPLE_SIZE // RECOMPUTE and set(shipped.columns) == set(PROXIES) - {"params"}
    ours = values.set_index("index")
    store = ProxyCache(cache)
    for proxy, key in proxy_keys().items():
        # the command computed these cells itself: the cache holds their compute seconds (prefilled values hold 0)
        live = shipped.index.to_numpy() if proxy not in shipped else recomputed
        _, seconds, found = store.lookup(key, live)
        assert found.all() and (seconds > 0).all(), proxy
        if proxy in shipped:  # NaN (jacob_cov of a cut-off cell) and -inf (its naswot) must recur exactly
            np.testing.assert_allclose(ours.loc[recomputed, proxy], shipped.loc[recomputed, proxy], rtol=RTOL[proxy],
                                       atol=0, err_msg=f"{proxy}: recomputed vs {SHIPPED.name}")
    store.close()


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
    print(f"\n{proxy}: Spearman rho with CIFAR-10 test accuracy {rho:.3f} "
          f"(published over all cells {PUBLISHED[proxy]})")
    assert abs(rho - PUBLISHED[proxy]) <= TOLERANCE


def test_entropic_and_logsynflow_correlations_are_reported(correlation):
    """Seed 002's pair on a topology space; it gives no NB201 figure, so this reports them rather than pins them."""
    figures, _, printed = correlation
    for proxy in ("entropic", "logsynflow"):
        tau, rho = figures.loc[proxy, ["kendall_tau", "spearman_rho"]]
        print(f"\n{proxy}: Kendall tau {tau:.3f}, Spearman rho {rho:.3f} with CIFAR-10 test accuracy on NB201")
        assert np.isfinite([tau, rho]).all() and figures.loc[proxy, "archs"] == SAMPLE_SIZE
        assert f"{proxy:<12} {SAMPLE_SIZE:>6,} {tau:>12.3f} {rho:>13.3f}" in printed


def regenerate(shared_data: Path) -> None:
    """Run the command on every cell from scratch and write SHIPPED and SHIPPED_SETTINGS (about 280 CPU-seconds)."""
    import tempfile

    import torch

    import nas_lab

    with tempfile.TemporaryDirectory() as tmp:
        code, printed = run_command(command(shared_data, Path(tmp), Path(tmp) / "zero_cost.sqlite")[:-1])
        assert code == 0
        values = pd.read_csv(Path(tmp) / "values.csv")
    print(printed)
    shipped = [p for p in PROXIES if p != "params"]
    keys = proxy_keys()
    SHIPPED.parent.mkdir(exist_ok=True)
    values[["index", *shipped]].to_csv(SHIPPED, index=False)  # floats as repr: they read back exactly
    SHIPPED_SETTINGS.write_text(json.dumps({
        "command": "nas-lab " + " ".join(command(Path("DATA"), "OUT", "CACHE")[:-1]),
        "sample": SAMPLE_SIZE, "seed": SEED, "batch_size": BATCH, "resolution": keys["params"].resolution,
        "versions": {p: keys[p].version for p in shipped}, "nas_lab": nas_lab.__version__, "torch": torch.__version__,
    }, indent=1) + "\n")
    print(f"wrote {SHIPPED} and {SHIPPED_SETTINGS}")


if __name__ == "__main__":  # python tests/test_proxies_field.py [DATA]: recompute the shipped values
    import sys

    from conftest import SHARED_DATA

    regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else SHARED_DATA)
