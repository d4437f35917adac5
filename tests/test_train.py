"""Training loop: statistics against a hand computation, determinism, batching, resume, divergence."""

import platform

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from covbench.models import build_mlp
from covbench.training import state as run_state
from covbench.training.process import configure_process
from covbench.training.settings import JobSettings
from covbench.training.state import Checkpoint
from covbench.training.train import Probe, train


def test_stats_of_two_layer_net_match_hand_backprop(spec, hp, splits):
    """Step-0 statistics of a 2-hidden-layer sigmoid net equal a manual delta-rule backprop on the same weights."""
    hp.update(epochs=1, batch_size=200, log_every=1, momentum=0.9, lr=0.5)  # one full-batch step
    result = train(splits, spec, hp, depth=2, seeds=[7])
    model = build_mlp(spec, 20, hp["width"], 2, 3, seeds=[7])  # the same initial weights
    (w1, w2, w3), (b1, b2, b3) = [w[0] for w in model.weights], [b[0] for b in model.biases]
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(2 * 7 + 1))
    x, y = splits["x_train"][perm], splits["y_train"][perm]
    a1 = torch.sigmoid(x @ w1 + b1)
    a2 = torch.sigmoid(a1 @ w2 + b2)
    p = torch.softmax(a2 @ w3 + b3, dim=1)
    delta3 = (p - F.one_hot(y, 3).float()) / len(y)
    delta2 = (delta3 @ w3.T) * a2 * (1 - a2)
    delta1 = (delta2 @ w2.T) * a1 * (1 - a1)
    grad_w = [x.T @ delta1, a1.T @ delta2]
    expected = {
        "bias_grad_norm": [delta1.sum(0).norm(), delta2.sum(0).norm()],
        "weight_grad_norm": [g.norm() for g in grad_w],
        "grad_rms": [g.norm() / g.numel() ** 0.5 for g in grad_w],
        "update_ratio": [0.5 * g.norm() / w.norm() for g, w in zip(grad_w, (w1, w2))],  # first momentum step = lr * g
        "weight_drift": [0.0, 0.0],
        "act_mean": [a1.mean(), a2.mean()],
        "act_std": [a1.std(), a2.std()],
        "saturation": [((a < 0.01) | (a > 0.99)).float().mean() for a in (a1, a2)],
        "cov_force_norm": [0.0, 0.0],
    }
    step0 = result.layer_stats[result.layer_stats.step == 0].sort_values("layer")
    assert step0.layer.tolist() == [1, 2]
    for column, values in expected.items():
        torch.testing.assert_close(
            torch.tensor(step0[column].tolist()),
            torch.tensor([float(v) for v in values]),
            rtol=1e-4,
            atol=1e-7,
            msg=column,
        )


def test_same_seed_gives_identical_metrics(spec, hp, splits):
    spec.update(activation="tanh", init="xavier", aux="covariance", cov_lambda=1.0)
    first, second = train(splits, spec, hp, 3, [0]), train(splits, spec, hp, 3, [0])
    assert first.layer_stats.cov_force_norm.gt(0).any()  # the force acted and was logged
    assert first.layer_stats.equals(second.layer_stats)
    assert first.epochs.drop(columns="wall_s").equals(second.epochs.drop(columns="wall_s"))
    other = train(splits, spec, hp, 3, [1])
    assert not first.layer_stats.bias_grad_norm.equals(other.layer_stats.bias_grad_norm)


def test_process_settings_change_speed_not_numbers(spec, hp, splits):
    spec.update(aux="covariance", cov_lambda=1.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        before = train(splits, spec, hp, 3, [0])
        took = configure_process(2)
        assert torch.get_num_threads() == 2
        assert took["malloc_settings"] == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
        after = train(splits, spec, hp, 3, [0])
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    # These inputs keep every value normal: flushing subnormals changes nothing, bit for bit.
    assert before.layer_stats.equals(after.layer_stats)


@pytest.mark.parametrize(
    "method",
    [
        {"aux": "covariance", "cov_lambda": 1.0},
        {
            "activation": "relu",
            "init": "he",
            "norm": "batchnorm",
            "residual": "preact",
            "grad_clip": 0.5,
            "aux": "deep_supervision",
            "aux_weight": 0.3,
        },
    ],
)
def test_seeds_batched_equal_seeds_alone(spec, hp, splits, method):
    spec.update(method)
    together = train(splits, spec, hp, 3, [0, 1, 2])
    alone = train(splits, spec, hp, 3, [1])
    batched = together.layer_stats[together.layer_stats.seed == 1].drop(columns="model").reset_index(drop=True)
    single = alone.layer_stats.drop(columns="model")
    assert len(batched) == len(single) > 0
    for column in single.columns:
        torch.testing.assert_close(
            torch.tensor(batched[column].to_numpy()),
            torch.tensor(single[column].to_numpy()),
            rtol=1e-5,
            atol=1e-7,
            equal_nan=True,
            msg=column,
        )  # NaN: no force on that step
    acc = together.epochs[together.epochs.seed == 1].val_accuracy.to_numpy()
    assert acc.tolist() == alone.epochs.val_accuracy.tolist()


@pytest.mark.parametrize(
    "method",
    [{}, {"activation": "prelu", "init": "he"}, {"activation": "rrelu", "init": "he"}],
    ids=["sigmoid", "prelu", "rrelu"],
)  # learnable slopes; training noise from the checkpoint
def test_interrupted_run_resumes_where_it_stopped(spec, hp, splits, tmp_path, method):
    spec.update(method)
    hp.update(epochs=3)
    full = train(splits, spec, hp, 2, [0, 1])
    checkpoint = tmp_path / "checkpoint.pt"
    assert _train_until(splits, spec, hp, 2, checkpoint, stop_after=2) == 2
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 2 and len(saved["noise_states"]) == (2 if spec["activation"] == "rrelu" else 0)
    resumed = train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0))
    assert resumed.epochs.drop(columns="wall_s").equals(full.epochs.drop(columns="wall_s"))
    assert resumed.layer_stats.equals(full.layer_stats)
    for a, b in zip(
        resumed.state["params"] + resumed.state["noise_states"],
        full.state["params"] + full.state["noise_states"],
        strict=True,
    ):
        assert torch.equal(a, b)


def test_checkpoints_are_spaced_in_time(spec, hp, splits, tmp_path):
    hp.update(epochs=3)
    checkpoint = tmp_path / "checkpoint.pt"
    train(splits, spec, hp, 2, [0], checkpoint=Checkpoint(checkpoint, every_s=3600))
    assert not checkpoint.exists()  # three short epochs: no save due yet, and none after the last epoch
    train(splits, spec, hp, 2, [0], checkpoint=Checkpoint(checkpoint, every_s=0))
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2


def _train_until(splits, spec, hp, depth, checkpoint, stop_after):
    """Train until the checkpoint of epoch `stop_after` is written, then die as a killed job would."""
    real_save = run_state.save_checkpoint
    saves = []

    def save_then_crash(state, path):
        real_save(state, path)
        saves.append(state["epoch"])
        if state["epoch"] == stop_after:
            raise KeyboardInterrupt

    run_state.save_checkpoint = save_then_crash
    try:
        train(splits, spec, hp, depth, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0))
    except KeyboardInterrupt:
        pass
    finally:
        run_state.save_checkpoint = real_save
    return saves[-1]


def test_divergence_is_recorded_not_raised(spec, hp, splits):
    spec.update(activation="relu", init="normal")
    hp.update(lr=[1e4, 0.01], epochs=3)  # per-model learning rates: the first explodes
    result = train(splits, spec, hp, 4, [0, 0])
    first = result.epochs[result.epochs.model == 0]
    second = result.epochs[result.epochs.model == 1]
    assert first.diverged.iloc[-1] and len(first) < 3
    assert not second.diverged.any() and len(second) == 3
    steps = result.layer_stats.groupby("model").step.nunique()
    assert steps[0] < steps[1]
    assert result.layer_stats[result.layer_stats.model == 1].bias_grad_norm.notna().all()


def test_probes_at_init_and_after_the_last_epoch_survive_a_resume(spec, hp, splits, tmp_path):
    """Every hidden layer is probed at init (epoch 0) and after the last epoch; a run resumed from a checkpoint
    keeps the probes it took before it stopped and gives the same ones as an uninterrupted run."""
    from covbench.training import probes

    settings = {"train_size": 100, "val_size": 50, "seed": 0}
    probe = lambda model, probe_splits, epoch: probes.probe_frame(model, probe_splits, settings, epoch)  # noqa: E731
    hp.update(epochs=3)
    full = train(splits, spec, hp, 2, [0, 1], probe=Probe(probe))
    assert sorted(full.probes.epoch.unique()) == [0, 3] and len(full.probes) == 2 * 2 * 2
    checkpoint = tmp_path / "checkpoint.pt"
    real_save = run_state.save_checkpoint

    def save_then_crash(state, path):
        real_save(state, path)
        raise KeyboardInterrupt

    run_state.save_checkpoint = save_then_crash
    try:
        with pytest.raises(KeyboardInterrupt):
            train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0), probe=Probe(probe))
    finally:
        run_state.save_checkpoint = real_save
    resumed = train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0), probe=Probe(probe))
    pd.testing.assert_frame_equal(resumed.probes, full.probes)


def test_run_probes_only_the_seeds_config_names(spec, hp, splits, tmp_path):
    """config probes.seeds: the runs of the named seeds get probes, the others an empty probes.parquet."""
    from covbench.training.runs import train_seeds

    hp.update(epochs=1)
    dirs = [str(tmp_path / f"seed{s}") for s in (0, 1, 2)]
    probes = {"train_size": 100, "val_size": 50, "seed": 0, "epochs": [], "seeds": [1]}
    train_seeds(JobSettings("mnist", "baseline", spec, hp, seeds=(0, 1, 2), probes=probes), 2, splits, dirs)
    rows = [len(pd.read_parquet(f"{d}/probes.parquet")) for d in dirs]
    assert rows == [0, 2 * 2, 0]  # seed 1: layers 1-2 at init and after the last epoch


# docs/reproducibility.md: batched seeds agree with seeds trained alone to float tolerance, not bit for bit
BATCHED_RTOL = 1e-6


def test_batched_seeds_agree_with_seeds_trained_one_by_one_to_float_tolerance(spec, hp, splits, one_thread):
    """Three seeds as one batched model against each trained alone: the final metrics agree within BATCHED_RTOL
    (batched matrix products sum in another order, so the last bits may differ)."""
    seeds = [0, 1, 2]
    together = train(splits, spec, hp, 2, seeds)
    for model, seed in enumerate(seeds):
        alone = train(splits, spec, hp, 2, [seed])
        batched = together.epochs[together.epochs.seed == seed].iloc[-1]
        single = alone.epochs.iloc[-1]
        for column in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert batched[column] == pytest.approx(single[column], rel=BATCHED_RTOL, abs=0), column
        assert together.test_accuracy[model] == pytest.approx(alone.test_accuracy[0], rel=BATCHED_RTOL, abs=0)


def test_the_best_checkpoint_is_the_epoch_of_lowest_validation_loss(spec, hp, splits):
    """docs/design.md#best-checkpoint: each model reports the test accuracy of its epoch of lowest validation loss;
    trained only that many epochs, the same batch of seeds reaches exactly those weights and reports that accuracy
    last."""
    hp.update(epochs=8, lr=3.0, width=32)  # a large step: the validation loss goes up and down
    result = train(splits, spec, hp, 3, [0, 1, 2])
    losses = result.epochs.pivot(index="epoch", columns="model", values="val_loss")
    assert result.best_epoch.tolist() == (losses.idxmin()).tolist()
    assert result.best_val_loss.tolist() == pytest.approx(losses.min().tolist(), rel=0, abs=0)
    assert (result.best_epoch < hp["epochs"]).any()  # the case worth testing: some model was best before the end
    for model, best_epoch in enumerate(result.best_epoch):
        shorter = train(splits, spec, {**hp, "epochs": int(best_epoch)}, 3, [0, 1, 2])
        assert shorter.last_test_accuracy[model] == result.test_accuracy[model]
    last = result.epochs.groupby("model").tail(1)
    assert (result.best_epoch == hp["epochs"]).tolist() == (
        last.val_loss.to_numpy() == losses.min().to_numpy()
    ).tolist()
