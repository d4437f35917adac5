"""Nielsen's per-layer speed of learning (Neural Networks and Deep Learning, ch. 5), as a sanity check.

His experiment (generate_gradient.py): networks [784, 30, ..., 30, 10] with sigmoid units, network2's default
initialization (weights N(0, 1/fan_in), biases N(0, 1)) and cross-entropy cost, on the first 1000 MNIST
training images. The speed of hidden layer l is ||dC/db_l||, the norm of the bias gradient of the *mean* cost
over the 1000 images, at initialization and then before every epoch of 500 epochs of full-batch gradient
descent (eta = 0.1, L2 with lambda = 5.0 in network2's convention: w <- (1 - eta*lambda/n) w - eta * grad).

The package's own loop reproduces it: with one batch of all n images and no momentum, a step is an epoch
and the step's logged bias_grad_norm is his norm before that epoch's update.

    run(files, "results/nielsen/hidden2/layer_speed.parquet", config["nielsen"], hidden_layers=2)
    write_table("results/nielsen/layer_speed.parquet", "speed_at_init.parquet", "speed_at_init.tex")
"""
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch

from covbench.config import METHOD_DEFAULTS
from covbench.data import read_idx
from covbench.train import configure_process, train

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

# network2.Network(sizes) with CrossEntropyCost and default_weight_initializer; no remedy of any kind.
SPEC = {**METHOD_DEFAULTS, "activation": "sigmoid", "init": "nielsen"}
MNIST_VAL_START = 50_000  # DESIGN section 1: the validation split is the last 10k of the official train set


def _images(path) -> torch.Tensor:
    images = read_idx(path)
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255)


def _labels(path) -> torch.Tensor:
    return torch.from_numpy(read_idx(path).astype(np.int64))


def load_splits(train_images, train_labels, test_images, test_labels, n_images: int) -> dict[str, torch.Tensor]:
    """The first n_images of the MNIST training split in file order (his training_data[:1000]), pixels / 255.

    train() also reports held-out accuracy every epoch; the experiment does not use it, so the validation and
    test splits are their first n_images only, which keeps that evaluation as cheap as the training step.
    """
    x, y = _images(train_images), _labels(train_labels)
    x_test, y_test = _images(test_images), _labels(test_labels)
    val = slice(MNIST_VAL_START, MNIST_VAL_START + n_images)
    return {"x_train": x[:n_images], "y_train": y[:n_images], "x_val": x[val], "y_val": y[val],
            "x_test": x_test[:n_images], "y_test": y_test[:n_images]}


def hyperparameters(settings: dict) -> dict:
    """Full-batch gradient descent; the L2 term lambda/(2n) sum w^2 adds (lambda/n) w to each weight gradient."""
    return {
        "width": settings["width"], "epochs": settings["epochs"], "batch_size": settings["n_images"],
        "lr": settings["lr"], "momentum": 0.0, "weight_decay": settings["l2"] / settings["n_images"],
        "loss": "sigmoid_cross_entropy", "log_every": 1,
    }


def network_name(sizes: list[int]) -> str:
    return "[" + ", ".join(str(size) for size in sizes) + "]"


def layer_speed(splits: dict[str, torch.Tensor], settings: dict, hidden_layers: int, device: str = "cpu") -> pd.DataFrame:
    """Tidy speeds of one network, all seeds: network, hidden_layers, seed, epoch, layer, bias_grad_norm.

    Epoch e holds the gradient before the update of epoch e (0 = at initialization), as his norms[e].
    """
    result = train(splits, SPEC, hyperparameters(settings), hidden_layers, settings["seeds"], device=device)
    classes = int(splits["y_train"].max()) + 1
    sizes = [splits["x_train"].shape[1]] + [settings["width"]] * hidden_layers + [classes]
    speed = result.layer_stats[["seed", "epoch", "layer", "bias_grad_norm"]].copy()
    speed.insert(0, "hidden_layers", hidden_layers)
    speed.insert(0, "network", network_name(sizes))
    return speed.sort_values(["seed", "epoch", "layer"], ignore_index=True)


def run(files: dict[str, str], out_path: str, settings: dict, hidden_layers: int, threads: int = 1,
        device: str = "cpu") -> None:
    """files: train_images, train_labels, test_images, test_labels (verified raw IDX files)."""
    configure_process(threads)
    splits = load_splits(**files, n_images=settings["n_images"])
    speed = layer_speed(splits, settings, hidden_layers, device=device)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    speed.to_parquet(out_path, index=False)


def collect(paths: list[str], out_path: str) -> None:
    """One tidy table of all networks, fewest hidden layers first."""
    speed = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    speed.sort_values(["hidden_layers", "seed", "epoch", "layer"], ignore_index=True).to_parquet(out_path, index=False)


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
        f"% Written by covbench.nielsen.write_table: mean $\\pm$ sample std over {', '.join(map(str, seeds))} seeds.",
        r"\begin{tabular}{l" + "c" * len(layers) + "}", r"\toprule",
        f"& \\multicolumn{{{len(layers)}}}{{c}}{{$\\lVert \\partial C / \\partial b^l \\rVert$ at initialization, "
        f"hidden layer $l$}} \\\\",
        f"\\cmidrule(l){{2-{len(layers) + 1}}}",
        "network & " + " & ".join(str(layer) for layer in layers) + r" \\", r"\midrule",
    ]
    for (network, _), rows in summary.groupby(["network", "hidden_layers"], sort=False):
        cells = {row.layer: mean_pm_std(row.mean, row.std) for row in rows.itertuples()}
        lines.append(f"${network}$ & " + " & ".join(cells.get(layer, "--") for layer in layers) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(speed_path: str, summary_path: str, tex_path: str) -> None:
    summary = speed_at_init(pd.read_parquet(speed_path))
    summary.to_parquet(summary_path, index=False)
    Path(tex_path).write_text(latex_table(summary))


def plot_speed(speed: pd.DataFrame):
    """One panel per network: mean speed of each hidden layer over epochs, band = range over seeds, log y."""
    layers = sorted(speed.layer.unique())
    grid = sns.relplot(
        data=speed, x="epoch", y="bias_grad_norm", hue="layer", col="network", kind="line",
        estimator="mean", errorbar=("pi", 100), palette=sns.color_palette("colorblind", len(layers)),
        hue_order=layers, height=3.0, aspect=1.1, facet_kws={"sharey": True},
    )
    grid.set(yscale="log")
    grid.set_titles(col_template="{col_name}")
    grid.set_axis_labels("epoch", r"speed $\|\partial C / \partial b^l\|$")
    grid.legend.set_title("hidden layer $l$")
    return grid.figure


def write_figure(speed_path: str, pdf_path: str, png_path: str) -> None:
    figure = plot_speed(pd.read_parquet(speed_path))
    for path in (pdf_path, png_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, bbox_inches="tight", dpi=200)
    plt.close(figure)
