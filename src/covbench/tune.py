"""Fair hyperparameter selection: the same number of trials for every (dataset, method, depth).

Every method is tried at the same log-spaced learning rates; a method with an auxiliary hyperparameter
(covariance's lambda, deep supervision's weight) pairs each learning rate with one value of a log-spaced
grid in a seeded random order (a Latin hypercube on log scales), so it gets no extra trials. Trials
train together as one batched model on the train split with the tuning seed, for fewer epochs than the
final runs; the best final validation accuracy wins (diverged trials never do). Test data is never read.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from covbench.config import AUX_HYPERPARAMETER
from covbench.train import train


def log_grid(low: float, high: float, n: int) -> list[float]:
    if n == 1:
        return [math.sqrt(low * high)]
    return [float(v) for v in np.geomspace(low, high, n)]


def trial_grid(spec: dict, tune: dict) -> list[dict]:
    """The trials of one method: [{"lr": ..., <aux hyperparameter>: ...}] * tune["trials"]."""
    n = tune["trials"]
    trials = [{"lr": lr} for lr in log_grid(*tune["lr"], n)]
    name = AUX_HYPERPARAMETER.get(spec["aux"])
    if name and name not in spec:  # a value given in the method's config is fixed, not tuned
        values = log_grid(*tune[name], n)
        order = np.random.default_rng(tune["seed"]).permutation(n)
        for trial, i in zip(trials, order):
            trial[name] = values[i]
    return trials


def select(splits: dict[str, torch.Tensor], spec: dict, hp: dict, depth: int, tune: dict, device: str = "cpu") -> dict:
    trials = trial_grid(spec, tune)
    trial_spec = dict(spec)
    for name in trials[0]:
        if name != "lr":
            trial_spec[name] = [t[name] for t in trials]
    trial_hp = {**hp, "epochs": tune["epochs"], "lr": [t["lr"] for t in trials]}
    result = train(splits, trial_spec, trial_hp, depth, [tune["seed"]] * len(trials), device=device)
    last = result.epochs.groupby("model").tail(1).set_index("model").sort_index()
    diverged = result.epochs.groupby("model").diverged.any().sort_index()
    scores = last.val_accuracy.where(~diverged, -1.0)
    best = int(scores.idxmax())
    return {
        "chosen": trials[best], "val_accuracy": float(last.val_accuracy[best]), "budget": len(trials),
        "tune_epochs": tune["epochs"], "tune_seed": tune["seed"], "wall_s": result.wall_s,
        "trials": [{**t, "val_accuracy": float(last.val_accuracy[i]), "diverged": bool(diverged[i])}
                   for i, t in enumerate(trials)],
    }


def apply_choice(spec: dict, hp: dict, chosen: dict) -> tuple[dict, dict]:
    """The final runs' spec and hyperparameters with the tuned values (a record's "chosen") filled in."""
    hp = {**hp, "lr": chosen["lr"]}
    spec = {**spec, **{k: v for k, v in chosen.items() if k != "lr"}}
    return spec, hp


def summarize(chosen_paths: list[str], out_path: str) -> None:
    """results/tune/chosen.parquet: one row per (dataset, method, depth) with the chosen values."""
    rows = []
    for path in chosen_paths:
        record = json.loads(Path(path).read_text())
        rows.append({
            "dataset": record["dataset"], "method": record["method"], "depth": record["depth"],
            "lr": record["chosen"]["lr"], "cov_lambda": record["chosen"].get("cov_lambda", np.nan),
            "aux_weight": record["chosen"].get("aux_weight", np.nan), "val_accuracy": record["val_accuracy"],
            "trials": record["budget"], "tune_epochs": record["tune_epochs"],
        })
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(out_path, index=False)
