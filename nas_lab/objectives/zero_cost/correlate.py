"""How well do zero-cost proxies rank archs? ``nas-lab correlate`` (the analysis of HyViTas-Bench's Table 5).

Over a fixed sample of archs, Kendall's tau (tau-b) and Spearman's rho (both
scipy.stats) between each proxy's values (from the cache, computed in parallel
where missing) and a benchmark-table metric (mean over training seeds). Archs
where the proxy is NaN (undefined: Jacobian covariance of a cell cut off from its
input) or the metric is not finite are left out of that proxy's figures, and
``archs`` says how many remain; an infinite proxy value (NASWOT's log-determinant
of a singular kernel is -inf) ranks as the extreme it is. Writes ``correlation.csv`` (the figures),
``values.csv`` (every arch's metric and proxy values) and one scatter panel per
proxy (its rank vs the metric, tau and rho in the title), as PNG and PDF.

Two options serve checking an implementation against published values:
``stratified_indices`` draws one arch per equal-count stratum of the metric, so
a 200-arch sample spans the accuracy range evenly and its rank correlations
vary less from draw to draw than a simple random sample's; and a ``reference``
folder of someone else's values of the same proxies (``<proxy>.csv``: arch
index, then value, the layout in which FreeREA publishes its NB201 metrics)
adds each proxy's Spearman rho with those values, arch by arch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nas_lab.core.errors import UserError
from nas_lab.core.files import reason, save_figure, write_atomic
from nas_lab.core.space import Space
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.objectives.zero_cost.cache import ProxyCache
from nas_lab.objectives.zero_cost.precompute import precompute

PANEL_WIDTH, PANEL_HEIGHT = 3.6, 3.2  # inches


@dataclass
class Correlation:
    """The figures (one row per proxy), the values behind them, and the files written."""

    space: str
    metric: str
    label: str  # the metric's human name
    table: str
    simulated: bool
    frame: pd.DataFrame  # proxy, archs, kendall_tau, kendall_p, spearman_rho, spearman_p[, reference_rho]
    values: pd.DataFrame  # index, the metric, one column per proxy
    paths: list[Path]

    def text(self) -> str:
        """The figures as an aligned plain-text table with a one-line heading."""
        sim = " (SIMULATED table)" if self.simulated else ""
        head = (f"{self.space}: zero-cost proxies vs {self.label} ({self.metric}, table {self.table}{sim}), "
                f"{len(self.values):,} archs")
        ref = "reference_rho" in self.frame
        rows = [f"{'proxy':<12} {'archs':>6} {'Kendall tau':>12} {'Spearman rho':>13}"
                + (f" {'rho with reference':>19}" if ref else "")]
        rows += [f"{r.proxy:<12} {r.archs:>6,} {r.kendall_tau:>12.3f} {r.spearman_rho:>13.3f}"
                 + (f" {r.reference_rho:>19.3f}" if ref else "") for r in self.frame.itertuples()]
        return "\n".join([head, *rows])


def rank_correlations(proxy: np.ndarray, metric: np.ndarray) -> dict[str, float]:
    """Kendall tau-b and Spearman rho (with p-values) over the archs where the proxy is a number (infinities
    included: they rank) and the metric is finite."""
    from scipy import stats

    ok = ~np.isnan(proxy) & np.isfinite(metric)
    if ok.sum() < 2:
        return {"archs": int(ok.sum()), "kendall_tau": np.nan, "kendall_p": np.nan, "spearman_rho": np.nan,
                "spearman_p": np.nan}
    tau = stats.kendalltau(proxy[ok], metric[ok])
    rho = stats.spearmanr(proxy[ok], metric[ok])
    return {"archs": int(ok.sum()), "kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
            "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def stratified_indices(values: np.ndarray, candidates: np.ndarray, sample: int, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` archs: ``candidates`` ordered by ``values`` (one per candidate) and cut into
    ``sample`` strata of equal count, one arch drawn uniformly from each with ``seed``."""
    if not 1 <= sample <= len(candidates):
        raise UserError(f"sample must lie in 1..{len(candidates)} (the archs to draw from), got {sample}")
    rng = np.random.default_rng(seed)
    strata = np.array_split(candidates[np.argsort(values, kind="stable")], sample)
    return np.sort([stratum[rng.integers(len(stratum))] for stratum in strata])


def reference_values(folder: str | Path, proxy: str, indices: np.ndarray) -> np.ndarray | None:
    """``folder/<proxy>.csv``'s values of the archs ``indices`` (first column arch index, second value), or
    None when the folder has no file for the proxy."""
    path = Path(folder).expanduser() / f"{proxy}.csv"
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
        by_index = pd.Series(frame.iloc[:, 1].to_numpy(float), index=frame.iloc[:, 0].to_numpy(int))
        return by_index.reindex(indices).to_numpy()
    except (ValueError, IndexError, pd.errors.ParserError) as err:
        raise UserError(f"{path} is not a reference CSV (arch index, then a numeric value per row): {err}") from None


def correlate(space: Space, proxies: list[str], metric: str, indices: np.ndarray, out: str | Path, *,
              table: str | None = None, reference: str | None = None, seed: int = 0, resolution: int | None = None,
              batch_size: int | None = None,
              device: str = "cpu", cache: str | None = None, workers: int | None = None, executor: str = "local",
              address: str | None = None, progress: bool = True) -> Correlation:
    """Correlate each proxy with ``metric`` over the archs of ``indices``; write the CSVs and plots into ``out``.

    With ``reference`` (a folder, see the module docstring) the figures also have
    ``reference_rho``: Spearman rho of our values with the reference's (NaN for
    a proxy the folder has no file for).
    """
    if reference is not None and not Path(reference).expanduser().is_dir():
        raise UserError(f"reference={reference} is not a folder; give a folder of <proxy>.csv files")
    objective = TabularObjective(space, metric, table=table)  # an unknown metric fails here, before any compute
    filled = precompute(space, proxies, indices, seed=seed, resolution=resolution, batch_size=batch_size, device=device,
                        cache=cache, workers=workers, executor=executor, address=address, progress=progress)
    archs = space.arch(indices)
    values = pd.DataFrame({"index": indices, metric: objective.measure(metric, archs)})
    store = ProxyCache(filled.cache)
    for proxy, key in filled.keys.items():
        values[proxy] = store.lookup(key, indices)[0]
    store.close()
    frame = pd.DataFrame([{"proxy": p, **rank_correlations(values[p].to_numpy(), values[metric].to_numpy())}
                          for p in filled.keys])
    if reference is not None:
        theirs = {p: reference_values(reference, p, indices) for p in filled.keys}
        frame["reference_rho"] = [np.nan if theirs[p] is None else
                                  rank_correlations(values[p].to_numpy(), theirs[p])["spearman_rho"]
                                  for p in filled.keys]
    info = objective.info()
    result = Correlation(space.name, metric, objective.label(metric), info["table"], info["simulated"], frame, values,
                         [])
    result.paths = _write(result, Path(out))
    return result


def _write(result: Correlation, out: Path) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "correlation.csv", out / "values.csv"]
        write_atomic(paths[0], result.frame.to_csv(index=False))
        write_atomic(paths[1], result.values.to_csv(index=False))
        paths += _plot(result, out / "correlation")
    except OSError as err:
        raise UserError(f"cannot write the correlation results to {out} ({reason(err)}); "
                        "choose another out=DIR") from None
    return paths


def _plot(result: Correlation, stem: Path) -> list[Path]:
    """One scatter panel per proxy, tau and rho in each title; PNG and PDF.

    The x axis is the proxy's rank, not its value: that is what tau and rho
    measure, and it keeps proxies spanning 40 orders of magnitude (Synflow),
    with zeros, or with long negative tails (Jacobian covariance) readable.
    Drawn on a plain Agg ``Figure``, never through pyplot: no global matplotlib state, no display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.stats import rankdata

    rows = result.frame.to_dict("records")
    cols = min(4, len(rows))
    lines = math.ceil(len(rows) / cols)
    fig = Figure(figsize=(PANEL_WIDTH * cols, PANEL_HEIGHT * lines), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(lines, cols, squeeze=False)
    y = result.values[result.metric].to_numpy()
    for ax, row in zip(axes.flat, rows):
        x = result.values[row["proxy"]].to_numpy()
        ok = ~np.isnan(x) & np.isfinite(y)
        ax.scatter(rankdata(x[ok]) / ok.sum(), y[ok], s=6, alpha=0.4, linewidths=0)
        ax.set_xlim(0, 1)
        ax.set_title(f"{row['proxy']}\nτ = {row['kendall_tau']:.3f}, ρ = {row['spearman_rho']:.3f} "
                     f"({row['archs']:,} archs)", fontsize=9)
        ax.set_xlabel(f"rank of {row['proxy']} (fraction of archs)", fontsize=8)
        ax.set_ylabel(result.label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    sim = ", SIMULATED table" if result.simulated else ""
    fig.suptitle(f"{result.space}: zero-cost proxies vs {result.label} (table {result.table}{sim})", fontsize=10)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        save_figure(fig, path, dpi=150)
    return paths
