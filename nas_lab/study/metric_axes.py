"""How every nas_lab figure shows a metric on an axis: a label with its unit and which way is better, a log scale
when its values span decades, engineering notation for counts (1.2 M, not 1200000), and a view on the region of
interest that leaves far, degenerate values out but draws them at the axis edge with a note.

Choices (the issue leaves them open), one constant each:

- log scale for positive quantities (latency, params, FLOPs, MACs, GPU-hours) whose positive values span at least a
  factor ``LOG_SPAN``; accuracies and scores stay linear;
- values at an end are *far* when a gap separates them from the rest that is wider than ``FAR`` times the range of
  the rest (in the axis's own, maybe logarithmic, coordinates); at most ``MAX_FAR`` of the values at each end are
  left out, so the view never hides the bulk. On NAS-Bench-201 this leaves out the cells with no path
  from input to output (10 % CIFAR-10 accuracy, 0 ms) that would otherwise stretch the accuracy axis to 0-100;
- a point left out is drawn at the edge with a marker pointing where it lies (``<`` left, ``v`` below, ...), and
  the panel says what was left out with the true values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

#: units of positive quantities, shown on a log axis when they span decades
LOG_UNITS = frozenset({"ms", "parameters", "FLOPs", "MACs", "GPU-hours"})
#: units of counts, shown in engineering notation (800 k, 1.2 M)
COUNT_UNITS = frozenset({"parameters", "FLOPs", "MACs"})
#: how a unit reads in an axis label (a count of parameters is just a count)
UNIT_WORDS = {"parameters": "count"}
LOG_SPAN = 10.0
FAR = 0.5  # a gap over half the rest's range would leave a third of the axis empty
MAX_FAR = 0.25
MARGIN = 0.04  # share of the view's span added at each end
#: notes list at most this many left-out points (then "and N more")
NOTED = 3


@dataclass(frozen=True)
class Metric:
    """A metric as a figure shows it: its label, unit, and the direction that is better (None: neither)."""

    name: str
    label: str
    unit: str = ""
    direction: str | None = None
    named: bool = False  # a note writes the label before a value (``evaluation 14``)

    @classmethod
    def of(cls, info: dict, name: str, direction: str | None = None) -> Metric:
        """From a record's ``metrics`` entries (label and unit per metric name)."""
        facts = info.get(name, {})
        return cls(name, facts.get("label", name), facts.get("unit", ""), direction)

    def axis_label(self, what: str = "") -> str:
        """``CIFAR-10 test (%, higher is better)``; ``what`` follows the label (``of the incumbent``)."""
        parts = [UNIT_WORDS.get(self.unit, self.unit)] if self.unit else []
        if self.direction is not None:
            parts.append("higher is better" if self.direction == "max" else "lower is better")
        text = f"{self.label} {what}".strip()
        return f"{text} ({', '.join(parts)})" if parts else text

    def format(self, value: float) -> str:
        """A value with its unit, as a note prints it: ``10.0 %``, ``0 ms``, ``1.29 M``."""
        if not np.isfinite(value):
            return "n/a"
        if self.named:
            return f"{self.label} {Metric(self.name, self.label, self.unit, self.direction).format(value)}"
        if self.unit in COUNT_UNITS:
            return EngFormatter(places=2, sep=" ")(value).strip()
        number = f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
        return f"{number} {self.unit}" if self.unit else number


@dataclass(frozen=True)
class View:
    """What an axis shows: from ``low`` to ``high``, on a log scale or not."""

    low: float
    high: float
    log: bool = False

    def below(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return (values < self.low) | (self.log & (values <= 0))

    def above(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float) > self.high

    def clip(self, values: np.ndarray) -> np.ndarray:
        """Values inside the view as they are; those outside moved onto its edge."""
        values = np.asarray(values, dtype=float)
        return np.where(self.below(values), self.low, np.minimum(values, self.high))


def choose_view(values, unit: str = "") -> View:
    """The view of an axis showing ``values`` (NaN ignored): log scale or not, far values left out (module
    docstring)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    positive = v[v > 0]
    log = unit in LOG_UNITS and positive.size >= 2 and positive.max() >= LOG_SPAN * positive.min()
    points = np.sort(np.log10(positive) if log else v)
    if points.size == 0:
        return View(0.0, 1.0, log)
    lo = _cut(points)
    hi = points.size - 1 - _cut(-points[lo:][::-1])
    if log and points[hi] - points[lo] < np.log10(LOG_SPAN):  # the span came from far values only: stay linear
        return choose_view(v, "")
    low, high = points[lo], points[hi]
    margin = MARGIN * (high - low) if high > low else max(0.05 * abs(low), 0.05 if log else 0.5)
    low, high = low - margin, high + margin
    return View(10 ** low, 10 ** high, True) if log else View(low, high, False)


def choose_views(points: np.ndarray, units: list[str]) -> list[View]:
    """One view per column of ``points`` (one target each), each chosen from the points inside the others' views:
    an arch already drawn at the edge for its 10 % accuracy does not stretch the latency axis too."""
    points = np.asarray(points, dtype=float).reshape(-1, len(units))
    first = [choose_view(points[:, t], u) for t, u in enumerate(units)]
    inside = np.array([~(v.below(points[:, t]) | v.above(points[:, t])) for t, v in enumerate(first)])
    views = []
    for t, unit in enumerate(units):
        others = np.delete(inside, t, axis=0).all(axis=0)
        views.append(choose_view(points[others, t], unit) if others.any() else first[t])
    return views


def _cut(points: np.ndarray) -> int:
    """How many of the lowest of sorted ``points`` are far (a cluster of degenerate values counts as one gap): the
    cut at the widest gap, among the lowest ``MAX_FAR`` of them, wider than ``FAR`` times what lies above it."""
    n = points.size
    best, cut = 0.0, 0
    for j in range(1, min(int(MAX_FAR * n), n - 3) + 1):
        gap = points[j] - points[j - 1]
        if gap > FAR * (points[-1] - points[j]) and gap > best:
            best, cut = gap, j
    return cut


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (never pyplot: no global state, no display), laid out by constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def show_metric(ax, which: str, metric: Metric, view: View | None = None, what: str = "") -> None:
    """Label the ``x`` or ``y`` axis of ``ax`` with ``metric``, set its scale and limits from ``view``, and its ticks
    in the metric's notation (engineering for counts, plain numbers on log axes rather than powers of ten)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(metric.axis_label(what))
    if view is not None:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log" if view.log else "linear")
        (ax.set_xlim if which == "x" else ax.set_ylim)(view.low, view.high)
    log = view is not None and view.log
    if metric.unit in COUNT_UNITS:
        ticks = EngFormatter(sep=" ")
    elif log:
        ticks = FuncFormatter(lambda v, _: f"{v:g}")
    else:
        return
    axis.set_major_formatter(ticks)
    if log:  # within a decade or two a log axis has few labelled powers of ten: label 2 and 5 times them too
        few = np.log10(view.high / view.low) < 2.5
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0) if few else "auto"))
        axis.set_minor_formatter(ticks if few else NullFormatter())


def scatter_in_view(ax, x, y, xview: View, yview: View, **style) -> np.ndarray:
    """Scatter the points inside both views as usual and those outside at the edge, with a marker pointing where
    they lie and ``clip_on=False``; the mask of points drawn at the edge."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    left, right, down, up = xview.below(x), xview.above(x), yview.below(y), yview.above(y)
    outside = left | right | down | up
    label = style.pop("label", None)
    ax.scatter(x[~outside], y[~outside], label=label, **style)
    edge = {k: v for k, v in style.items() if k not in ("marker", "s")}
    for mask, marker in ((left, "<"), (right & ~left, ">"), (down & ~left & ~right, "v"),
                         (up & ~left & ~right & ~down, "^")):
        if mask.any():
            ax.scatter(xview.clip(x[mask]), yview.clip(y[mask]), marker=marker, s=45, clip_on=False, zorder=5,
                       **edge)
    return outside


def note_outside(ax, x, y, xmetric: Metric, ymetric: Metric, outside: np.ndarray, what: str = "architecture") -> None:
    """Say on the panel which points lie outside the view (drawn at its edge), with their true values, in the corner
    of the panel that covers the fewest points (call it once the axes' scales and limits are set)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    outside = np.asarray(outside, dtype=bool)
    if not outside.any():
        return
    seen: dict[tuple[str, str], int] = {}
    for a, b in zip(x[outside], y[outside]):
        key = (xmetric.format(a), ymetric.format(b))
        seen[key] = seen.get(key, 0) + 1
    lines = [f"{n} × ({a}, {b})" if n > 1 else f"({a}, {b})" for (a, b), n in list(seen.items())[:NOTED]]
    if len(seen) > NOTED:
        lines.append(f"and {len(seen) - NOTED} more")
    n = int(outside.sum())
    head = f"{n} {what}{'s' * (n != 1)} outside the view, drawn at its edge pointing out:"
    inside = ~outside & np.isfinite(x) & np.isfinite(y)
    shown = ax.transAxes.inverted().transform(ax.transData.transform(np.column_stack([x[inside], y[inside]])))
    corners = {(0.98, 0.02): ("right", "bottom"), (0.02, 0.98): ("left", "top"), (0.98, 0.98): ("right", "top"),
               (0.02, 0.02): ("left", "bottom")}

    def covered(corner) -> int:  # points under a box of about 60 % x 30 % of the panel in that corner
        return int(((np.abs(shown[:, 0] - corner[0]) < 0.6) & (np.abs(shown[:, 1] - corner[1]) < 0.3)).sum())

    (cx, cy), (ha, va) = min(corners.items(), key=lambda item: covered(item[0]))
    ax.text(cx, cy, "\n".join([head, *lines]), transform=ax.transAxes, ha=ha, va=va, fontsize="x-small",
            color="0.25", bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8", "alpha": 0.9},
            zorder=6)
