"""covbench.tools.split_draws: fresh split draws train as the grid's seeds do, and the J-seed median's spread."""

import json

import numpy as np
import pytest
import yaml

from covbench import atomic
from covbench.config import hyperparameters, method_spec, validate
from covbench.data import datasets as data
from covbench.data import splits as resplit
from covbench.tools import split_draws
from covbench.training import tune
from covbench.training.train import train
from tests.conftest import merge


def test_median_spread_counts_above_beyond_float32_rounding():
    at_constant = np.full(20, np.float32(0.6))  # float32(0.6) > 0.6: not "above" the constant
    assert split_draws.median_spread(at_constant, 10, 0.6)["share_above_constant"] == 0.0
    two_values = np.array([0.58] * 10 + [0.64] * 10)
    spread = split_draws.median_spread(two_values, 1, 0.6, resamples=10_000)
    assert spread["share_above_constant"] == pytest.approx(0.5, abs=0.02)
    assert (spread["median_q05"], spread["median_q95"]) == (0.58, 0.64)


def test_mean_percentile():
    accuracies = np.array([0.5, 0.7])
    assert split_draws.mean_percentile(accuracies, np.array([0.5, 0.5])) == 0.0
    assert split_draws.mean_percentile(accuracies, np.array([0.7, 0.7])) == pytest.approx(0.75, abs=0.02)


def test_draws_train_as_the_grid_seeds_do(tmp_path, config, one_thread, mirror):
    """On the real cat/not-cat files: a fresh draw's test accuracy is the one the training loop gives that seed on
    its own split at the tuned learning rate, and the tool writes its table."""
    override = {"grid": {"seeds": [0, 1]}, "datasets": {"catvnoncat": {"epochs": 2}}}
    config_path = tmp_path / "small.yaml"
    config_path.write_text(yaml.safe_dump(override))
    results = tmp_path / "results"
    data.prepare("catvnoncat", mirror, results / "data" / "catvnoncat.pt")
    chosen = {"lr": 5e-4}
    atomic.write_json(results / "tune" / "catvnoncat" / "relu_he" / "depth2.json", {"chosen": chosen})
    for seed, accuracy in ((0, 0.62), (1, 0.58)):
        atomic.write_json(
            results / "runs" / "catvnoncat" / "relu_he" / "depth2" / f"seed{seed}" / "run.json",
            {"test_accuracy": accuracy},
        )

    split_draws.main(
        [
            "--configfile",
            str(config_path),
            "--results",
            str(results),
            "--methods",
            "relu_he",
            "--depths",
            "2",
            "--draws",
            "3",
            "--threads",
            "1",
        ]
    )

    [row] = json.loads((results / "split_draws" / "catvnoncat.json").read_text())
    assert row["grid_median"] == pytest.approx(0.6) and (row["draws"], row["constant_test_rate"]) == (3, 0.6)
    valid = validate(merge(config, override))
    spec, hp = tune.apply_choice(
        method_spec(valid, "relu_he", "catvnoncat"), hyperparameters(valid, "catvnoncat"), chosen
    )
    pool = resplit.pooled(data.load_splits(str(results / "data" / "catvnoncat.pt")))
    alone = train(resplit.seed_split(pool, split_draws.FIRST_DRAW + 2, 0)[0], spec, hp, 2, [split_draws.FIRST_DRAW + 2])
    assert row["test_accuracies"][2] == pytest.approx(float(alone.test_accuracy[0]), abs=1e-4)
    assert "| relu_he | 2 |" in (results / "split_draws" / "catvnoncat.md").read_text()
