"""Covariance's best shot, its training (docs/design.md#the-best-shot, rule `lambda_sweep`): every lambda of the
config's grid, trained for one covariance variant at one (dataset, depth).

Split from the former flat sweep.py so training imports nothing above it: the selection and verdicts are in
covbench.analysis.sweep, the paper's sentences in covbench.report.macros.best_shot. The sweep's table columns live
here, with the rule that writes them.

For a covariance variant at one (dataset, depth), every lambda of the config's log grid (0 included) trains with
the learning rate tuned for the variant's base (the same network without the force), for every seed, as ONE
batched model: lambda = 0 is the base method itself, trained in the same batch.

    run(settings, 16, "baseline", [0, 0.01, 0.1, 1, 10, 100, 1000], "results/data/mnist.pt",
        "results/tune/mnist/baseline/depth16.json", "results/sweep/mnist/covariance/depth16.parquet")
"""

import numpy as np
import pandas as pd
import torch

from covbench import atomic
from covbench.config import ConfigError, base_method, covariance_methods, method_spec
from covbench.data import datasets as data
from covbench.data import splits as resplit
from covbench.training.process import configure_process
from covbench.training.settings import JobSettings
from covbench.training.train import train
from covbench.training.tune import apply_choice
from covbench.training.vanishing import vanishing_index

CELL_KEYS = ["dataset", "variant", "depth"]
COLUMNS = CELL_KEYS[:2] + [
    "base",
    "depth",
    "lr",
    "cov_lambda",
    "seed",
    "diverged",
    "best_val_loss",
    "best_val_accuracy",
    "test_accuracy",
    "vanishing_index_init",
    "vanishing_index_epoch1",
    "test_train_ratio",  # n_test / n_train of the seeds' own splits (0: one split shared): the corrected test's
]


# --- configuration ------------------------------------------------------------------------------------


def bases(config: dict) -> dict[str, str]:
    """Each swept variant -> its base method (the same composition with aux none), both grid methods."""
    specs = {m: method_spec(config, m) for m in config["grid"]["methods"]}
    return {variant: base_method(variant, specs) for variant in config["lambda_sweep"]["variants"]}


def validate(config: dict) -> dict:
    """The `lambda_sweep` block against the grid, after covbench.config.validate; one line naming the key."""
    sweep, grid = config["lambda_sweep"], config["grid"]
    specs = {m: method_spec(config, m) for m in grid["methods"]}
    for variant in sweep["variants"]:
        where = "config error at 'lambda_sweep.variants'"
        if variant not in specs:
            raise ConfigError(f"{where}: '{variant}' is not a method of the grid; grid.methods: {', '.join(specs)}")
        if variant not in covariance_methods(specs):
            raise ConfigError(f"{where}: '{variant}' is not a covariance method (its aux is '{specs[variant]['aux']}')")
        if base_method(variant, specs) is None:
            raise ConfigError(
                f"{where}: the base of '{variant}' (the same composition with aux none) is not in the grid"
            )
    for depth in sweep["depths"]:
        if depth not in grid["depths"]:
            raise ConfigError(
                f"config error at 'lambda_sweep.depths': {depth} is not a grid depth; grid.depths: "
                f"{', '.join(map(str, grid['depths']))}"
            )
    if 0 not in sweep["lambdas"]:
        raise ConfigError("config error at 'lambda_sweep.lambdas': the grid must include 0 (the base method itself)")
    return config


# --- one cell: train and measure -----------------------------------------------------------------------


def train_cell(
    splits: dict[str, torch.Tensor],
    spec: dict,
    hp: dict,
    depth: int,
    lambdas: list[float],
    seeds: list[int],
    device: str = "cpu",
) -> pd.DataFrame:
    """Every lambda x seed as one batched model; one row per model with its outcomes and vanishing indices.

    `spec`, `hp`: the variant's composition and the base's tuned hyperparameters (lr included); each model is
    read at its best checkpoint (docs/design.md#best-checkpoint), as selection and the grid's runs are.
    """
    lambdas = sorted(float(v) for v in lambdas)
    models = pd.DataFrame([(v, s) for v in lambdas for s in seeds], columns=["cov_lambda", "seed"])
    spec = {**spec, "cov_lambda": models.cov_lambda.tolist()}
    result = train(splits, spec, hp, depth, models.seed.tolist(), device=device)
    at_best = result.epochs.set_index(["model", "epoch"]).val_accuracy  # each model at its best checkpoint
    index = vanishing_index(result.layer_stats.assign(dataset="", method=result.layer_stats.model, depth=depth))
    index = index.set_index("method")[["vanishing_index_init", "vanishing_index_epoch1"]]
    return models.assign(
        diverged=result.epochs.groupby("model").diverged.any().sort_index().to_numpy(),
        best_val_loss=result.best_val_loss.astype(float),
        best_val_accuracy=[float(at_best.get((m, int(e)), np.nan)) for m, e in enumerate(result.best_epoch)],
        test_accuracy=np.asarray(result.test_accuracy, dtype=float),
        **{column: index[column].reindex(models.index).to_numpy(float) for column in index},
    )


def run(
    settings: JobSettings, depth: int, base: str, lambdas: list[float], data_path: str, tune_path: str, out_path: str
) -> None:
    """One (dataset, variant, depth) of the variant's job settings (its seeds: the sweep's), with the base's tuning
    choice from tune_path -> a tidy parquet. With per-seed splits (covbench.data.splits) every lambda of a seed
    trains on that seed's split, as in the grid."""
    configure_process(settings.threads)
    splits = data.load_splits(data_path)
    seeds = list(settings.seeds)
    ratio = 0.0
    if settings.split != "official":
        seed_splits, records = resplit.drawn_splits(splits, settings.split, settings.split_seed, seeds)
        splits = {key: tensor.repeat(len(lambdas), *[1] * (tensor.dim() - 1)) for key, tensor in seed_splits.items()}
        ratio = records[0]["n_test"] / records[0]["n_train"]
    chosen = atomic.read_json(tune_path, required=("chosen",))["chosen"]
    spec, hp = apply_choice(settings.spec, settings.hp, chosen)
    table = train_cell(splits, spec, hp, depth, lambdas, seeds, settings.device)
    table = table.assign(
        dataset=settings.dataset, variant=settings.method, base=base, depth=depth, lr=hp["lr"], test_train_ratio=ratio
    )[COLUMNS]
    atomic.write_parquet(table, out_path)
