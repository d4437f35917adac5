"""Subnormal floats flushed to zero (covbench.training.process.configure_process): a training process sets it and records it in
run.json; on the cells where subnormals arise (sigmoid + N(0,1) on cat/not-cat's 12,288 standardized pixels) the
per-layer statistics and the chosen trial are those of gradual underflow, to float tolerance."""

import json

import numpy as np
import pytest
import torch

from covbench import subnormals
from covbench.data import datasets as data
from covbench.training import tune
from covbench.training.runs import train_seeds
from covbench.training.settings import JobSettings
from covbench.training.train import train

TUNE = {
    "trials": 3,
    "seed": 1000,
    "eta": 2,
    "lr": {"sgd": [0.001, 1.0], "adam": [0.0001, 0.1]},
    "cov_lambda": [0.01, 1000.0],
    "aux_weight": [0.03, 3.0],
    "rung_epochs": [3],
}


@pytest.fixture
def gradual_underflow():
    """Each test starts and ends with IEEE gradual underflow, whatever ran before it in this process."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_a_training_process_flushes_subnormals_and_records_it(spec, hp, splits, tmp_path, gradual_underflow):
    assert not subnormals.flushed() and (torch.full((1,), 1e-39) * 1.0).item() > 0
    train_seeds(JobSettings("toy", "baseline", spec, hp), 2, splits, [str(tmp_path / "seed0")])
    assert subnormals.flushed() and (torch.full((1,), 1e-39) * 1.0).item() == 0.0  # below 1.2e-38: 0
    record = json.loads((tmp_path / "seed0" / "run.json").read_text())
    assert record["process"] == {
        "threads": 1,
        "flush_denormal": True,
        "malloc_settings": record["process"]["malloc_settings"],
    }


def test_kept_gives_gradual_underflow_inside_and_restores_the_mode(gradual_underflow):
    torch.set_flush_denormal(True)
    with subnormals.kept():
        assert not subnormals.flushed()
    assert subnormals.flushed()


def test_the_norm_of_a_vanishing_gradient_is_not_flushed_to_zero(gradual_underflow):
    """1e-21 per entry is a normal float32, its square is not: summed in float32 the norm would read 0."""
    torch.set_flush_denormal(True)
    grad = torch.full((2, 10, 100), 1e-21)
    assert grad.flatten(1).norm(dim=1).tolist() == [0.0, 0.0]
    assert subnormals.norm_of(grad).tolist() == pytest.approx([1e-21 * 1000**0.5] * 2, rel=1e-6)
    assert subnormals.std_of(grad * torch.arange(2.0).view(2, 1, 1)).tolist() == [0.0, 0.0]


def cat_splits(tmp_path, mirror) -> dict[str, torch.Tensor]:
    return data.load_splits(data.prepare("catvnoncat", mirror, tmp_path / "cat.pt", train_size=64, val_size=41))


@pytest.mark.parametrize("depth", [4, 8])
def test_flushing_leaves_the_statistics_and_the_choice_as_they_were(
    spec, hp, tmp_path, gradual_underflow, depth, mirror
):
    """The cat/not-cat cells of the sigmoid + N(0,1) family, where a quarter of the grid's time went to subnormals:
    the same trial wins with the same validation loss, and every per-layer statistic of the chosen net's training
    agrees, with and without flushing."""
    splits = cat_splits(tmp_path, mirror)
    spec.update(standardize_inputs=True)
    hp.update(width=100, batch_size=32, log_every=1, epochs=3)
    outcomes = []
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        chosen = tune.select(splits, spec, hp, depth, TUNE)
        run = train(splits, spec, {**hp, "lr": chosen["chosen"]["lr"]}, depth, [0, 1])
        outcomes.append((chosen, run))
    (plain, plain_run), (flushed, flushed_run) = outcomes
    assert flushed["chosen"] == plain["chosen"]
    assert flushed["val_loss"] == pytest.approx(plain["val_loss"], rel=1e-5)
    stats = [
        column for column in plain_run.layer_stats.columns if column not in ("model", "seed", "step", "epoch", "layer")
    ]
    a, b = plain_run.layer_stats[stats].to_numpy(float), flushed_run.layer_stats[stats].to_numpy(float)
    assert np.isnan(a).tolist() == np.isnan(b).tolist()
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-30, equal_nan=True)
    assert np.nanmin(np.abs(a)[a != 0]) > 1e-30  # what the tolerance allows is below every statistic logged
