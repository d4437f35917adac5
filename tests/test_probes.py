"""Linear probes read a label a layer carries linearly, and nothing from one it does not."""

import numpy as np
import torch

from covbench.models import build_mlp
from covbench.training.probes import hidden_activations, probe_frame, probe_indices, probe_scores

CLASSES = 10


def coded(n: int, seed: int, noise: float = 0.1):
    """(n, 30) features whose first 10 carry the label as a noisy one-hot code, the other 20 pure noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    code = torch.nn.functional.one_hot(y, CLASSES) + noise * torch.randn(n, CLASSES, generator=gen)
    return torch.cat([code, torch.randn(n, 20, generator=gen)], 1), y


def layers(x: torch.Tensor) -> list[torch.Tensor]:
    """Two 'models' x two 'layers' of the same features: [(M=2, n, width)] * 2."""
    return [torch.stack([x, x]), torch.stack([x, 2 * x + 1])]


def test_probe_reads_a_linear_code_and_not_shuffled_labels():
    (x_train, y_train), (x_val, y_val) = coded(400, 0), coded(400, 1)
    scores = probe_scores(layers(x_train), y_train, layers(x_val), y_val)
    assert scores.shape == (2, 2)
    assert (scores > 0.95).all()
    shuffled = y_train[torch.randperm(len(y_train), generator=torch.Generator().manual_seed(2))]
    chance = probe_scores(layers(x_train), shuffled, layers(x_val), y_val)
    assert (chance < 0.2).all()  # chance is 0.1; 400 validation examples: sd 0.015


def test_probe_is_deterministic():
    (x_train, y_train), (x_val, y_val) = coded(300, 0, noise=0.5), coded(300, 1, noise=0.5)
    first = probe_scores(layers(x_train), y_train, layers(x_val), y_val)
    again = probe_scores(layers(x_train.clone()), y_train.clone(), layers(x_val.clone()), y_val.clone())
    np.testing.assert_array_equal(first, again)
    assert 0.2 < first.min() < 0.95  # a probe that is neither trivial nor perfect, where nondeterminism would show


def test_non_finite_activations_give_nan_and_constant_features_do_not_crash():
    (x_train, y_train), (x_val, y_val) = coded(200, 0), coded(200, 1)
    train_acts, val_acts = layers(x_train), layers(x_val)
    train_acts[0][1, 5, 3] = float("inf")  # model 1, layer 1: diverged on the train subset
    val_acts[1][0, 7, 0] = float("nan")  # model 0, layer 2: on the validation subset
    train_acts[1][1, :, 10:15] = 3.0  # model 1, layer 2: five constant (noise) features
    scores = probe_scores(train_acts, y_train, val_acts, y_val)
    assert np.isnan(scores[1, 0]) and np.isnan(scores[0, 1])
    assert scores[0, 0] > 0.95 and scores[1, 1] > 0.9
    huge = probe_scores([1e30 * x_train[None]], y_train, [1e30 * x_val[None]], y_val)  # exploding, still finite
    assert huge[0, 0] > 0.95
    dead = [torch.zeros(1, 200, 30)]  # a layer of dead ReLUs: the probe predicts one class
    majority = probe_scores(dead, y_train, [torch.zeros(1, 200, 30)], y_val)[0, 0]
    assert np.isfinite(majority) and majority < 0.3


def test_probe_indices_are_fixed_and_seeded():
    index = probe_indices(1000, 100, seed=0)
    assert torch.equal(index, probe_indices(1000, 100, seed=0))
    assert not torch.equal(index, probe_indices(1000, 100, seed=1))
    assert len(index.unique()) == 100 and (index[1:] > index[:-1]).all() and 0 <= index.min() and index.max() < 1000
    assert torch.equal(probe_indices(41, 1000, seed=0), torch.arange(41))  # smaller than the subset: all of it


def test_probe_frame_is_tidy_and_marks_a_diverged_model(splits, spec):
    model = build_mlp(spec, splits["x_train"].shape[1], 8, 3, 3, seeds=[0, 1])
    acts = hidden_activations(model, splits["x_val"])
    assert [a.shape for a in acts] == [(2, 50, 8)] * 3 and not acts[0].requires_grad
    settings = {"train_size": 150, "val_size": 1000, "seed": 0}
    frame = probe_frame(model, splits, settings, epoch=0)
    assert list(frame.columns) == ["model", "epoch", "layer", "probe_accuracy", "n_train", "n_val"]
    assert frame[["model", "layer"]].values.tolist() == [[m, layer] for m in range(2) for layer in (1, 2, 3)]
    assert (frame.epoch == 0).all() and (frame.n_train == 150).all() and (frame.n_val == 50).all()
    assert frame.probe_accuracy.between(0, 1).all()
    model.weights[0][1] = float("nan")  # model 1 diverged
    frame = probe_frame(model, splits, settings, epoch=7)
    assert frame[frame.model == 1].probe_accuracy.isna().all()
    assert frame[frame.model == 0].probe_accuracy.notna().all() and (frame.epoch == 7).all()


def test_probing_a_subset_of_models_gives_their_rows_of_the_full_probe(splits, spec):
    """config probes.seeds: the probed models' rows, under their batch indices, equal those of probing them all."""
    model = build_mlp(spec, splits["x_train"].shape[1], 8, 2, 3, seeds=[0, 1, 2])
    settings = {"train_size": 150, "val_size": 1000, "seed": 0}
    every = probe_frame(model, splits, settings, epoch=0)
    subset = probe_frame(model, splits, settings, epoch=0, models=[0, 2])
    assert subset.model.tolist() == [0, 0, 2, 2]
    expected = every[every.model.isin([0, 2])].reset_index(drop=True)
    assert subset.equals(expected)
