"""The GPU path: `device: auto` resolves to what torch sees, and a run on CUDA gives the CPU run's numbers.

The CUDA comparisons are skipped, with the reason, where torch sees no GPU.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from covbench.training.process import resolve_device
from covbench.training.runs import train_seeds
from covbench.training.settings import JobSettings
from covbench.training.train import train

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device")
METHODS = {
    "baseline": {},
    "covariance": {"aux": "covariance", "cov_lambda": 1.0},
    "relu_he_batchnorm_clip_deep_supervision": {
        "activation": "relu",
        "init": "he",
        "norm": "batchnorm",
        "grad_clip": 0.5,
        "aux": "deep_supervision",
        "aux_weight": 0.3,
    },
}
# Float32 on both devices (no TF32: torch leaves it off for matmuls); summation order differs, so statistics
# agree to float rounding amplified over a few dozen steps, and an accuracy may differ by an example.
STAT_RTOL, STAT_ATOL = 1e-3, 1e-6


def test_auto_resolves_to_cuda_exactly_when_torch_sees_a_gpu():
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(CUDA, reason="a GPU is present: asking for cuda is not an error here")
def test_cuda_without_a_gpu_is_a_one_line_config_error():
    with pytest.raises(RuntimeError, match=r"^config error at 'train.device'"):
        resolve_device("cuda")


def test_run_records_the_resolved_device(spec, hp, splits, tmp_path):
    out_dirs = [str(tmp_path / f"seed{s}") for s in (0, 1)]
    train_seeds(JobSettings("toy", "baseline", spec, hp, seeds=(0, 1), device="auto"), 2, splits, out_dirs)
    for out in out_dirs:
        record = json.loads((Path(out) / "run.json").read_text())
        assert record["device"] == ("cuda" if CUDA else "cpu")


def test_tiny_training_on_cpu(spec, hp, splits):
    result = train(splits, spec, hp, 3, [0, 1], device="cpu")
    assert len(result.epochs) == 2 * hp["epochs"] and not result.epochs.diverged.any()
    no_force = [
        "force_grad_ratio",
        "force_grad_cosine",
        "active_groups",  # NaN without an aux force
        "input_weight_grad_norm",
        "recurrent_weight_grad_norm",
    ]  # and in an MLP
    statistics = result.layer_stats.drop(columns=["model", "seed", "step", "epoch", "layer"])
    assert statistics.drop(columns=no_force).notna().all().all() and statistics[no_force].isna().all().all()


def assert_runs_agree(reference, other, n_val, n_test):
    stats = reference.layer_stats.columns.drop(["model", "seed", "step", "epoch", "layer"])
    pd.testing.assert_frame_equal(
        reference.layer_stats[stats], other.layer_stats[stats], check_exact=False, rtol=STAT_RTOL, atol=STAT_ATOL
    )
    pd.testing.assert_series_equal(
        reference.epochs.train_loss, other.epochs.train_loss, check_exact=False, rtol=STAT_RTOL
    )
    for column, n in (("train_accuracy", None), ("val_accuracy", n_val)):
        tolerance = 1.5 / n if n else 0.02
        assert (reference.epochs[column] - other.epochs[column]).abs().max() <= tolerance, column
    pd.testing.assert_series_equal(reference.epochs.val_loss, other.epochs.val_loss, check_exact=False, rtol=STAT_RTOL)
    assert abs(reference.test_accuracy - other.test_accuracy).max() <= 1.5 / n_test
    assert reference.epochs.diverged.equals(other.epochs.diverged)


@needs_cuda
@pytest.mark.parametrize("method", METHODS)
def test_cuda_metrics_agree_with_cpu(spec, hp, splits, method):
    spec.update(METHODS[method])
    on_cpu = train(splits, spec, hp, 3, [0, 1], device="cpu")
    on_gpu = train(splits, spec, hp, 3, [0, 1], device="cuda")
    assert_runs_agree(on_cpu, on_gpu, len(splits["y_val"]), len(splits["y_test"]))


@needs_cuda
def test_auto_trains_on_the_gpu_with_the_cpu_numbers(spec, hp, splits):
    assert_runs_agree(
        train(splits, spec, hp, 3, [0], device="cpu"),
        train(splits, spec, hp, 3, [0], device="auto"),
        len(splits["y_val"]),
        len(splits["y_test"]),
    )


RECURRENT = {
    "lstm": {"cell": "lstm", "recurrent_init": "default", "forget_bias": 1.0, "optimizer": "adam"},
    "rnn_tanh_covariance": {
        "cell": "tanh",
        "recurrent_init": "orthogonal",
        "forget_bias": 1.0,
        "optimizer": "adam",
        "aux": "covariance",
        "cov_lambda": 1.0,
    },
}


@needs_cuda
@pytest.mark.parametrize("method", RECURRENT)
def test_cuda_recurrent_metrics_agree_with_cpu(splits, hp, method):
    """Recurrent training on the GPU (the explicit cell loop; an LSTM's non-logging steps run its fused sequence,
    components.lstm_sequence): the same sequences (20 features as 5 steps of 4) give the CPU's numbers."""
    sequences = {k: v.reshape(len(v), 5, 4) if k.startswith("x_") else v for k, v in splits.items()}
    spec = {
        "norm": "none",
        "residual": "none",
        "grad_clip": None,
        "aux": "none",
        "standardize_inputs": False,
        **RECURRENT[method],
    }
    hp = {**hp, "lr": 0.01}
    assert_runs_agree(
        train(sequences, spec, hp, 5, [0, 1], device="cpu"),
        train(sequences, spec, hp, 5, [0, 1], device="cuda"),
        len(splits["y_val"]),
        len(splits["y_test"]),
    )
