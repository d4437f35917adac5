"""scikit-learn's MLPClassifier as a benchmark method: the worked example of a method provided by a rule
(workflow/rules/methods/sklearn_mlp.smk; docs/methods.md "Methods as rules").

A ReLU network trained with Adam, `hidden_layer_sizes = (width,) * depth`, one model per seed (its
`random_state`: sklearn's Glorot-uniform initialization). It sees the batches of the generic loop: the same
splits, the same data order per seed (covbench.training.batches.data_generators), one `partial_fit` call per minibatch, so
one Adam step per call and the per-layer statistics logged at the same steps (step 0 and every `log_every`).
Each seed trains on its own split where the dataset draws one per seed, the same split the generic rule gives that
seed (covbench.data.splits.seed_data, the one call a rule makes for it), and its run.json names it. It writes the run
files of the contract (covbench.training.contract): every epoch's training loss (the batches' mean
cross-entropy before their step) and validation loss and accuracy, the test accuracy once after the last epoch,
and per hidden layer the two statistics its weights give, `weight_drift` and `update_ratio`; the others
(gradients, activations, forces) and the training accuracy are NaN. It takes no linear probes and is not tuned:
its learning rate is the config's (`methods.sklearn_mlp.options.learning_rate_init`).

    settings = JobSettings.from_config(config, "mnist", "sklearn_mlp")
    run(settings, {"learning_rate_init": 0.001}, "results/data/mnist.pt",
        [["results/runs/mnist/sklearn_mlp/depth2/seed0", "results/runs/mnist/sklearn_mlp/depth2/seed1"], ...])
"""

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

from covbench import atomic
from covbench.data.datasets import load_splits
from covbench.data.splits import seed_data
from covbench.training.batches import data_generators, standardize
from covbench.training.collapse import class_prior_entropy, collapsed
from covbench.training.process import versions
from covbench.training.settings import JobSettings
from covbench.training.stats import STAT_NAMES

DEFAULT_OPTIONS = {"learning_rate_init": 0.001}  # sklearn's default Adam step size


def initial_parameters(
    seed: int, layer_units: list[int], dtype=np.float32
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(weights, biases) MLPClassifier(activation="relu", random_state=seed) starts from: Glorot uniform, bound
    sqrt(6 / (fan_in + fan_out)), weight then bias of each layer drawn from one RandomState(seed). partial_fit never
    shows them (its first call initializes and steps); tests/test_methods_as_rules.py checks this copy against it."""
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
        biases.append(rng.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
    return weights, biases


def classifier(width: int, depth: int, batch_size: int, seed: int, options: dict) -> MLPClassifier:
    settings = {"alpha": 0.0, **DEFAULT_OPTIONS, **options}  # no L2 unless asked: train.weight_decay is 0 too
    return MLPClassifier(
        hidden_layer_sizes=(width,) * depth,
        activation="relu",
        solver="adam",
        batch_size=batch_size,
        shuffle=False,
        random_state=seed,
        **settings,
    )


def _relative_change(new: list[np.ndarray], old: list[np.ndarray]) -> np.ndarray:
    """||W_new - W_old|| / ||W_old|| per hidden layer (the output layer's matrix is not a hidden layer's)."""
    return np.array([np.linalg.norm(n - o) / np.linalg.norm(o) for n, o in zip(new[:-1], old[:-1])])


def evaluate(model: MLPClassifier, x: np.ndarray, y: np.ndarray, classes: int) -> tuple[float, float]:
    """(mean cross-entropy, fraction correct)."""
    probabilities = model.predict_proba(x)
    return (float(log_loss(y, probabilities, labels=np.arange(classes))), float((probabilities.argmax(1) == y).mean()))


def class_count(splits: dict[str, np.ndarray]) -> int:
    """Classes of the problem: one more than the largest label of any split."""
    return int(max(splits[k].max() for k in ("y_train", "y_val", "y_test"))) + 1


def copy_parameters(model: MLPClassifier) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A copy of the model's (weights, biases)."""
    return [w.copy() for w in model.coefs_], [b.copy() for b in model.intercepts_]


def adam_step(model: MLPClassifier, x: np.ndarray, y: np.ndarray, classes: int) -> bool:
    """One `partial_fit` call (one Adam step) on one minibatch; True when sklearn refused the non-finite weights
    it reached."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "Got `batch_size`", UserWarning)  # an epoch's last, smaller batch
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a divergence, recorded by the caller
        try:
            model.partial_fit(x, y, classes=np.arange(classes))
        except ValueError as error:  # sklearn refuses non-finite weights after the step
            if "non-finite" not in str(error):
                raise
            return True
    return False


def layer_stat_rows(
    step: int, epoch: int, before: list[np.ndarray], after: list[np.ndarray], initial: list[np.ndarray]
) -> list[dict]:
    """layer_stats rows of one logged step, one per hidden layer: `weight_drift` (from `initial` to `before`, the
    weights the step started from) and `update_ratio` (the step's change); every other statistic NaN."""
    drift, update = _relative_change(before, initial), _relative_change(after, before)
    return [
        {
            "step": step,
            "epoch": epoch,
            "layer": layer,
            **{name: np.nan for name in STAT_NAMES},
            "weight_drift": drift[layer - 1],
            "update_ratio": update[layer - 1],
        }
        for layer in range(1, len(drift) + 1)
    ]


def train_epoch(
    model: MLPClassifier,
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    epoch: int,
    hp: dict,
    classes: int,
    initial: list[np.ndarray],
) -> tuple[float, bool, list[dict]]:
    """One pass over the training split in `order`, one Adam step per minibatch: (the batches' summed loss before
    their step, inf from a non-finite one; whether the epoch diverged, where it stops; its layer_stats rows)."""
    batch, log_every = hp["batch_size"], hp["log_every"]
    steps_per_epoch = math.ceil(len(y) / batch)
    loss_sum, rows = 0.0, []
    for i in range(steps_per_epoch):
        step = epoch * steps_per_epoch + i
        index = order[i * batch : (i + 1) * batch]
        before = initial if step == 0 else [w.copy() for w in model.coefs_] if step % log_every == 0 else None
        refused = adam_step(model, x[index], y[index], classes)
        loss_sum += math.inf if refused else model.loss_ * len(index)
        if refused or not np.isfinite(model.loss_):
            return loss_sum, True, rows
        if before is not None:
            rows += layer_stat_rows(step, epoch, before, model.coefs_, initial)
    return loss_sum, False, rows


def train_epochs(
    model: MLPClassifier,
    splits: dict[str, np.ndarray],
    hp: dict,
    classes: int,
    initial: tuple[list[np.ndarray], list[np.ndarray]],
    generator: torch.Generator,
    started: float,
) -> tuple[list[dict], list[dict], dict, bool]:
    """Every epoch, validated after each: (epochs rows, layer_stats rows, the best checkpoint {epoch, val_loss,
    parameters}, whether the run diverged). A model whose step goes non-finite is put back to the epoch's start,
    its last finite state, evaluated there, and stops (as train.py)."""
    x_train, y_train = splits["x_train"], splits["y_train"]
    epoch_rows, stat_rows, diverged = [], [], False
    best = {"epoch": 0, "val_loss": math.inf, "parameters": initial}
    for epoch in range(hp["epochs"]):
        order = torch.randperm(len(y_train), generator=generator).numpy()
        snapshot = initial if epoch == 0 else copy_parameters(model)
        loss_sum, diverged, rows = train_epoch(model, x_train, y_train, order, epoch, hp, classes, initial[0])
        stat_rows += rows
        if diverged:
            model.coefs_, model.intercepts_ = snapshot
        val_loss, val_accuracy = evaluate(model, splits["x_val"], splits["y_val"], classes)
        if not diverged and val_loss < best["val_loss"]:
            best = {"epoch": epoch + 1, "val_loss": val_loss, "parameters": copy_parameters(model)}
        epoch_rows.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / len(y_train),
                "train_accuracy": math.nan,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "wall_s": time.perf_counter() - started,
                "diverged": diverged,
            }
        )
        if diverged:
            break
    return epoch_rows, stat_rows, best, diverged


def train_seed(
    splits: dict[str, np.ndarray], depth: int, hp: dict, options: dict, seed: int, generator: torch.Generator
) -> dict:
    """One model: epochs rows, layer_stats rows, the test accuracy of its best checkpoint (the epoch of lowest
    validation loss, docs/design.md#best-checkpoint) and of its last epoch, wall time, whether it diverged."""
    x_train, y_train = splits["x_train"], splits["y_train"]
    classes = class_count(splits)
    model = classifier(hp["width"], depth, hp["batch_size"], seed, options)
    # sklearn's output layer: one logistic unit for two classes, a softmax over them otherwise
    initial = initial_parameters(
        seed, [x_train.shape[1], *[hp["width"]] * depth, classes if classes > 2 else 1], x_train.dtype
    )
    started = time.perf_counter()
    epoch_rows, stat_rows, best, diverged = train_epochs(model, splits, hp, classes, initial, generator, started)
    last_test_accuracy = evaluate(model, splits["x_test"], splits["y_test"], classes)[1]
    model.coefs_, model.intercepts_ = best["parameters"]
    test_accuracy = evaluate(model, splits["x_test"], splits["y_test"], classes)[1]
    return {
        "epochs": pd.DataFrame(epoch_rows),
        "layer_stats": pd.DataFrame(stat_rows),
        "test_accuracy": test_accuracy,
        "last_test_accuracy": last_test_accuracy,
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "wall_s": time.perf_counter() - started,
        "diverged": diverged,
        "estimator": {**model.get_params(), "hidden_layer_sizes": list(model.hidden_layer_sizes)},
        "class_prior_entropy": class_prior_entropy(torch.from_numpy(y_train)),
    }


def write_run(out_dir: str, ids: dict, result: dict, hp: dict, split_fields: dict) -> None:
    """The four run files of the contract (covbench.training.contract) for one seed; `split_fields`: the keys that
    name its split (covbench.data.splits.seed_data)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = result["layer_stats"].astype({name: "float32" for name in STAT_NAMES})
    probes = pd.DataFrame(
        {
            "epoch": pd.Series(dtype="int64"),
            "layer": pd.Series(dtype="int64"),
            "probe_accuracy": pd.Series(dtype="float64"),
        }
    )
    for name, frame in (("epochs", result["epochs"]), ("layer_stats", stats), ("probes", probes)):
        frame = frame.copy()
        for position, (column, value) in enumerate(ids.items()):
            frame.insert(
                position, column, pd.Series([value] * len(frame), dtype="int64" if isinstance(value, int) else "object")
            )
        atomic.write_parquet(frame, out / f"{name}.parquet")
    last = result["epochs"].iloc[-1]
    record = {
        **ids,
        "method_spec": {
            "rule": "sklearn_mlp",
            "estimator": "sklearn.neural_network.MLPClassifier",
            **result["estimator"],
        },
        "hyperparameters": hp,
        "device": "cpu",
        "threads": 1,
        "wall_s": result["wall_s"],
        "diverged": result["diverged"],
        "test_accuracy": result["test_accuracy"],
        "last_test_accuracy": result["last_test_accuracy"],
        "best_epoch": result["best_epoch"],
        "best_val_loss": result["best_val_loss"],
        "best_val_accuracy": float(
            result["epochs"].set_index("epoch").val_accuracy.get(result["best_epoch"], math.nan)
        ),
        "final_val_accuracy": float(last.val_accuracy),
        "final_val_loss": float(last.val_loss),
        "final_train_loss": float(last.train_loss),
        "class_prior_entropy": result["class_prior_entropy"],
        "collapsed": bool(collapsed(last.train_loss, result["class_prior_entropy"])),
        **split_fields,
        "versions": {**versions(), "scikit-learn": sklearn.__version__},
    }
    atomic.write_json(out / "run.json", record)  # last: a run.json means the run's files are complete


def run(settings: JobSettings, options: dict, data_path: str, out_dirs: list[list[str]]) -> None:
    """Every depth and seed of one (dataset, method) job; out_dirs[i][j] is the run folder of settings.depths[i],
    settings.seeds[j]. `options`: the method's config entry's (MLPClassifier's arguments)."""
    prepared = load_splits(data_path)
    seeds = list(settings.seeds)
    for depth, dirs in zip(settings.depths, out_dirs):
        generators = data_generators(seeds)  # seed s's data order, as the generic loop draws it
        for seed, generator, out_dir in zip(seeds, generators, dirs):
            splits, split_fields = seed_data(prepared, settings.split, settings.split_seed, seed)
            if settings.spec["standardize_inputs"]:  # the dataset standardizes its inputs for every method
                splits = standardize(splits)
            splits = {name: tensor.numpy() for name, tensor in splits.items()}
            result = train_seed(splits, depth, settings.hp, options, seed, generator)
            ids = {"dataset": settings.dataset, "method": settings.method, "depth": depth, "seed": seed}
            write_run(out_dir, ids, result, settings.hp, split_fields)
