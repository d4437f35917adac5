"""Tests of covbench.analysis.aggregate on small runs written in the format of docs/design.md#the-files."""

import json

import numpy as np
import pandas as pd
import pytest

from covbench.analysis import aggregate
from covbench.training.stats import STAT_NAMES

THRESHOLDS = {"mnist": 0.98, "catvnoncat": 0.70}
STEPS_PER_EPOCH, LOG_EVERY = 4, 2
FORCE_STATISTICS = ("force_grad_ratio", "force_grad_cosine", "active_groups")


def synthetic_runs(
    methods=("baseline", "covariance", "relu_he"),
    depths=(2, 4),
    seeds=(0, 1, 2),
    epochs=3,
    diverged=("mnist", "covariance", 4, 1),
):
    """(runs, epochs, layer_stats) frames of a small grid; the run `diverged` stops during epoch 2.

    Layer l of a run has bias_grad_norm 10 ** (decay * (l - depth)), so its vanishing index is decay * (depth - 1).
    Covariance methods have a force: no active group during epoch 1 (active_groups 0, ratio 0, cosine 0), then
    active_groups 0.5, ratio 10 ** -l and cosine 0.1 * l; the other methods' force statistics are NaN.
    """
    rng = np.random.default_rng(1)
    run_rows, epoch_rows, stat_rows = [], [], []
    for dataset in THRESHOLDS:
        for m, method in enumerate(methods):
            decay = 0.5 * (len(methods) - m)
            for depth in depths:
                for seed in seeds:
                    key = dict(dataset=dataset, method=method, depth=depth, seed=seed)
                    stops = 2 if (dataset, method, depth, seed) == diverged else epochs
                    for step in range(0, stops * STEPS_PER_EPOCH, LOG_EVERY):
                        for layer in range(1, depth + 1):
                            values = dict(zip(STAT_NAMES, rng.uniform(0.1, 0.9, len(STAT_NAMES))))
                            values["bias_grad_norm"] = 10.0 ** (decay * (layer - depth)) * (1 + 0.01 * seed)
                            active = step >= STEPS_PER_EPOCH
                            force = (10.0**-layer * active, 0.1 * layer * active, 0.5 * active)
                            values.update(zip(FORCE_STATISTICS, force if "covariance" in method else [np.nan] * 3))
                            stat_rows.append(
                                {**key, "step": step, "epoch": step // STEPS_PER_EPOCH, "layer": layer, **values}
                            )
                    for epoch in range(1, stops + 1):
                        accuracy = min(0.5 + 0.1 * epoch * (m + 1) + 0.01 * seed, 0.99)
                        epoch_rows.append(
                            {
                                **key,
                                "epoch": epoch,
                                "train_loss": 2.0 / (epoch + m),
                                "train_accuracy": accuracy,
                                "val_loss": 2.1 / (epoch + m),
                                "val_accuracy": accuracy,
                                "wall_s": float(epoch),
                                "diverged": epoch == stops < epochs,
                            }
                        )
                    last = epoch_rows[-1]
                    run_rows.append(
                        {
                            **key,
                            "diverged": last["diverged"],
                            "collapsed": m == 0 and depth == depths[-1],
                            "test_accuracy": last["val_accuracy"] - 0.01,
                            "last_test_accuracy": last["val_accuracy"] - 0.02,
                            "best_epoch": last["epoch"],
                            "best_val_accuracy": last["val_accuracy"],
                            "best_val_loss": last["val_loss"],
                            "final_val_accuracy": last["val_accuracy"],
                            "final_val_loss": last["val_loss"],
                            "wall_s": last["wall_s"],
                        }
                    )
    layer_stats = pd.DataFrame(stat_rows).astype({name: "float32" for name in STAT_NAMES})
    return pd.DataFrame(run_rows), pd.DataFrame(epoch_rows), layer_stats


def synthetic_probes(runs, epochs):
    """probes.parquet rows of every run: at init 0.3 + 0.01 seed on every layer, after the run's last epoch that plus
    0.05 * layer (0.2 more for relu_he); a diverged run's final probes are NaN."""
    last_epoch = epochs.groupby(aggregate.RUN_KEYS)["epoch"].max()
    rows = []
    for run in runs.itertuples():
        key = dict(dataset=run.dataset, method=run.method, depth=run.depth, seed=run.seed)
        for layer in range(1, run.depth + 1):
            init = 0.3 + 0.01 * run.seed
            final = np.nan if run.diverged else init + 0.05 * layer + 0.2 * (run.method == "relu_he")
            for epoch, accuracy in ((0, init), (last_epoch[tuple(key.values())], final)):
                rows.append(
                    {
                        **key,
                        "epoch": int(epoch),
                        "layer": layer,
                        "probe_accuracy": accuracy,
                        "model": 0,
                        "n_train": 200,
                        "n_val": 200,
                    }
                )
    return pd.DataFrame(rows)


def split_record(run: dict) -> dict:
    """The split keys of run.json: cat/not-cat split per seed (168 / 41 / 50), MNIST's official split; the
    majority-class rates of the run's validation and test data."""
    per_seed = run["dataset"] == "catvnoncat"
    sizes = (168, 41, 50) if per_seed else (50_000, 5_000, 10_000)
    return {
        "split": {
            "protocol": "per_seed" if per_seed else "official",
            "seed": run["seed"],
            **dict(zip(("n_train", "n_val", "n_test"), sizes)),
            "sha256": "0" * 64,
        },
        "val_majority_rate": (0.6 + 0.01 * run["seed"]) if per_seed else 0.1135,
        "test_majority_rate": (0.64 - 0.02 * run["seed"]) if per_seed else 0.1135,
    }


def write_runs(root, runs, epochs, layer_stats, probes):
    """Write each run's run.json, epochs.parquet, layer_stats.parquet and probes.parquet; returns the path lists."""
    paths = {"run": [], "epochs": [], "layer_stats": [], "probes": []}
    for run in runs.to_dict("records"):
        folder = root / run["dataset"] / run["method"] / f"depth{run['depth']}" / f"seed{run['seed']}"
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(
            json.dumps({**run, **split_record(run), "method_spec": {}, "hyperparameters": {}})
        )
        for name, frame in (("epochs", epochs), ("layer_stats", layer_stats), ("probes", probes)):
            mine = frame[(frame[aggregate.RUN_KEYS] == pd.Series(run)[aggregate.RUN_KEYS]).all(axis=1)]
            mine.to_parquet(folder / f"{name}.parquet", index=False)
            paths[name].append(str(folder / f"{name}.parquet"))
        paths["run"].append(str(folder / "run.json"))
    return paths


@pytest.fixture(scope="module")
def frames():
    return synthetic_runs()


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_interval_contains_median_and_is_reproducible():
    samples = np.random.default_rng(0).lognormal(size=(50, 5))
    summary = aggregate.bootstrap(samples, "median")
    assert np.allclose(summary["median"], np.median(samples, axis=1))
    assert (summary.ci_low <= summary["median"]).all() and (summary["median"] <= summary.ci_high).all()
    assert (summary.ci_low < summary.ci_high).all()
    assert summary.equals(aggregate.bootstrap(samples, "median"))


def test_bootstrap_collapses_for_one_seed():
    samples = np.array([[0.3, np.nan, np.nan], [0.7, 0.2, np.nan]])
    for statistic in aggregate.STATISTICS:
        summary = aggregate.bootstrap(samples, statistic)
        assert summary.n_seeds.tolist() == [1, 2]
        assert summary.loc[0, [statistic, "ci_low", "ci_high"]].tolist() == [0.3, 0.3, 0.3]


@pytest.mark.parametrize("statistic", ["median", "mean"])
@pytest.mark.parametrize("n", [2, 5, 6])
def test_bootstrap_equals_spelled_out_resamples(statistic, n):
    samples = np.random.default_rng(n).normal(size=(20, n))
    counts = aggregate.resample_counts(n)
    draws = np.stack([np.repeat(np.arange(n), row) for row in counts])  # (resamples, n) seed indices
    resampled = np.sort(samples, axis=1)[:, draws]  # (groups, resamples, n)
    statistic_of = {"median": np.median, "mean": np.mean}[statistic]
    expected = np.quantile(statistic_of(resampled, axis=2), [0.025, 0.975], axis=1, method="inverted_cdf").T
    summary = aggregate.bootstrap(samples, statistic)
    assert np.allclose(summary[["ci_low", "ci_high"]].to_numpy(), expected)


def test_bootstrap_median_with_infinite_values():
    summary = aggregate.bootstrap(np.array([[1.0, 2.0, np.inf, np.inf, np.inf]]), "median")
    assert summary.loc[0, "median"] == np.inf and summary.loc[0, "ci_low"] >= 1.0


# --- per-run outcomes ----------------------------------------------------------------------------


def test_vanishing_index_matches_hand_computation():
    rows = []
    for step, epoch, first, last in [(0, 0, 1e-4, 1e-1), (2, 0, 1e-3, 1e-1), (4, 1, 1.0, 1.0)]:
        for layer, norm in ((1, first), (2, 0.5), (3, last)):
            rows.append(
                dict(
                    dataset="mnist",
                    method="baseline",
                    depth=3,
                    seed=0,
                    step=step,
                    epoch=epoch,
                    layer=layer,
                    bias_grad_norm=np.float32(norm),
                )
            )
    index = aggregate.vanishing_index(pd.DataFrame(rows)).iloc[0]
    assert index.vanishing_index_init == pytest.approx(-3.0, abs=1e-5)
    assert index.vanishing_index_epoch1 == pytest.approx((-3.0 + -2.0) / 2, abs=1e-5)


def test_vanishing_index_of_synthetic_runs(frames):
    _, _, layer_stats = frames
    index = aggregate.vanishing_index(layer_stats).set_index(aggregate.RUN_KEYS)
    assert index.loc[("mnist", "baseline", 4, 0), "vanishing_index_init"] == pytest.approx(-1.5 * 3, abs=1e-5)
    assert index.loc[("catvnoncat", "relu_he", 2, 2), "vanishing_index_epoch1"] == pytest.approx(-0.5, abs=1e-5)


def test_epochs_to_threshold_reached_and_not_reached():
    epochs = pd.DataFrame(
        {
            "dataset": ["mnist"] * 3 + ["catvnoncat"] * 3,
            "method": "m",
            "depth": 2,
            "seed": 0,
            "epoch": [1, 2, 3] * 2,
            "val_accuracy": np.float32([0.5, 0.98, 0.99, 0.5, 0.69, 0.6]).astype(float),
        }
    )
    result = aggregate.epochs_to_threshold(epochs, THRESHOLDS).set_index("dataset")
    assert result.loc["mnist", "epochs_to_threshold"] == 2.0 and result.loc["mnist", "reached_threshold"]
    assert np.isnan(result.loc["catvnoncat", "epochs_to_threshold"])
    assert not result.loc["catvnoncat", "reached_threshold"]


def test_run_summary_keeps_diverged_runs(frames):
    runs, epochs, layer_stats = frames
    summary = aggregate.run_summary(runs, epochs, layer_stats, THRESHOLDS).set_index(aggregate.RUN_KEYS)
    assert len(summary) == len(runs)
    diverged = summary.loc[("mnist", "covariance", 4, 1)]
    assert diverged.diverged and diverged.test_accuracy == pytest.approx(0.5 + 0.1 * 2 * 2 + 0.01 - 0.01)
    assert summary.diverged.sum() == 1
    assert summary.loc[("mnist", "baseline", 2, 0), "reached_threshold"] == False  # noqa: E712 (a numpy bool; the maximum is 0.8)


# --- summaries across seeds ----------------------------------------------------------------------


def test_layer_summary_epochs_and_seeds(frames):
    _, _, layer_stats = frames
    summary = aggregate.layer_summary(layer_stats)
    assert set(summary.statistic) == set(STAT_NAMES)
    assert sorted(summary.epoch.unique()) == [0, 1, 2, 3]
    cell = summary.set_index(["dataset", "method", "depth", "layer", "epoch", "statistic"])
    assert cell.loc[("mnist", "covariance", 4, 1, 3, "saturation"), "n_seeds"] == 2  # seed 1 stopped in epoch 2
    assert cell.loc[("mnist", "covariance", 4, 1, 2, "saturation"), "n_seeds"] == 3
    speed = cell.loc[("mnist", "baseline", 2, 1, 0, "bias_grad_norm")]
    assert speed["median"] == pytest.approx(10**-1.5 * 1.01, rel=1e-5)


def test_layer_epoch_means_average_the_logged_steps():
    logged = [(0, 0, 1.0), (2, 0, 3.0), (4, 1, 7.0)]  # (step, 0-based epoch, value of every statistic)
    rows = [
        dict(
            dataset="mnist",
            method="m",
            depth=1,
            seed=0,
            step=step,
            epoch=epoch,
            layer=1,
            **{name: value for name in STAT_NAMES},
        )
        for step, epoch, value in logged
    ]
    means = aggregate.layer_epoch_means(pd.DataFrame(rows)).set_index("epoch")
    assert means.loc[[0, 1, 2], "saturation"].tolist() == [1.0, 2.0, 7.0]


def test_method_summary_metrics(frames):
    runs, epochs, layer_stats = frames
    summary = aggregate.method_summary(aggregate.run_summary(runs, epochs, layer_stats, THRESHOLDS))
    assert set(summary.metric) == set(aggregate.METRICS)
    cell = summary.set_index(["dataset", "method", "depth", "metric"])
    assert cell.loc[("mnist", "covariance", 4, "diverged_fraction"), "mean"] == pytest.approx(1 / 3)
    assert cell.loc[("mnist", "baseline", 2, "epochs_to_threshold"), "median"] == np.inf
    slowest = cell.loc[("mnist", "covariance", 4, "epochs_to_threshold")]  # seed 1 diverged before reaching it
    assert slowest[["median", "ci_low", "ci_high", "mean"]].tolist() == [3.0, 3.0, np.inf, np.inf]
    reached = cell.loc[("catvnoncat", "relu_he", 2, "epochs_to_threshold")]
    assert reached["median"] == 1.0 and reached.n_seeds == 3
    finite = summary[np.isfinite(summary["median"])]
    assert (finite.ci_low <= finite["median"]).all() and (finite["median"] <= finite.ci_high).all()


def test_write_tables(tmp_path, frames):
    paths = write_runs(tmp_path / "runs", *frames, synthetic_probes(frames[0], frames[1]))
    outputs = {name: str(tmp_path / "aggregate" / f"{name}.parquet") for name in aggregate.TABLES}
    aggregate.write_tables(paths["run"], paths["epochs"], paths["layer_stats"], paths["probes"], THRESHOLDS, outputs)
    tables = {name: pd.read_parquet(path) for name, path in outputs.items()}
    assert list(tables["run_summary"].columns) == aggregate.RUN_KEYS + [
        "diverged",
        "collapsed",
        "test_accuracy",
        "last_test_accuracy",
        "best_epoch",
        "best_val_accuracy",
        "best_val_loss",
        "final_val_accuracy",
        "final_val_loss",
        "final_train_loss",
        "epochs_to_threshold",
        "reached_threshold",
        "vanishing_index_init",
        "vanishing_index_epoch1",
        "active_step_fraction",
        "probe_gain_layer1",
        "val_majority_rate",
        "test_majority_rate",
        "split_protocol",
        "n_train",
        "n_val",
        "n_test",
        "split_sha256",
        "wall_s",
    ]
    assert list(tables["layer_summary"].columns) == aggregate.CELL_KEYS + [
        "layer",
        "epoch",
        "statistic",
        "median",
        "ci_low",
        "ci_high",
        "n_seeds",
    ]
    assert list(tables["method_summary"].columns) == aggregate.CELL_KEYS + [
        "metric",
        "median",
        "mean",
        "ci_low",
        "ci_high",
        "mean_ci_low",
        "mean_ci_high",
        "n_seeds",
    ]
    assert list(tables["probe_summary"].columns) == aggregate.CELL_KEYS + [
        "layer",
        "epoch",
        "median",
        "ci_low",
        "ci_high",
        "n_seeds",
    ]
    assert len(tables["epoch_curves"]) == len(frames[1])
    per_run = tables["run_summary"].set_index(aggregate.RUN_KEYS)
    assert per_run.loc[("catvnoncat", "relu_he", 4, 2), "probe_gain_layer1"] == pytest.approx(0.25)
    assert np.isnan(per_run.loc[("mnist", "covariance", 4, 1), "probe_gain_layer1"])  # diverged: no final probe
    catvnoncat = per_run.loc[("catvnoncat", "relu_he", 4, 2)]
    assert catvnoncat.split_protocol == "per_seed" and (catvnoncat.n_train, catvnoncat.n_test) == (168, 50)
    assert catvnoncat.val_majority_rate == pytest.approx(0.62) and catvnoncat.test_majority_rate == pytest.approx(0.6)
    rates = tables["method_summary"].set_index(["dataset", "method", "depth", "metric"])
    assert rates.loc[("catvnoncat", "baseline", 2, "test_majority_rate"), "median"] == pytest.approx(0.62)


def test_records_older_than_the_split_record_read_as_missing():
    record = {key: 0 for key in aggregate.RUN_KEYS} | dict.fromkeys(
        ["diverged", "collapsed", "test_accuracy", "last_test_accuracy", "best_epoch", "best_val_accuracy"], 0
    )
    record |= dict.fromkeys(["best_val_loss", "final_val_accuracy", "final_val_loss", "wall_s"], 0.0)
    row = aggregate.runs_frame([record]).iloc[0]
    assert row.split_protocol is None
    assert np.isnan(row[["val_majority_rate", "test_majority_rate", "n_train", "n_val", "n_test"]].astype(float)).all()


# --- the force and the probes ------------------------------------------------------------


def test_active_step_fraction_counts_logged_steps_with_a_force(frames):
    runs, epochs, layer_stats = frames
    summary = aggregate.run_summary(runs, epochs, layer_stats, THRESHOLDS).set_index(aggregate.RUN_KEYS)
    # logged steps 0, 2 (epoch 1: no group active), 4, 6, 8, 10 (active): 4 of 6; the diverged run stops after 6
    assert summary.loc[("mnist", "covariance", 2, 0), "active_step_fraction"] == pytest.approx(4 / 6)
    assert summary.loc[("mnist", "covariance", 4, 1), "active_step_fraction"] == pytest.approx(2 / 4)
    assert summary.loc[summary.index.get_level_values("method") != "covariance", "active_step_fraction"].isna().all()
    assert summary.probe_gain_layer1.isna().all()  # no probes given


def test_active_step_fraction_skips_missing_steps():
    rows = [
        dict(dataset="mnist", method="m", depth=2, seed=0, step=step, epoch=0, layer=layer, active_groups=value)
        for step, value in ((0, 0.0), (2, np.nan), (4, 0.1), (6, 1.0))
        for layer in (1, 2)
    ]
    fraction = aggregate.active_step_fraction(pd.DataFrame(rows)).active_step_fraction
    assert fraction.tolist() == [pytest.approx(2 / 3)]


def test_probe_gain_and_summary(frames):
    runs, epochs, _ = frames
    probes = synthetic_probes(runs, epochs)
    gain = aggregate.probe_gain(probes).set_index(aggregate.RUN_KEYS).probe_gain_layer1
    assert gain.loc[("mnist", "baseline", 2, 0)] == pytest.approx(0.05)
    assert gain.loc[("mnist", "relu_he", 4, 1)] == pytest.approx(0.25)
    assert np.isnan(gain.loc[("mnist", "covariance", 4, 1)])
    summary = aggregate.probe_summary(probes).set_index(["dataset", "method", "depth", "layer", "epoch"])
    assert summary.loc[("mnist", "baseline", 4, 3, 0), "median"] == pytest.approx(0.31)  # seeds 0, 1, 2
    assert summary.loc[("mnist", "baseline", 4, 3, 3), "median"] == pytest.approx(0.31 + 0.15)
    diverged = summary.loc[("mnist", "covariance", 4, 1)]
    assert diverged.loc[0, "n_seeds"] == 3
    assert diverged.loc[3, "n_seeds"] == 2  # seed 1 diverged in epoch 2: its final probe is NaN, at epoch 2
    assert diverged.loc[2, "n_seeds"] == 0
    probed = summary[summary.n_seeds > 0]
    assert (probed.ci_low <= probed["median"]).all() and (probed["median"] <= probed.ci_high).all()


def test_layer_summary_carries_the_force_statistics(frames):
    _, _, layer_stats = frames
    summary = aggregate.layer_summary(layer_stats).set_index(
        ["dataset", "method", "depth", "layer", "epoch", "statistic"]
    )
    assert summary.loc[("mnist", "covariance", 2, 1, 0, "active_groups"), "median"] == 0
    assert summary.loc[("mnist", "covariance", 2, 2, 2, "force_grad_cosine"), "median"] == pytest.approx(0.2)
    assert np.isnan(summary.loc[("mnist", "relu_he", 2, 1, 2, "force_grad_ratio"), "median"])
