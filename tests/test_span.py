"""The first layer trained in its inputs' span (covbench.models.span) against the plain layer: the same training,
statistics included, to float tolerance."""

import numpy as np
import pytest
import torch

from covbench.data import splits as resplit
from covbench.models import span
from covbench.training.train import train

STATS = ["bias_grad_norm", "weight_grad_norm", "grad_rms", "weight_drift", "update_ratio", "act_mean", "act_std"]


@pytest.fixture
def wide():
    """Inputs much wider than the training set, with learnable structure, as cat/not-cat's."""
    gen = torch.Generator().manual_seed(0)
    n, dim = 90, 400
    labels = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(2, dim, generator=gen)[labels] + torch.randn(n, dim, generator=gen)
    return {"x_train": x[:50], "y_train": labels[:50], "x_val": x[50:70], "y_val": labels[50:70]} | {
        "x_test": x[70:],
        "y_test": labels[70:],
    }


def _both(monkeypatch, splits, spec, hp, depth, seeds):
    fast = train(splits, spec, hp, depth, seeds)
    with monkeypatch.context() as patch:
        patch.setattr(span, "eligible", lambda *args: False)
        plain = train(splits, spec, hp, depth, seeds)
    return fast, plain


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"activation": "relu", "init": "he", "grad_clip": 0.5},
        {"norm": "batchnorm"},
        {"activation": "relu", "init": "he", "residual": "preact", "norm": "batchnorm"},
        {"aux": "covariance", "cov_lambda": 3.0},
        {"aux": "deep_supervision", "aux_weight": 0.3},
    ],
)
def test_span_layer_trains_as_the_plain_layer(monkeypatch, wide, spec, hp, changes, one_thread):
    spec = {**spec, **changes, "optimizer": "sgd", "standardize_inputs": True}
    hp = {**hp, "epochs": 3, "log_every": 1, "lr": 0.05, "width": 8}
    per_seed = resplit.stacked([wide, {k: v.flip(0) for k, v in wide.items()}])
    for splits, seeds in ((wide, [0, 1]), (per_seed, [0, 1])):
        fast, plain = _both(monkeypatch, splits, spec, hp, 3, seeds)
        for column in ("train_loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(fast.epochs[column], plain.epochs[column], rtol=1e-4, atol=1e-5)
        for column in STATS:
            np.testing.assert_allclose(fast.layer_stats[column], plain.layer_stats[column], rtol=2e-3, atol=1e-6)
        np.testing.assert_array_equal(fast.best_epoch, plain.best_epoch)
        np.testing.assert_allclose(fast.test_accuracy, plain.test_accuracy)


def test_span_only_where_the_argument_holds(spec, hp):
    sgd = {**spec, "optimizer": "sgd"}
    assert span.eligible(sgd, hp, in_dim=12288, n_train=168, width=100)
    assert not span.eligible({**spec, "optimizer": "adam"}, hp, in_dim=12288, n_train=168, width=100)
    assert not span.eligible(sgd, {**hp, "weight_decay": 1e-4}, in_dim=12288, n_train=168, width=100)
    assert not span.eligible(sgd, hp, in_dim=784, n_train=8000, width=100)  # MNIST keeps the plain layer


def test_span_weight_norm_counts_the_frozen_part(wide, spec):
    from covbench.models import build

    model = build({**spec, "optimizer": "sgd"}, 400, 8, 2, 2, [0, 1])
    w0 = model.weights[0].clone()
    features = span.to_span(model, wide)
    np.testing.assert_allclose(span.weight_norm(model.weights[0], model.frozen_sq[0]), w0.flatten(1).norm(dim=1), 1e-5)
    # a training image lies in the span: its features outside it are (numerically) 0, and the layer gives x W_0
    assert features["x_train"][..., model.span_width :].abs().max() < 1e-4
    z = span.first_linear(features["x_val"], model.weights[0], model.biases[0], model.span_width)
    np.testing.assert_allclose(z, wide["x_val"] @ w0 + model.biases[0].unsqueeze(1), rtol=1e-4, atol=1e-4)
