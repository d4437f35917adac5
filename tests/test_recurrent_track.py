"""The recurrent track (docs/design.md#the-recurrent-track) through the shared machinery: noise-padded sequences, the
training loop with time steps for layers, the force in time, and the config that declares it."""

import numpy as np
import pytest
import torch
from conftest import force_loss_and_plain_grads
from test_covariance import covariance_loss

from covbench.config import ConfigError, method_spec, validate
from covbench.data import sequences
from covbench.models import build_rnn
from covbench.models.rnn import LOGGED_STEPS, logged_steps
from covbench.training.train import train

RNN_SPEC = {
    "cell": "tanh",
    "recurrent_init": "default",
    "forget_bias": 1.0,
    "norm": "none",
    "residual": "none",
    "grad_clip": None,
    "aux": "none",
    "optimizer": "sgd",
    "standardize_inputs": False,
}


@pytest.fixture
def images():
    """Flat 28 x 28 'images' of 3 classes (as MNIST splits are stored): a class brightens its own block of columns
    in the last six rows, so a small network remembers it over a few noise steps from 160 examples."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (240,), generator=gen)
    x = torch.rand(240, 28, 28, generator=gen) * 0.2
    for k in range(3):
        x[labels == k, 22:, 9 * k : 9 * k + 9] += 0.8
    x = x.view(240, -1)
    return {
        "x_train": x[:160],
        "y_train": labels[:160],
        "x_val": x[160:200],
        "y_val": labels[160:200],
        "x_test": x[200:],
        "y_test": labels[200:],
    }


def test_padded_rows_read_the_image_then_noise_fixed_per_example(images):
    padded = sequences.padded_rows(images, 40, seed=0)
    assert padded["x_train"].shape == (160, 40, 28) and padded["y_train"] is images["y_train"]
    mean, std = images["x_train"].mean(), images["x_train"].std()
    torch.testing.assert_close(padded["x_val"][:, :28], ((images["x_val"] - mean) / std).view(-1, 28, 28))
    again = sequences.padded_rows(images, 40, seed=0)
    assert all(torch.equal(padded[k], again[k]) for k in padded)  # deterministic
    assert not torch.equal(padded["x_train"][:40, 28:], padded["x_val"][:, 28:])  # each split its own noise
    assert not torch.equal(padded["x_train"][:, 28:], sequences.padded_rows(images, 40, seed=1)["x_train"][:, 28:])
    noise = padded["x_train"][:, 28:]
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05
    with pytest.raises(ValueError, match="shorter than the 28 image rows"):
        sequences.padded_rows(images, 20, seed=0)


def test_the_training_loop_trains_a_recurrent_network_and_logs_time_steps(images, hp):
    padded = sequences.padded_rows(images, 36, seed=0)
    hp.update(width=16, epochs=8, lr=0.5, log_every=3)
    result = train(padded, dict(RNN_SPEC, cell="gru"), hp, depth=36, seeds=[0, 1])
    assert sorted(result.layer_stats.layer.unique()) == logged_steps(36, LOGGED_STEPS)
    first = result.epochs[result.epochs.epoch == 1].train_loss.to_numpy()
    last = result.epochs[result.epochs.epoch == 8].train_loss.to_numpy()
    assert (last < first).all() and (result.test_accuracy > 0.5).all()  # chance is 1/3
    stats = result.layer_stats
    assert stats.hidden_grad_norm.gt(0).all() and stats.recurrent_weight_grad_norm.gt(0).all()
    assert stats[["bias_grad_norm", "weight_grad_norm", "grad_rms"]].isna().all().all()  # an MLP's per-layer weights
    one_step = stats[(stats.step == 0) & (stats.seed == 0)]
    assert one_step.recurrent_weight_grad_norm.nunique() == 1  # one recurrent matrix, the same on every row


def test_force_in_time_equals_autograd_of_its_loss_summed_over_steps():
    """docs/design.md#the-covariance-force and docs/design.md#the-recurrent-track: with every h_t a layer, the forces
    seeded into backward give the gradient of the loss plus the covariance loss summed over the time steps."""
    spec = dict(RNN_SPEC, aux="covariance", cov_lambda=2.0)
    gen = torch.Generator().manual_seed(3)
    x, labels = torch.randn(1, 48, 7, 5, generator=gen), torch.randint(0, 3, (1, 48), generator=gen)

    with_force, with_loss, plain = force_loss_and_plain_grads(
        lambda: build_rnn(spec, 5, 8, 3, seeds=[0]),
        x,
        labels,
        spec,
        lambda states, correct: covariance_loss(states, labels[0], correct, 3, 2.0),
    )
    assert max((a - b).abs().max().item() for a, b in zip(with_force, plain)) > 1e-5  # the force is not trivial
    for a, b in zip(with_force, with_loss):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_config_keeps_the_two_kinds_of_method_apart(config):
    validate(config)
    assert method_spec(config, "lstm")["forget_bias"] == 1.0 and "activation" not in method_spec(config, "lstm")
    swapped = {**config, "grid": {**config["grid"], "methods": [*config["grid"]["methods"], "lstm"]}}
    with pytest.raises(ConfigError, match="grid.methods.*'lstm' a method with a cell belongs in recurrent.methods"):
        validate(swapped)
    mixed = {**config, "methods": {**config["methods"], "odd": {"cell": "tanh", "activation": "relu"}}}
    with pytest.raises(ConfigError, match="methods.odd"):
        validate(mixed)
    unknown = {**config, "methods": {**config["methods"], "odd": {"cell": "elman"}}}
    with pytest.raises(ConfigError, match="unknown cell 'elman'"):
        validate(unknown)


def test_temporal_vanishing_index_reads_the_time_steps():
    import pandas as pd

    from covbench.training.vanishing import vanishing_index

    rows = pd.DataFrame(
        {
            "dataset": "smnist",
            "method": "rnn_tanh",
            "depth": 30,
            "seed": 0,
            "step": 0,
            "epoch": 0,
            "layer": [1, 15, 30],
            "bias_grad_norm": np.nan,
            "hidden_grad_norm": [1e-6, 1e-3, 1.0],
        }
    )
    index = vanishing_index(rows)
    assert index.vanishing_index_init.iloc[0] == pytest.approx(-6.0)
