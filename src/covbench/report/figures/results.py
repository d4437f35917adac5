"""The paper's figures of results: one function per figure, from summary tables to a matplotlib Figure
(covbench.report.draw gathers them with the other figure modules and saves them). Theme, sizes and the drawing
helpers are in covbench.report.figures.layout.

Figures are drawn at one-column (3.4 in) or full (7 in) width with 6-7 pt text, a row of panels per
dataset, and each method in its covbench.report.palette style. Statistics across seeds are medians.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from covbench.analysis import aggregate  # noqa: E402
from covbench.analysis.compare import decided_best_remedy  # noqa: E402
from covbench.report.figures.emphasis import GREY, answer_methods, emphasized, line_label  # noqa: E402
from covbench.report.figures.layout import (  # noqa: E402
    COLUMN_WIDTH,
    FULL_WIDTH,
    MAX_HEIGHT,
    by_method,
    dataset_depth_grid,
    depth_axis,
    dodged,
    finite_values,
    interval,
    legend,
    log_y,
    panel_grid,
    plot,
)

SPEED_LABEL = r"speed $\|\partial C/\partial b_l\|$"
LAYER_COLORMAP = "viridis"  # layer index is ordered: a sequential, colour-blind-safe map
ACCURACY_COLORMAP = "cividis"
TAUS = np.linspace(1.0, 4.0, 301)
CONSTANT_LABEL = "majority class"  # the constant predictor that answers the training set's majority class
CONSTANT_STYLE = dict(color="0.4", linestyle="--", linewidth=0.7, zorder=0)


# --- figures -------------------------------------------------------------------------------------


def speed_at_init(layer_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(a) Speed of learning ||dC/db_l|| of each hidden layer at initialization, per depth; in colour the cell's
    covariance variants, their bases and its best remedy (covbench.report.figures.emphasis), the rest grey."""
    data = layer_summary[(layer_summary.statistic == "bias_grad_norm") & (layer_summary.epoch == 0)]
    fig, axes = dataset_depth_grid(data, sharey="row")
    for (dataset, depth), ax in axes.items():
        looks = emphasized(styles, answer_methods(comparisons, dataset, depth))
        for method, rows in by_method(data[(data.dataset == dataset) & (data.depth == depth)], styles):
            plot(ax, rows.layer, finite_values(rows["median"]), method, looks)
        log_y(ax)
        ax.set(xlabel="layer", title=f"{dataset}, depth {depth}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(SPEED_LABEL if ax.get_subplotspec().is_first_col() else "")
    legend(fig, emphasized(styles, answer_methods(comparisons)), data.method)
    return fig


def speed_over_training(
    layer_stats: pd.DataFrame, comparisons: pd.DataFrame, styles: dict, covariance_methods: list[str], baseline: str
) -> plt.Figure:
    """(b) Speed of every layer over training at the deepest depth: baseline, covariance methods, best remedy
    (the one the primary verdicts name there, which may be the baseline itself).

    A line per layer (median over seeds at each logged step), coloured from layer 1 to layer L.
    """
    depth = int(layer_stats.depth.max())
    data = layer_stats[layer_stats.depth == depth]
    speed = data.groupby(["dataset", "method", "step", "layer"], as_index=False)["bias_grad_norm"].median()
    datasets = sorted(speed.dataset.unique())
    covariance = [m for m in styles if m in covariance_methods and m in set(speed.method)]
    fig, axes = panel_grid(len(datasets), len(covariance) + 2, FULL_WIDTH, sharex="row", sharey="row")
    norm = Normalize(1, depth)
    colormap = plt.get_cmap(LAYER_COLORMAP)
    for row, dataset in zip(axes, datasets):
        remedy = decided_best_remedy(comparisons, dataset, depth)
        methods = [baseline, *covariance, remedy]
        remedy_title = f"{remedy}\n(best remedy)" if remedy else "no remedy learned\n(none above majority class)"
        for ax, method, title in zip(row, methods, [baseline, *covariance, remedy_title]):
            cell = speed[(speed.dataset == dataset) & (speed.method == method)]
            for layer, rows in cell.groupby("layer"):
                ax.plot(rows.step, finite_values(rows.bias_grad_norm), color=colormap(norm(layer)), linewidth=0.8)
            log_y(ax)
            ax.set(xlabel="step", title=title)
        row[0].set_ylabel(f"{dataset}\n{SPEED_LABEL}")
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=axes, label=f"layer (depth {depth})", shrink=0.8)
    return fig


def vanishing_index(method_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(c) Vanishing index log10(speed(1) / speed(L)) vs depth, at init and over epoch 1, with 95% intervals; in
    colour the dataset's covariance variants, their bases and best remedies, the rest grey without intervals."""
    columns = {"vanishing_index_init": "at init", "vanishing_index_epoch1": "epoch 1"}
    data = method_summary[method_summary.metric.isin(columns)]
    datasets, depths = sorted(data.dataset.unique()), sorted(data.depth.unique())
    fig, axes = panel_grid(len(datasets), len(columns), FULL_WIDTH, sharex=True, sharey="row")
    methods = list(by_method(data, styles))
    for row, dataset in zip(axes, datasets):
        looks = emphasized(styles, answer_methods(comparisons, dataset))
        for ax, (metric, when) in zip(row, columns.items()):
            for position, (method, rows) in enumerate(methods):
                rows = rows[(rows.dataset == dataset) & (rows.metric == metric)].sort_values("depth")
                ax.errorbar(
                    dodged(rows.depth, position, len(methods)),
                    finite_values(rows["median"]),
                    None if looks[method] is GREY else interval(rows),
                    label=line_label(method, looks),
                    elinewidth=0.6,
                    **looks[method],
                )
            ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
            depth_axis(ax, depths)
            ax.set_title(f"{dataset}, {when}")
        row[0].set_ylabel("vanishing index\n" + r"$\log_{10}$ speed(1) / speed($L$)")
    plt.setp(axes[-1], xlabel="depth")
    legend(fig, emphasized(styles, answer_methods(comparisons)), data.method)
    return fig


def _diverged(method_summary: pd.DataFrame) -> dict[tuple, int]:
    """(dataset, method, depth) -> number of diverged runs, for the cells that have any."""
    counts = aggregate.diverged_counts(method_summary)
    return {(r.dataset, r.method, r.depth): r.n_diverged for r in counts[counts.n_diverged > 0].itertuples()}


def accuracy_vs_depth(
    method_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict, xlabel: str = "depth"
) -> plt.Figure:
    """(d) Best-checkpoint test accuracy vs depth (a recurrent run's: its sequence length), median over seeds with its 95%
    bootstrap interval; a point whose cell has diverged runs is labelled with their number (they are in the median
    at the accuracy they had when they stopped). Dashed: the constant predictor's test accuracy (answering the
    training set's majority class), the median over the dataset's cells, where the runs record it. In colour the
    dataset's covariance variants, their bases and best remedies (as the verdicts name them), the rest grey."""
    data = method_summary[method_summary.metric == "test_accuracy"]
    constant = aggregate.constant_predictor(method_summary).groupby("dataset")["median"].median()
    diverged = _diverged(method_summary)
    datasets, depths = sorted(data.dataset.unique()), sorted(data.depth.unique())
    width = min(FULL_WIDTH, COLUMN_WIDTH * max(len(datasets), 1))  # datasets side by side: the page keeps its height
    fig, axes = panel_grid(1, max(len(datasets), 1), width, panel_height=1.9, sharex=True)
    methods = list(by_method(data, styles))
    for ax, dataset in zip(axes[0], datasets):
        looks = emphasized(styles, answer_methods(comparisons, dataset))
        for position, (method, rows) in enumerate(methods):
            rows = rows[rows.dataset == dataset].sort_values("depth")
            x = dodged(rows.depth, position, len(methods))
            bars = None if looks[method] is GREY else interval(rows)
            ax.errorbar(
                x, finite_values(rows["median"]), bars, label=line_label(method, looks), elinewidth=0.6, **looks[method]
            )
            for xi, depth, median in zip(x, rows.depth, finite_values(rows["median"])):
                if (dataset, method, depth) in diverged and np.isfinite(median):
                    ax.annotate(
                        f"{diverged[dataset, method, depth]} div.",
                        (xi, median),
                        xytext=(2, 2),
                        textcoords="offset points",
                        color=looks[method]["color"],
                    )
        if dataset in constant:
            ax.axhline(constant[dataset], **CONSTANT_STYLE)
            ax.text(
                0.99,
                constant[dataset],
                CONSTANT_LABEL,
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="bottom",
                color=CONSTANT_STYLE["color"],
            )
        depth_axis(ax, depths)
        ax.set(xlabel=xlabel, ylabel="test accuracy" if ax is axes[0, 0] else "", title=dataset)
    legend(fig, emphasized(styles, answer_methods(comparisons)), data.method)
    return fig


def loss_curves(epoch_curves: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(e) Training loss per epoch (median over the seeds still running), per depth; in colour the cell's covariance
    variants, their bases and its best remedy, the rest grey."""
    finite = epoch_curves[np.isfinite(epoch_curves.train_loss)]
    loss = finite.groupby(["dataset", "method", "depth", "epoch"], as_index=False)["train_loss"].median()
    fig, axes = dataset_depth_grid(loss, sharey="row")
    for (dataset, depth), ax in axes.items():
        looks = emphasized(styles, answer_methods(comparisons, dataset, depth))
        for method, rows in by_method(loss[(loss.dataset == dataset) & (loss.depth == depth)], styles):
            plot(ax, rows.epoch, rows.train_loss, method, looks)
        log_y(ax)
        ax.set(xlabel="epoch", title=f"{dataset}, depth {depth}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("training loss" if ax.get_subplotspec().is_first_col() else "")
    legend(fig, emphasized(styles, answer_methods(comparisons)), loss.method)
    return fig


def saturation(layer_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(f) Fraction of saturated or dead units per layer, at init and at each run's last logged epoch; in colour the
    cell's covariance variants, their bases and its best remedy, the rest grey."""
    data = layer_summary[layer_summary.statistic == "saturation"]
    last_epoch = data.groupby(["dataset", "method", "depth"])["epoch"].transform("max")
    moments = {"init": data[data.epoch == 0], "last epoch": data[data.epoch == last_epoch]}
    datasets, depths = sorted(data.dataset.unique()), sorted(data.depth.unique())
    fig, axes = panel_grid(2 * len(datasets), len(depths), FULL_WIDTH, panel_height=1.25, sharey=True)
    for r, (dataset, (moment, frame)) in enumerate((d, m) for d in datasets for m in moments.items()):
        for ax, depth in zip(axes[r], depths):
            looks = emphasized(styles, answer_methods(comparisons, dataset, depth))
            for method, rows in by_method(frame[(frame.dataset == dataset) & (frame.depth == depth)], styles):
                plot(ax, rows.layer, finite_values(rows["median"]), method, looks)
            ax.set(ylim=(-0.03, 1.03), title=f"depth {depth}" if r == 0 else "")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[r, 0].set_ylabel(f"{dataset}, {moment}\nsaturated fraction")
    plt.setp(axes[-1], xlabel="layer")
    legend(fig, emphasized(styles, answer_methods(comparisons)), data.method)
    return fig


def accuracy_heatmap(method_summary: pd.DataFrame, styles: dict) -> plt.Figure:
    """(g) Median best-checkpoint test accuracy (%) of every method at every depth, one panel per dataset; a cell with diverged
    runs gives their number. A last row, where the runs record it: the constant predictor that answers the training
    set's majority class."""
    data = method_summary[method_summary.metric == "test_accuracy"]
    constant = aggregate.constant_predictor(method_summary).assign(method=CONSTANT_LABEL)
    diverged = _diverged(method_summary)
    datasets = sorted(data.dataset.unique())
    methods = [m for m, _ in by_method(data, styles)] + ([CONSTANT_LABEL] if len(constant) else [])
    data = pd.concat([data, constant], ignore_index=True)
    fig, axes = panel_grid(1, len(datasets), FULL_WIDTH, panel_height=0.17 * len(methods) + 0.6)
    norm = Normalize(0, 100)
    for i, (ax, dataset) in enumerate(zip(axes[0], datasets)):
        table = 100 * data[data.dataset == dataset].pivot(index="method", columns="depth", values="median")
        table = table.reindex(methods)
        labels = table.apply(
            lambda column, dataset=dataset: [  # a cell with diverged runs says how many below its value
                f"{value:.1f}"
                + (
                    f"\n{diverged[dataset, method, column.name]} div."
                    if (dataset, method, column.name) in diverged
                    else ""
                )
                if np.isfinite(value)
                else ""
                for method, value in column.items()
            ]
        )
        sns.heatmap(
            table,
            ax=ax,
            annot=labels.to_numpy(),
            fmt="",
            cmap=ACCURACY_COLORMAP,
            vmin=norm.vmin,
            vmax=norm.vmax,
            cbar=False,
            yticklabels=i == 0,
            annot_kws={"size": 6},
            linewidths=0.4,
            linecolor="white",
        )
        ax.set(title=dataset, xlabel="depth", ylabel="")
        ax.tick_params(length=0)
    fig.colorbar(ScalarMappable(norm=norm, cmap=ACCURACY_COLORMAP), ax=axes, label="test accuracy (%)", shrink=0.8)
    return fig


def performance_profile(method_summary: pd.DataFrame, comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(h) Fraction of (dataset, depth) workloads on which a method is within a factor tau of the fastest; in colour
    the covariance variants, their bases and every best remedy, the rest grey."""
    profile = aggregate.performance_profile(method_summary, TAUS)
    looks = emphasized(styles, answer_methods(comparisons))
    fig, axes = panel_grid(1, 1, COLUMN_WIDTH, panel_height=2.0)
    ax = axes[0, 0]
    for method, rows in by_method(profile, styles):
        ax.plot(
            rows.tau,
            rows.fraction,
            label=line_label(method, looks),
            drawstyle="steps-post",
            markevery=50,
            **looks[method],
        )
    workloads = profile.workloads.iloc[0]
    if not profile.fraction.any():
        ax.text(
            0.5,
            0.5,
            "no method reached the validation threshold\non any workload",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
    ax.set(
        xlim=(1, TAUS[-1]),
        ylim=(-0.03, 1.03),
        xlabel=r"$\tau$ (epochs to threshold / the fastest method's)",
        ylabel=f"fraction of {workloads} workloads",
    )
    legend(fig, looks, profile.method)
    return fig


SWEEP_ROWS = {"test_accuracy": "test accuracy", "vanishing_index_epoch1": "vanishing index\nepoch 1"}


def _lambda_label(value: float) -> str:
    """0, 1 and 10 as they are, other powers of ten as 10^k (short ticks), anything else as the plain number."""
    exponent = np.log10(value) if value > 0 else 0.0
    return f"$10^{{{exponent:.0f}}}$" if value not in (0, 1, 10) and exponent == round(exponent) else f"{value:g}"


def lambda_sweep(sweep_runs: pd.DataFrame, sweep_summary: pd.DataFrame, styles: dict) -> plt.Figure:
    """(i) Covariance's best shot: test accuracy and the vanishing index over epoch 1 against lambda at the base's
    tuned learning rate, a column per (dataset, depth), a line per covariance variant (median over seeds with its
    95% bootstrap interval). lambda = 0, the base itself, sits at the left of a symlog axis and its median is
    repeated as a dashed line; the lambda chosen on validation is ringed."""
    runs = sweep_runs.rename(columns={"variant": "method"})
    cells = sorted(set(zip(runs.dataset, runs.depth)))
    fig, axes = panel_grid(
        len(SWEEP_ROWS), max(len(cells), 1), FULL_WIDTH if len(cells) > 1 else COLUMN_WIDTH, sharex=True
    )  # datasets differ in accuracy: each panel its own y range
    if not cells:
        axes[0, 0].text(0.5, 0.5, "no covariance variant was swept", transform=axes[0, 0].transAxes, ha="center")
        return fig
    lambdas = sorted(runs.cov_lambda.unique())
    positive = [v for v in lambdas if v > 0]
    for c, (dataset, depth) in enumerate(cells):
        cell = runs[(runs.dataset == dataset) & (runs.depth == depth)]
        chosen = sweep_summary[(sweep_summary.dataset == dataset) & (sweep_summary.depth == depth)]
        for ax, (metric, label) in zip(axes[:, c], SWEEP_ROWS.items()):
            for method, rows in by_method(cell, styles):
                wide = rows.pivot(index="cov_lambda", columns="seed", values=metric).sort_index()
                x, summary = wide.index.to_numpy(float), aggregate.bootstrap(wide.to_numpy(float))
                median = finite_values(summary["median"])
                ax.errorbar(x, median, interval(summary), label=method, elinewidth=0.6, **styles[method])
                for zero in median[x == 0]:
                    ax.axhline(zero, color=styles[method]["color"], linestyle="--", linewidth=0.6, zorder=0)
                best = np.isin(x, chosen.loc[chosen.variant == method, "best_lambda"].to_numpy(float))
                ax.plot(
                    x[best],
                    median[best],
                    linestyle="none",
                    marker="o",
                    markersize=8,
                    markerfacecolor="none",
                    markeredgecolor=styles[method]["color"],
                    markeredgewidth=0.8,
                )
            ax.set_xscale("symlog", linthresh=min(positive, default=1.0), linscale=0.5)
            ax.set_xticks(lambdas, labels=[_lambda_label(v) for v in lambdas])
            ax.minorticks_off()
            ax.set_ylabel(label if c == 0 else "")
        axes[0, c].set_title(f"{dataset}, depth {depth}")
        axes[-1, c].set_xlabel(r"$\lambda$")
    legend(fig, styles, runs.method)
    return fig


PROFILE_ROWS = {"val_loss": "validation loss", "val_accuracy": "validation accuracy"}
PROFILE_PANEL_HEIGHT = 1.05  # inches: two rows of panels per dataset, and the figure sits in the main text
HYPERPARAMETER_LABELS = {"cov_lambda": r"$\lambda$", "aux_weight": "companion-loss weight"}


def lambda_profile(lambda_profile: pd.DataFrame, styles: dict) -> plt.Figure:
    """(j) Covariance's best shot at every depth, from nested tuning (docs/design.md#the-best-shot): each value of a
    nested method's hyperparameter at its best trial's validation loss and accuracy (tuning seed), two rows per dataset
    and a column per nested method, a line per depth (viridis: deeper is lighter); the base's chosen trial is the dashed
    line of its depth's colour (value 0, the incumbent, repeats it) and the value chosen is ringed."""
    profile = lambda_profile
    datasets = sorted(profile.dataset.unique())
    methods = {d: [m for m in styles if m in set(profile.method[profile.dataset == d])] for d in datasets}
    cols = max([len(m) for m in methods.values()] + [1])
    width = FULL_WIDTH if cols > 1 else COLUMN_WIDTH
    fig, axes = panel_grid(2 * max(len(datasets), 1), cols, width, panel_height=PROFILE_PANEL_HEIGHT, sharex="col")
    if not datasets:
        axes[0, 0].text(0.5, 0.5, "no method was tuned nested in its base", transform=axes[0, 0].transAxes, ha="center")
        return fig
    depths = sorted(profile.depth.unique())
    colors = dict(zip(depths, sns.color_palette(LAYER_COLORMAP, len(depths))))
    for r, dataset in enumerate(datasets):
        for c in range(cols):
            if c >= len(methods[dataset]):
                axes[2 * r, c].set_visible(False)
                axes[2 * r + 1, c].set_visible(False)
                continue
            method = methods[dataset][c]
            cell = profile[(profile.dataset == dataset) & (profile.method == method)]
            for row, (metric, label) in enumerate(PROFILE_ROWS.items()):
                ax = axes[2 * r + row, c]
                for depth, rows in cell.groupby("depth"):
                    rows = rows.sort_values("value")
                    ax.plot(rows.value, finite_values(rows[metric]), marker="o", color=colors[depth])
                    ax.axhline(
                        float(rows[f"base_{metric}"].iloc[0]),
                        color=colors[depth],
                        linestyle="--",
                        linewidth=0.6,
                        zorder=0,
                    )
                    chosen = rows[rows.chosen]
                    ax.plot(
                        chosen.value,
                        finite_values(chosen[metric]),
                        linestyle="none",
                        marker="o",
                        markersize=8,
                        markerfacecolor="none",
                        markeredgecolor=colors[depth],
                        markeredgewidth=0.8,
                    )
                values = sorted(cell.value.unique())  # 0, the base itself, at the left of a symlog axis
                ax.set_xscale("symlog", linthresh=min([v for v in values if v > 0], default=1.0), linscale=0.5)
                ax.set_xticks(values, labels=[_lambda_label(v) for v in values])
                ax.minorticks_off()
                ax.set_ylabel(label if c == 0 else "")
                if row == 0:
                    ax.set_title(f"{dataset}, {method}\n(base {cell.base.iloc[0]})")
                else:
                    ax.set_xlabel(HYPERPARAMETER_LABELS.get(cell.hyperparameter.iloc[0], cell.hyperparameter.iloc[0]))
    handles = [Line2D([], [], color=colors[d], marker="o", label=f"depth {d}") for d in depths]
    handles.append(Line2D([], [], color="grey", linestyle="--", linewidth=0.6, label="its base's chosen trial"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    return fig


VERDICT_STYLE = {
    "beats": ("^", "tab:green"),
    "is beaten by": ("v", "tab:red"),
    "is equivalent to": ("D", "tab:blue"),
    "inconclusive": ("o", "0.45"),
}
OTHER_VERDICT_STYLE = ("s", "0.2")  # a verdict the four do not name (a later kind) still gets a marker and an entry
FOREST_SLOT = 0.12  # inches per row of the forest plot: a comparison at 6 pt, or its group's heading
FOREST_MIN_SLOT = 0.1  # inches: the least a row gets when a large grid must fit MAX_HEIGHT
FOREST_PANEL_EXTRA = 0.55  # inches per row of panels: title, tick labels, axis label


def forest_groups(panel: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(heading, rows by depth) per variant and opponent role: the base first, then the best remedy."""
    groups = []
    for method in dict.fromkeys(panel.sort_values("method").method):
        mine = panel[panel.method == method]
        for role in ("base", "best_remedy"):
            rows = mine[mine.role == role].sort_values("depth")
            if len(rows):
                opponent = f"base {rows.other_method.iloc[0]}" if role == "base" else "best remedy"
                groups.append((f"{method} vs {opponent}", rows))
    return groups


def forest_panel(ax, panel: pd.DataFrame, unit: str) -> set[str]:
    """One dataset's primary comparisons: a heading row per variant and opponent, then a row per depth (the best
    remedy named in its row), each the difference with its interval over the band of equivalence, the marker the
    verdict. Labels are left-aligned, the headings in bold reaching over the plot. Returns the verdicts drawn."""
    margin = 100 * float(panel.margin.iloc[0])
    ax.axvspan(-margin, margin, color="0.88", zorder=0, linewidth=0)
    ax.axvline(0, color="0.5", linewidth=0.6, zorder=1)
    ticks, labels, headings, groups = [], [], [], forest_groups(panel)
    for heading, group in groups:
        headings.append(len(ticks))
        ticks.append(-len(ticks))
        labels.append(heading)
        for row in group.itertuples():
            ticks.append(-len(ticks))
            labels.append(f"{row.depth}" if row.role == "base" else f"{row.depth} vs {row.other_method}")
    drawn = pd.concat([group for _, group in groups])
    y = np.array([t for i, t in enumerate(ticks) if i not in headings], dtype=float)
    ax.hlines(y, 100 * drawn.ci_low.to_numpy(float), 100 * drawn.ci_high.to_numpy(float), color="0.3", linewidth=0.8)
    difference = 100 * drawn.difference.to_numpy(float)
    for verdict in dict.fromkeys(drawn.verdict):
        marker, color = VERDICT_STYLE.get(verdict, OTHER_VERDICT_STYLE)
        mine = (drawn.verdict == verdict).to_numpy()
        ax.plot(difference[mine], y[mine], linestyle="none", marker=marker, color=color, markersize=3.5, zorder=3)
    ax.set_yticks(ticks, labels=labels)
    ax.set_ylim(ticks[-1] - 0.6, 0.6)
    ax.set_ylabel(unit)
    renderer = ax.figure.canvas.get_renderer()
    texts = ax.get_yticklabels()
    rows_width = max(t.get_window_extent(renderer).width for i, t in enumerate(texts) if i not in headings)
    ax.tick_params(axis="y", length=0, pad=rows_width * 72 / ax.figure.dpi + 2)
    for i, text in enumerate(texts):
        text.set_horizontalalignment("left")
        text.set_fontweight("bold" if i in headings else "normal")
    return set(drawn.verdict)


def forest(comparisons: pd.DataFrame, styles: dict) -> plt.Figure:
    """(a) Every primary comparison, the paper's answer at a glance: the variant's test accuracy minus its opponent's
    (percentage points, best checkpoint) with its 95% bootstrap interval, against the shaded +-margin band of
    equivalence, the marker the verdict. The MLP grid's datasets side by side, the recurrent track's below; in each
    panel a heading per variant and opponent and a row per depth, drawn at print size (FOREST_SLOT per row)."""
    rows = comparisons[
        comparisons.family.isin(["primary", "recurrent_primary"]) & (comparisons.metric == "test_accuracy")
    ]
    tracks = [
        [(d, family) for d in sorted(rows.dataset[rows.family == family].unique())]
        for family in ("primary", "recurrent_primary")
    ]
    tracks = [track for track in tracks if track] or [[]]
    panel_rows = {
        (d, f): len(forest_groups(rows[(rows.dataset == d) & (rows.family == f)]))
        + len(rows[(rows.dataset == d) & (rows.family == f)])
        for track in tracks
        for d, f in track
    }
    slots = [max([panel_rows[p] for p in track] + [1]) for track in tracks]
    slot = max(FOREST_MIN_SLOT, min(FOREST_SLOT, (MAX_HEIGHT - 0.3 - FOREST_PANEL_EXTRA * len(slots)) / sum(slots)))
    fig, axes = panel_grid(
        len(tracks),
        max(len(track) for track in tracks) or 1,
        FULL_WIDTH,
        panel_height=slot * sum(slots) / len(slots) + FOREST_PANEL_EXTRA,
        gridspec_kw={"height_ratios": [n * slot + FOREST_PANEL_EXTRA for n in slots]},
    )
    if not tracks[0]:
        axes[0, 0].text(0.5, 0.5, "no primary comparison", transform=axes[0, 0].transAxes, ha="center")
        return fig
    verdicts = set()
    for r, track in enumerate(tracks):
        for c in range(axes.shape[1]):
            if c >= len(track):
                axes[r, c].set_visible(False)
                continue
            dataset, family = track[c]
            panel = rows[(rows.dataset == dataset) & (rows.family == family)]
            recurrent = family == "recurrent_primary"
            verdicts |= forest_panel(axes[r, c], panel, "sequence length $T$" if recurrent else "depth")
            margin = 100 * float(panel.margin.iloc[0])
            axes[r, c].set_title(f"{dataset}{' (recurrent)' if recurrent else ''}: margin $\\pm${margin:g} points")
            axes[r, c].set_xlabel("variant minus opponent (points)")
    known = [v for v in VERDICT_STYLE if v in verdicts] + sorted(verdicts - set(VERDICT_STYLE))
    handles = [
        Line2D([], [], linestyle="none", marker=m, color=c, label=v)
        for v in known
        for m, c in [VERDICT_STYLE.get(v, OTHER_VERDICT_STYLE)]
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


FIGURES = {
    figure.__name__: figure
    for figure in (
        speed_at_init,
        speed_over_training,
        vanishing_index,
        accuracy_vs_depth,
        loss_curves,
        saturation,
        accuracy_heatmap,
        performance_profile,
        lambda_sweep,
        lambda_profile,
        forest,
    )
}
