"""The recurrent track's figures (docs/design.md#the-recurrent-track, "Long memories"): depth in time. Drawn like every
figure, by covbench.report.draw.make, which gathers this module's FIGURES; a recurrent
run's `depth` is its sequence length T and its `layer` a time step t.

    make("hidden_grad_over_time", {"layer_summary": "results/aggregate/layer_summary.parquet"}, pdf, png, methods,
         datasets=["smnist"])

Medians over seeds with 95% bootstrap intervals, as in covbench.report.figures.results.
"""

import matplotlib.pyplot as plt
import pandas as pd

from covbench.report.figures import results
from covbench.report.figures.emphasis import answer_methods, emphasized
from covbench.report.figures.layout import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    by_method,
    depth_axis,
    finite_values,
    legend,
    log_y,
    panel_grid,
    plot,
)

MOMENTS = {0: "at init", 1: "epoch 1 (mean over its logged steps)"}


def _nothing(fig, ax):
    ax.text(0.5, 0.5, "no recurrent track in this config", transform=ax.transAxes, ha="center", va="center")
    ax.set_axis_off()
    return fig


def accuracy_vs_length(method_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(l) Best-checkpoint test accuracy against the sequence length T (the memory distance), one panel per dataset."""
    if method_summary.empty:
        fig, axes = panel_grid(1, 1, COLUMN_WIDTH)
        return _nothing(fig, axes[0, 0])
    return results.accuracy_vs_depth(method_summary, comparisons, styles, xlabel="sequence length $T$")


def hidden_grad_over_time(layer_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(m) ||dL/dh_t|| against t (log scale), at init and over the first epoch, one column per T (Arjovsky et al.
    2016, figure 4): a vanishing gradient falls off towards t = 1, the image rows the class must be read from. In
    colour the covariance variants, their bases and the best remedy at that T, the rest grey."""
    data = layer_summary[(layer_summary.statistic == "hidden_grad_norm") & layer_summary.epoch.isin(MOMENTS)]
    lengths = sorted(data.depth.unique())
    fig, axes = panel_grid(len(MOMENTS), max(len(lengths), 1), FULL_WIDTH, panel_height=1.5, sharey="row")
    if data.empty:
        return _nothing(fig, axes[0, 0])
    for r, (epoch, moment) in enumerate(MOMENTS.items()):
        for ax, length in zip(axes[r], lengths):
            cell = data[(data.depth == length) & (data.epoch == epoch)]
            looks = emphasized(styles, answer_methods(comparisons, depth=length))
            for method, rows in by_method(cell, styles):
                rows = rows.groupby("layer", as_index=False)["median"].median()  # one line per method (datasets pooled)
                plot(ax, rows.layer, finite_values(rows["median"]), method, looks)
            log_y(ax)
            ax.axvline(28, color="0.7", linewidth=0.5, zorder=0)  # the last image row
            ax.set_title(f"$T$ = {length}, {moment}")
            ax.set_xlabel("time step $t$" if r == len(MOMENTS) - 1 else "")
        axes[r, 0].set_ylabel(r"$\|\partial L/\partial h_t\|$")
    legend(fig, emphasized(styles, answer_methods(comparisons)), data.method)
    return fig


def temporal_vanishing_index(method_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(n) The temporal vanishing index log10(||dL/dh_1|| / ||dL/dh_T||) against T, at init and over epoch 1; in
    colour the covariance variants, their bases and the best remedies, the rest grey."""
    columns = {"vanishing_index_init": "at init", "vanishing_index_epoch1": "epoch 1"}
    data = method_summary[method_summary.metric.isin(columns)]
    lengths = sorted(data.depth.unique())
    fig, axes = panel_grid(1, len(columns), FULL_WIDTH, panel_height=1.5, sharey=True)
    if data.empty:
        return _nothing(fig, axes[0, 0])
    looks = emphasized(styles, answer_methods(comparisons))
    for ax, (metric, when) in zip(axes[0], columns.items()):
        for method, rows in by_method(data[data.metric == metric], styles):
            rows = rows.groupby("depth", as_index=False)["median"].median()
            plot(ax, rows.depth, finite_values(rows["median"]), method, looks)
        depth_axis(ax, lengths)
        ax.axhline(0, color="0.7", linewidth=0.5, zorder=0)
        ax.set(title=when, xlabel="sequence length $T$")
    axes[0, 0].set_ylabel(
        "temporal vanishing index\n" + r"$\log_{10}\|\partial L/\partial h_1\|/\|\partial L/\partial h_T\|$"
    )
    legend(fig, looks, data.method)
    return fig


FIGURES = {figure.__name__: figure for figure in (accuracy_vs_length, hidden_grad_over_time, temporal_vanishing_index)}
