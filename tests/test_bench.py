"""The benchmark's reference loops do the same training as ours, so its ratios compare like with like."""

import pytest

from covbench.tools.bench import bare_train, check_targets, flops_per_example, paired_ratio
from covbench.training.train import train


def test_bare_loop_reaches_our_accuracies(spec, hp, splits):
    """Same initial weights and data order (the DataLoader loop draws its own order from the generator)."""
    hp.update(epochs=3, lr=0.5)
    ours = train(splits, spec, hp, depth=2, seeds=[0])
    val_accuracy, test_accuracy = bare_train(splits, spec, hp, depth=2, use_dataloader=False)
    assert ours.epochs.val_accuracy.iloc[-1] > 0.5  # it learned something, so equal accuracies mean equal training
    assert (val_accuracy, test_accuracy) == pytest.approx(
        (ours.epochs.val_accuracy.iloc[-1], ours.last_test_accuracy[0]), abs=1e-6
    )


def test_flops_count_every_layer():
    assert flops_per_example(784, 100, 2, 10) == 6 * (784 * 100 + 100 * 100 + 100 * 10)


def test_ratios_pair_the_repetitions():
    """A slow phase that hits both variants of one repetition cancels; a ratio of medians would not see it."""
    ours = {"models": 5, "wall_s_all": [1.0, 2.0, 1.0]}
    ref = {"models": 1, "wall_s_all": [0.5, 1.0, 0.6]}
    assert paired_ratio(ours, ref, "wall_s_all") == pytest.approx(2.5)  # median of 2.5, 2.5, 3.0
    rows = [
        {"depth": d, "variant": v, **(ours if v.startswith("ours") else ref), "cpu_s_all": [1.0] * 3}
        for d in (2, 8, 32)
        for v in (
            "bare",
            "dataloader",
            "ours_baseline",
            "ours_covariance",
            "ours_baseline_5seeds",
            "ours_covariance_5seeds",
        )
    ]
    targets = check_targets(rows)
    assert all(t["pass"] and t["ratio"] == pytest.approx(2.5) for t in targets)
