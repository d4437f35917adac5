"""The deeplearning.ai course's cat classifiers (Ng, "Neural Networks and Deep Learning", week 4, "Deep Neural
Network - Application"), reproduced as a sanity check beside Nielsen's: the data is read right and our tensors
learn what the course's numpy learns. Their table is made in covbench.report.course.

The course's recipe: the official 209 train / 50 test images, flattened in the file's order (its
`x.reshape(m, -1)`) and divided by 255; ReLU hidden layers, a sigmoid output unit and the binary cross-entropy
cost averaged over the examples; full-batch gradient descent, lr 0.0075, 2,500 iterations. Initialisation:
`two_layer_model` draws weights N(0, 1) * 0.01 (`init: small`), `L_layer_model` calls dnn_app_utils'
`initialize_parameters_deep`, weights N(0, 1) / sqrt(fan_in) (`init: fan_in`); biases start at zero. The
arithmetic is float64, as numpy's. Each of our seeds seeds a torch generator (`draw: torch`); once per network the
course's own draw is run too (`draw: numpy`, numpy's legacy generator seeded as the course seeds it,
`np.random.seed(1)`), which gives the course's printed costs and accuracies to the last printed digit.

    run(files, "results/course/accuracy.parquet", config["course"])
"""

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from covbench import atomic
from covbench.data.datasets import read_catvnoncat
from covbench.training.process import configure_process

DTYPE = torch.float64  # the course's numpy arithmetic
INITS = ("small", "fan_in")
DRAWS = ("torch", "numpy")
COLUMNS = [
    "network",
    "sizes",
    "draw",
    "seed",
    "iterations",
    "train_accuracy",
    "test_accuracy",
    "final_cost",
    "wall_s",
    "n_train",
    "n_test",
    "train_cat_share",
    "test_cat_share",
    "reported_test_accuracy",
]

Parameters = list[tuple[torch.Tensor, torch.Tensor]]  # (W of shape (fan_out, fan_in), b of shape (fan_out,))


def load_official(train_path, test_path) -> dict[str, torch.Tensor]:
    """The official split as the course reads it: x (m, 12288) raw pixels / 255 in the file's order, y (m,) 1 = cat."""
    splits = {}
    for split, path in (("train", train_path), ("test", test_path)):
        images, labels = read_catvnoncat(path)
        splits[f"x_{split}"] = torch.from_numpy(images.reshape(len(images), -1)).to(DTYPE) / 255
        splits[f"y_{split}"] = torch.from_numpy(labels).to(DTYPE)
    return splits


def network_name(sizes: list[int]) -> str:
    return "[" + ", ".join(str(size) for size in sizes) + "]"


def initial_parameters(sizes: list[int], init: str, seed: int, draw: str = "torch") -> Parameters:
    """Weights N(0, 1) * 0.01 (`small`) or N(0, 1) / sqrt(fan_in) (`fan_in`), layer by layer from the input; zero
    biases. draw: `torch` (a seeded torch generator) or `numpy` (np.random.seed(seed); np.random.randn, the
    course's)."""
    if init not in INITS:
        raise ValueError(f"unknown course init {init!r}; use one of {', '.join(INITS)}")
    if draw not in DRAWS:
        raise ValueError(f"unknown course draw {draw!r}; use one of {', '.join(DRAWS)}")
    generator = torch.Generator().manual_seed(seed) if draw == "torch" else np.random.RandomState(seed)
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        scale = 0.01 if init == "small" else fan_in**-0.5
        if draw == "torch":
            normal = torch.randn(fan_out, fan_in, generator=generator, dtype=DTYPE)
        else:
            normal = torch.from_numpy(generator.randn(fan_out, fan_in))
        params.append((normal * scale, torch.zeros(fan_out, dtype=DTYPE)))
    return params


def in_span(params: Parameters, x_train: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[Parameters, list]:
    """The first layer in the span of the training images, as covbench.models.span does for the grid: full-batch
    gradient descent only ever adds combinations of the training rows to W_1, so W_1 = C Q^T + W_perp with Q (in, m)
    an orthonormal basis of their span, and each input x is read as the features [x Q, x W_perp^T]. C (out, m) then
    trains in place of W_1 (out, 12288), the same steps up to float64 rounding, 60 times cheaper.
    -> (the parameters with C first, the features of each of `inputs`)."""
    weight, bias = params[0]
    basis = torch.linalg.qr(x_train.T).Q
    coords = weight @ basis
    features = [torch.cat([x @ basis, x @ weight.T - (x @ basis) @ coords.T], dim=1) for x in inputs]
    return [(coords, bias), *params[1:]], features


def logits(params: Parameters, x: torch.Tensor, span_width: int = 0) -> torch.Tensor:
    """The output unit's pre-activation Z_L (m,): ReLU after every layer but the last. span_width > 0: x holds the
    features of in_span, its first span_width columns the span coordinates."""
    a = x
    for layer, (weight, bias) in enumerate(params[:-1]):
        if layer == 0 and span_width:
            a = torch.relu(a[:, :span_width] @ weight.T + a[:, span_width:] + bias)
        else:
            a = torch.relu(a @ weight.T + bias)
    weight, bias = params[-1]
    return (a @ weight.T + bias).squeeze(1)


def cost(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-1/m sum(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))), computed from z so it stays finite."""
    return F.binary_cross_entropy_with_logits(z, y)


def accuracy(params: Parameters, x: torch.Tensor, y: torch.Tensor, span_width: int = 0) -> float:
    """The course's `predict`: cat where sigmoid(z) > 0.5, that is z > 0."""
    with torch.no_grad():
        return ((logits(params, x, span_width) > 0).to(y.dtype) == y).double().mean().item()


def gradient_descent_step(
    params: Parameters, x: torch.Tensor, y: torch.Tensor, lr: float, span_width: int = 0
) -> float:
    """One full-batch step, every parameter p <- p - lr * dcost/dp, in place. -> the cost before the step."""
    tensors = [t.requires_grad_(True) for pair in params for t in pair]
    value = cost(logits(params, x, span_width), y)
    grads = torch.autograd.grad(value, tensors)
    with torch.no_grad():
        for tensor, grad in zip(tensors, grads):
            tensor.sub_(lr * grad)
    for tensor in tensors:
        tensor.requires_grad_(False)
    return value.item()


def train_network(
    splits: dict[str, torch.Tensor],
    sizes: list[int],
    init: str,
    lr: float,
    iterations: int,
    seed: int,
    draw: str = "torch",
    span: bool = True,
) -> dict:
    """One network, one seed: the course's training loop (its first layer in the training images' span, in_span,
    unless span is False). final_cost is the training cost after the last step."""
    start = time.perf_counter()
    params = initial_parameters(sizes, init, seed, draw)
    x_train, x_test, width = splits["x_train"], splits["x_test"], 0
    if span:
        params, (x_train, x_test) = in_span(params, x_train, [x_train, x_test])
        width = params[0][0].shape[1]
    for _ in range(iterations):
        gradient_descent_step(params, x_train, splits["y_train"], lr, width)
    with torch.no_grad():
        final_cost = cost(logits(params, x_train, width), splits["y_train"]).item()
    return {
        "train_accuracy": accuracy(params, x_train, splits["y_train"], width),
        "test_accuracy": accuracy(params, x_test, splits["y_test"], width),
        "final_cost": final_cost,
        "wall_s": time.perf_counter() - start,
    }


def accuracy_table(splits: dict[str, torch.Tensor], settings: dict) -> pd.DataFrame:
    """Tidy: one row per (network, draw, seed), networks in config order, the torch seeds then the course's own draw
    (where `course_draw_seed` is set), with each split's cat share and the course's reported test accuracy beside
    the measured ones."""
    rows = []
    for network, spec in settings["networks"].items():
        sizes = spec["sizes"]
        if sizes[0] != splits["x_train"].shape[1] or sizes[-1] != 1:
            raise ValueError(
                f"course.networks.{network}.sizes: {sizes} must run from the input's "
                f"{splits['x_train'].shape[1]} features to 1 output unit"
            )
        draws = [("torch", seed) for seed in settings["seeds"]]
        if settings["course_draw_seed"] is not None:
            draws.append(("numpy", settings["course_draw_seed"]))
        for draw, seed in draws:
            trained = train_network(splits, sizes, spec["init"], settings["lr"], settings["iterations"], seed, draw)
            rows.append(
                {
                    "network": network,
                    "sizes": network_name(sizes),
                    "draw": draw,
                    "seed": seed,
                    "iterations": settings["iterations"],
                    **trained,
                    "n_train": len(splits["y_train"]),
                    "n_test": len(splits["y_test"]),
                    "train_cat_share": splits["y_train"].mean().item(),
                    "test_cat_share": splits["y_test"].mean().item(),
                    "reported_test_accuracy": spec["reported_test_accuracy"],
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def run(files: dict[str, str], out_path: str, settings: dict, threads: int = 1) -> pd.DataFrame:
    """files: train, test (the verified official .h5 files)."""
    configure_process(threads)
    table = accuracy_table(load_official(files["train"], files["test"]), settings)
    atomic.write_parquet(table, out_path)
    return table
