"""Nielsen's sanity check in the paper: the table of each hidden layer's speed at initialization (mean and spread over
seeds) and the figure of the speeds over training, from the tidy table covbench.training.nielsen writes.

Split from the former flat nielsen.py: its networks are trained in covbench.training.nielsen, their table and
figure drawn here, in the report layer (beside the figures package rather than in it: the figure is drawn from its
own table, not through covbench.report.draw, with the figures' theme and sizes).

    write_table("results/nielsen/layer_speed.parquet", "speed_at_init.parquet", "speed_at_init.tex")
    write_figure("results/nielsen/layer_speed.parquet", "layer_speed.pdf", "layer_speed.png")
"""

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from covbench import atomic  # noqa: E402
from covbench.report.figures.layout import FULL_WIDTH, panel_grid  # noqa: E402


def speed_at_init(speed: pd.DataFrame) -> pd.DataFrame:
    """Per network and hidden layer: mean and sample standard deviation over seeds of the speed at epoch 0."""
    at_init = speed[speed.epoch == 0].groupby(["network", "hidden_layers", "layer"], sort=False).bias_grad_norm
    summary = at_init.agg(mean="mean", std="std", n_seeds="count").reset_index()
    return summary.sort_values(["hidden_layers", "layer"], ignore_index=True)


def mean_pm_std(mean: float, std: float) -> str:
    """`$0.061 \\pm 0.018$`: the spread to two significant digits, the mean to the same decimal place."""
    if not (np.isfinite(std) and std > 0):
        return f"${mean:.3g}$"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return f"${mean:.{decimals}f} \\pm {std:.{decimals}f}$"


def latex_table(summary: pd.DataFrame) -> str:
    """booktabs tabular: one row per network, one column per hidden layer (1 = nearest the input)."""
    layers = range(1, int(summary.layer.max()) + 1)
    seeds = sorted(summary.n_seeds.unique())
    lines = [
        f"% Written by covbench.report.nielsen.write_table: mean $\\pm$ sample std over {', '.join(map(str, seeds))} seeds.",
        r"\begin{tabular}{l" + "c" * len(layers) + "}",
        r"\toprule",
        f"& \\multicolumn{{{len(layers)}}}{{c}}{{$\\lVert \\partial C / \\partial b^l \\rVert$ at initialization, "
        f"hidden layer $l$}} \\\\",
        f"\\cmidrule(l){{2-{len(layers) + 1}}}",
        "network & " + " & ".join(str(layer) for layer in layers) + r" \\",
        r"\midrule",
    ]
    for (network, _), rows in summary.groupby(["network", "hidden_layers"], sort=False):
        cells = {row.layer: mean_pm_std(row.mean, row.std) for row in rows.itertuples()}
        lines.append(f"${network}$ & " + " & ".join(cells.get(layer, "--") for layer in layers) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(speed_path: str, summary_path: str, tex_path: str) -> None:
    summary = speed_at_init(pd.read_parquet(speed_path))
    atomic.write_parquet(summary, summary_path)
    atomic.write_text(tex_path, latex_table(summary))


def plot_speed(speed: pd.DataFrame):
    """One panel per network: mean speed of each hidden layer over epochs, band = range over seeds, log y; at print
    size under the figures' theme (covbench.report.figures.layout)."""
    layers = sorted(speed.layer.unique())
    networks = list(dict.fromkeys(speed.network))
    fig, axes = panel_grid(1, len(networks), FULL_WIDTH, panel_height=2.2, sharey=True)
    palette = dict(zip(layers, sns.color_palette("colorblind", len(layers))))
    for ax, network in zip(axes[0], networks):
        sns.lineplot(
            data=speed[speed.network == network],
            x="epoch",
            y="bias_grad_norm",
            hue="layer",
            estimator="mean",
            errorbar=("pi", 100),
            palette=palette,
            hue_order=layers,
            legend=ax is axes[0, -1],
            ax=ax,
        )
        ax.set(yscale="log", title=network, ylabel=r"speed $\|\partial C / \partial b^l\|$" if ax is axes[0, 0] else "")
    axes[0, -1].legend(title="hidden layer $l$", frameon=False)
    return fig


def write_figure(speed_path: str, pdf_path: str, png_path: str) -> None:
    figure = plot_speed(pd.read_parquet(speed_path))
    for path in (pdf_path, png_path):
        kind = Path(path).suffix[1:]
        atomic.write_with(path, lambda out, kind=kind: figure.savefig(out, format=kind, dpi=200))
    plt.close(figure)
