"""The benchmark's reference loops do the same training as ours, so its ratios compare like with like."""
import pytest

from covbench.bench import bare_train, flops_per_example
from covbench.train import train


def test_bare_loop_reaches_our_accuracies(spec, hp, splits):
    """Same initial weights and data order (the DataLoader loop draws its own order from the generator)."""
    hp.update(epochs=3, lr=0.5)
    ours = train(splits, spec, hp, depth=2, seeds=[0]).epochs.iloc[-1]
    val_accuracy, test_accuracy = bare_train(splits, spec, hp, depth=2, use_dataloader=False)
    assert ours.val_accuracy > 0.5  # it learned something, so equal accuracies mean equal training
    assert (val_accuracy, test_accuracy) == pytest.approx((ours.val_accuracy, ours.test_accuracy), abs=1e-6)


def test_flops_count_every_layer():
    assert flops_per_example(784, 100, 2, 10) == 6 * (784 * 100 + 100 * 100 + 100 * 10)
