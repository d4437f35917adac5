"""Nielsen's per-layer speed of learning (Neural Networks and Deep Learning, ch. 5), as a sanity check: his networks
trained. Their table and figure are made in covbench.report.nielsen.

His experiment (generate_gradient.py): networks [784, 30, ..., 30, 10] with sigmoid units, network2's default
initialization (weights N(0, 1/fan_in), biases N(0, 1)) and cross-entropy cost, on the first 1000 MNIST
training images. The speed of hidden layer l is ||dC/db_l||, the norm of the bias gradient of the *mean* cost
over the 1000 images, at initialization and then before every epoch of 500 epochs of full-batch gradient
descent (eta = 0.1, L2 with lambda = 5.0 in network2's convention: w <- (1 - eta*lambda/n) w - eta * grad).

The package's own loop reproduces it: with one batch of all n images and no momentum, a step is an epoch
and the step's logged bias_grad_norm is his norm before that epoch's update.

    run(files, "results/nielsen/hidden2/layer_speed.parquet", config["nielsen"], hidden_layers=2)
"""

import numpy as np
import pandas as pd
import torch

from covbench import atomic
from covbench.config import METHOD_DEFAULTS
from covbench.data.datasets import read_idx
from covbench.training.process import configure_process
from covbench.training.train import train

# network2.Network(sizes) with CrossEntropyCost and default_weight_initializer; no remedy of any kind.
SPEC = {**METHOD_DEFAULTS, "activation": "sigmoid", "init": "nielsen"}
# docs/design.md#datasets-and-splits: the validation split is the last 10k of the official train set
MNIST_VAL_START = 50_000


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
    return {
        "x_train": x[:n_images],
        "y_train": y[:n_images],
        "x_val": x[val],
        "y_val": y[val],
        "x_test": x_test[:n_images],
        "y_test": y_test[:n_images],
    }


def hyperparameters(settings: dict) -> dict:
    """Full-batch gradient descent; the L2 term lambda/(2n) sum w^2 adds (lambda/n) w to each weight gradient."""
    return {
        "width": settings["width"],
        "epochs": settings["epochs"],
        "batch_size": settings["n_images"],
        "lr": settings["lr"],
        "momentum": 0.0,
        "weight_decay": settings["l2"] / settings["n_images"],
        "loss": "sigmoid_cross_entropy",
        "log_every": 1,
    }


def network_name(sizes: list[int]) -> str:
    return "[" + ", ".join(str(size) for size in sizes) + "]"


def layer_speed(
    splits: dict[str, torch.Tensor], settings: dict, hidden_layers: int, device: str = "cpu"
) -> pd.DataFrame:
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


def run(
    files: dict[str, str], out_path: str, settings: dict, hidden_layers: int, threads: int = 1, device: str = "cpu"
) -> None:
    """files: train_images, train_labels, test_images, test_labels (verified raw IDX files)."""
    configure_process(threads)
    splits = load_splits(**files, n_images=settings["n_images"])
    speed = layer_speed(splits, settings, hidden_layers, device=device)
    atomic.write_parquet(speed, out_path)


def collect(paths: list[str], out_path: str) -> None:
    """One tidy table of all networks, fewest hidden layers first."""
    speed = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    atomic.write_parquet(speed.sort_values(["hidden_layers", "seed", "epoch", "layer"], ignore_index=True), out_path)
