"""The figures' theme, sizes and the drawing helpers every figure module shares (results, mechanism, recurrent).

Split from the figures of results (covbench.report.figures.results) so the other figure modules take their layout
from here rather than from a sibling; the helpers were private there (`panel_grid`, `by_method`, ...) and are
public here under the same names without the underscore.

Figures are drawn at the size they print: the paper's text width (A4 less 2.5 cm margins, 16 cm) or
half of it, at most MAX_HEIGHT tall so that a figure and its caption fit a page, and included at natural size, so
THEME's 6-7 pt text prints at 6-7 pt. A row of panels per dataset; each method in its covbench.report.palette style,
or grey where it does not answer the question (covbench.report.figures.emphasis).
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

from covbench.report.figures.emphasis import GREY, OTHERS_LABEL, line_label  # noqa: E402

FULL_WIDTH = 16 / 2.54 - 0.01  # inches: paper/main.tex's \textwidth (a hair less, so it never overfills the line)
COLUMN_WIDTH = FULL_WIDTH / 2
MAX_HEIGHT = 7.8  # inches: of the 9.7 in text height, what a figure may take and leave room for its caption
PANEL_HEIGHT = 1.3  # inches
LEGEND_ROW_HEIGHT = 0.15  # inches per row of a legend at THEME's 6 pt
PNG_DPI = 200
THEME = dict(
    context="paper",
    style="ticks",
    rc={
        "font.size": 7,
        "axes.titlesize": 7,
        "axes.labelsize": 7,
        "xtick.labelsize": 7,  # 7 pt, so that a log axis's exponents (10^-5) still print above 5 pt
        "ytick.labelsize": 7,
        "legend.fontsize": 6,
        "lines.linewidth": 1.0,
        "lines.markersize": 3,
        "axes.linewidth": 0.6,
        "pdf.fonttype": 42,  # TrueType fonts: text stays selectable in the paper's PDF
    },
)
DODGE = 0.02  # horizontal offset between methods at one depth, in log2(depth) units


# --- layout --------------------------------------------------------------------------------------


def panel_grid(rows: int, cols: int, width: float, panel_height: float = PANEL_HEIGHT, **kwargs):
    """rows x cols panels under THEME (the one place it is set), `width` wide and at most MAX_HEIGHT less a legend's
    room tall: many rows get lower panels rather than a figure the page must shrink."""
    sns.set_theme(**THEME)
    height = min(rows * panel_height, MAX_HEIGHT - 4 * LEGEND_ROW_HEIGHT)
    return plt.subplots(rows, cols, figsize=(width, height), layout="constrained", squeeze=False, **kwargs)


def dataset_depth_grid(data: pd.DataFrame, width: float = FULL_WIDTH, **kwargs):
    """A row per dataset and a column per depth: (fig, {(dataset, depth): ax})."""
    datasets, depths = sorted(data.dataset.unique()), sorted(data.depth.unique())
    fig, axes = panel_grid(len(datasets), len(depths), width, **kwargs)
    return fig, {(d, depth): axes[r, c] for r, d in enumerate(datasets) for c, depth in enumerate(depths)}


def by_method(frame: pd.DataFrame, styles: dict):
    """(method, its rows) in palette order, so every figure draws methods in the same order."""
    for method in styles:
        rows = frame[frame.method == method]
        if not rows.empty:
            yield method, rows


def plot(ax, x, y, method: str, styles: dict, **kwargs):
    ax.plot(x, y, label=line_label(method, styles), markevery=max(1, len(x) // 8), **styles[method], **kwargs)


def legend(fig, styles: dict, shown) -> None:
    """One legend below the panels for the methods shown in colour, in palette order, and one entry for those in
    grey; the figure grows to hold it."""
    shown = set(shown)
    handles = [Line2D([], [], label=m, **styles[m]) for m in styles if m in shown and styles[m] is not GREY]
    if any(styles[m] is GREY for m in shown if m in styles):
        handles.append(Line2D([], [], label=OTHERS_LABEL, **GREY))
    ncols = 5 if fig.get_figwidth() >= FULL_WIDTH else 3
    fig.legend(
        handles=handles, loc="outside lower center", ncols=ncols, frameon=False, handlelength=2.2, columnspacing=1.0
    )
    fig.set_figheight(fig.get_figheight() + LEGEND_ROW_HEIGHT * math.ceil(len(handles) / ncols) + 0.1)


def finite_values(values: pd.Series) -> np.ndarray:
    values = values.to_numpy(dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def interval(rows: pd.DataFrame) -> np.ndarray:
    """(2, n) distances from the median to the interval's ends, for errorbar; NaN where not finite."""
    median = finite_values(rows["median"])
    return np.clip(np.vstack([median - finite_values(rows.ci_low), finite_values(rows.ci_high) - median]), 0, None)


def dodged(depths: pd.Series, position: int, count: int) -> np.ndarray:
    return depths.to_numpy(dtype=float) * 2.0 ** ((position - (count - 1) / 2) * DODGE)


def log_y(ax) -> None:
    """Log scale; an axis spanning about a decade labels some minor ticks, as plain numbers (0.4, 2, 3)."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.4)))


def depth_axis(ax, depths) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, labels=[str(d) for d in depths])
    ax.minorticks_off()
