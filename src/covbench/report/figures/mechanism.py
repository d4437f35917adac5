"""The mechanism figures (docs/design.md#mechanism, "Mechanism"): what the covariance force does at each layer and how
much each layer's representation learns. Drawn like every figure, by covbench.report.draw.make, which gathers this
module's FIGURES:

    make("force_vs_gradient", {"layer_summary": "results/aggregate/layer_summary.parquet"}, pdf, png, methods,
         covariance_methods=["covariance", "covariance_pooled"])

Medians over seeds; "over training" is the last epoch (each seed's mean over the steps logged in it), as in
covbench.analysis.mechanism, whose sentences (covbench.report.macros.mechanism) these figures illustrate.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from covbench.analysis.compare import decided_best_remedy
from covbench.analysis.mechanism import at_moment
from covbench.report.figures.layout import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    by_method,
    dataset_depth_grid,
    finite_values,
    legend,
    log_y,
    panel_grid,
    plot,
)

CLASSES = {"mnist": 10, "catvnoncat": 2}  # a probe that guesses uniformly scores 1 / classes
FORCE_ROWS = {
    "force_grad_ratio": "force / gradient\n" + r"$\|\lambda f/B\| \,/\, \|\partial L/\partial a_l\|$",
    "force_grad_cosine": "cosine(force,\ngradient)",
}
MOMENT_STYLES = {"init": {"linestyle": ":", "markerfacecolor": "white"}, "last": {"linestyle": "-"}}
MOMENT_LABELS = {"init": "at init", "last": "last epoch"}
PROBE_MOMENTS = {"init": "at init", "last": "after the last epoch"}


def _nothing(fig, ax, text: str):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center")
    ax.set_axis_off()
    return fig


def _moment_legend(fig) -> None:
    """Line style = moment, above the panels (the method legend sits below)."""
    handles = [
        Line2D([], [], color="0.3", marker="o", label=MOMENT_LABELS[m], **style) for m, style in MOMENT_STYLES.items()
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False, handlelength=2.2)
    fig.set_figheight(fig.get_figheight() + 0.2)


def force_vs_gradient(layer_summary: pd.DataFrame, styles: dict, covariance_methods: list[str]) -> plt.Figure:
    """(j) The force against the gradient it joins, per layer: force_grad_ratio (log scale) and force_grad_cosine at
    init (dotted, open markers) and over the last epoch (solid), for each covariance variant; a row per dataset and
    statistic, a column per depth. A step without an active group counts as ratio 0 (not drawn) and has no cosine."""
    data = layer_summary[layer_summary.statistic.isin(FORCE_ROWS) & layer_summary.method.isin(covariance_methods)]
    if data.empty:
        fig, axes = panel_grid(1, 1, COLUMN_WIDTH)
        return _nothing(fig, axes[0, 0], "no covariance variant in the grid")
    datasets, depths = sorted(data.dataset.unique()), sorted(data.depth.unique())
    fig, axes = panel_grid(
        len(FORCE_ROWS) * len(datasets), len(depths), FULL_WIDTH, panel_height=1.2, sharex="col", sharey="row"
    )
    moments = {moment: at_moment(data, moment) for moment in MOMENT_STYLES}
    rows = [(dataset, statistic) for dataset in datasets for statistic in FORCE_ROWS]
    for r, (dataset, statistic) in enumerate(rows):
        for ax, depth in zip(axes[r], depths):
            for moment, frame in moments.items():
                cell = frame[(frame.dataset == dataset) & (frame.depth == depth) & (frame.statistic == statistic)]
                for method, lines in by_method(cell, styles):
                    lines = lines.sort_values("layer")
                    values = finite_values(lines["median"])
                    if statistic == "force_grad_ratio":
                        values = np.where(values > 0, values, np.nan)  # no force: nothing to draw on a log axis
                    ax.plot(
                        lines.layer,
                        values,
                        label=method,
                        markevery=max(1, len(lines) // 8),
                        **{**styles[method], **MOMENT_STYLES[moment]},
                    )
            if statistic == "force_grad_ratio":
                log_y(ax)
            else:
                ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
                ax.set_ylim(-1.05, 1.05)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"depth {depth}" if r == 0 else "")
        axes[r, 0].set_ylabel(f"{dataset}\n{FORCE_ROWS[statistic]}")
    plt.setp(axes[-1], xlabel="layer")
    _moment_legend(fig)
    legend(fig, styles, data.method)
    return fig


def active_groups(layer_summary: pd.DataFrame, styles: dict, covariance_methods: list[str]) -> plt.Figure:
    """(k) Fraction of the force's groups active on the batch (a class with >= 2 correct and >= 1 wrong examples,
    or the pooled pair) per epoch: epoch 0 is the step at init, epoch e the mean over the steps logged in it; median
    over seeds with its 95% bootstrap interval, a line per covariance variant. A network that predicts one class has
    no correct example in every other class and no wrong one in its own: no group, no force."""
    data = layer_summary[
        (layer_summary.statistic == "active_groups")
        & (layer_summary.layer == 1)
        & layer_summary.method.isin(covariance_methods)
    ]
    if data.empty:
        fig, axes = panel_grid(1, 1, COLUMN_WIDTH)
        return _nothing(fig, axes[0, 0], "no covariance variant in the grid")
    fig, axes = dataset_depth_grid(data, sharex=True, sharey=True)
    for (dataset, depth), ax in axes.items():
        for method, rows in by_method(data[(data.dataset == dataset) & (data.depth == depth)], styles):
            rows = rows.sort_values("epoch")
            plot(ax, rows.epoch, finite_values(rows["median"]), method, styles)
            ax.fill_between(
                rows.epoch,
                finite_values(rows.ci_low),
                finite_values(rows.ci_high),
                color=styles[method]["color"],
                alpha=0.15,
                linewidth=0,
            )
        ax.set(ylim=(-0.03, 1.03), title=f"{dataset}, depth {depth}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("active groups" if ax.get_subplotspec().is_first_col() else "")
        ax.set_xlabel("epoch (0 = init)" if ax.get_subplotspec().is_last_row() else "")
    legend(fig, styles, data.method)
    return fig


def probe_methods(
    comparisons: pd.DataFrame,
    dataset: str,
    depth: int,
    covariance_methods: list[str],
    baseline: str,
    bases: dict[str, str | None],
) -> tuple[list[str], str | None]:
    """The methods the probe figure shows on one row: the baseline, each covariance variant and its base, and the
    best remedy on validation (the one the primary verdicts name); and that remedy."""
    remedy = decided_best_remedy(comparisons, dataset, depth)
    shown = [baseline, *covariance_methods, *(b for b in bases.values() if b), remedy]
    return [m for m in dict.fromkeys(shown) if m], remedy


def probe_accuracy(
    probe_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    styles: dict,
    covariance_methods: list[str],
    baseline: str,
    bases: dict[str, str | None],
) -> plt.Figure:
    """(l) Validation accuracy of a linear probe on each hidden layer at the deepest depth, at init and after the
    last epoch (median over seeds with its 95% bootstrap interval), for the baseline, each covariance variant, its
    base and the best remedy on validation; a row per dataset; dotted line: chance (1 / classes)."""
    depth = int(probe_summary.depth.max()) if len(probe_summary) else 0
    data = probe_summary[probe_summary.depth == depth]
    datasets = sorted(data.dataset.unique())
    if not datasets:
        fig, axes = panel_grid(1, 1, COLUMN_WIDTH)
        return _nothing(fig, axes[0, 0], "no probe was taken")
    fig, axes = panel_grid(len(datasets), len(PROBE_MOMENTS), FULL_WIDTH, panel_height=1.6, sharex=True, sharey="row")
    moments = {moment: at_moment(data, moment) for moment in PROBE_MOMENTS}
    shown = set()
    for row, dataset in zip(axes, datasets):
        methods, remedy = probe_methods(comparisons, dataset, depth, covariance_methods, baseline, bases)
        for ax, (moment, when) in zip(row, PROBE_MOMENTS.items()):
            frame = moments[moment]
            cell = frame[(frame.dataset == dataset) & frame.method.isin(methods)]
            for method, rows in by_method(cell, styles):
                rows = rows.sort_values("layer")
                plot(ax, rows.layer, finite_values(rows["median"]), method, styles)
                ax.fill_between(
                    rows.layer,
                    finite_values(rows.ci_low),
                    finite_values(rows.ci_high),
                    color=styles[method]["color"],
                    alpha=0.12,
                    linewidth=0,
                )
                shown.add(method)
            if dataset in CLASSES:
                ax.axhline(1 / CLASSES[dataset], color="0.5", linestyle=":", linewidth=0.8, zorder=0)
                ax.text(
                    0.99,
                    1 / CLASSES[dataset],
                    "chance",
                    transform=ax.get_yaxis_transform(),
                    ha="right",
                    va="bottom",
                    color="0.4",
                )
            ax.set(
                ylim=(0, 1.02),
                title=f"{dataset}, depth {depth}, {when}"
                + (f"\nbest remedy: {remedy}" if remedy and moment == "last" else ""),
            )
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        row[0].set_ylabel("probe accuracy\n(validation)")
    plt.setp(axes[-1], xlabel="layer")
    legend(fig, styles, shown)
    return fig


FIGURES = {figure.__name__: figure for figure in (force_vs_gradient, active_groups, probe_accuracy)}
