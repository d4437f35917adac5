"""Successive halving on validation loss (docs/design.md#tuning): who goes on, who wins, what is recorded."""

import json

import numpy as np
import pandas as pd
import pytest

from covbench.config import tuning_seeds
from covbench.data import datasets as data
from covbench.data import splits as resplit
from covbench.training import tune
from covbench.training.train import train

TUNE = {
    "trials": 4,
    "seed": 1000,
    "eta": 2,
    "lr": {"sgd": [0.01, 3.0], "adam": [0.0003, 0.03]},
    "cov_lambda": [0.1, 10.0],
    "aux_weight": [0.03, 3.0],
    "rung_epochs": [1, 3],
    "nested": {"cov_lambda": [0.0, 1.0, 10.0], "aux_weight": [0.0, 0.3]},
}


def test_each_optimizer_searches_its_own_range(spec):
    sgd = [t["lr"] for t in tune.trial_grid(spec, TUNE)]
    adam = [t["lr"] for t in tune.trial_grid({**spec, "optimizer": "adam"}, TUNE)]
    assert sgd == pytest.approx(np.geomspace(0.01, 3.0, 4)) and adam == pytest.approx(np.geomspace(0.0003, 0.03, 4))


def test_budget_is_the_same_for_every_method():
    assert tune.rung_sizes(8, 3, 2) == [8, 4, 2] and tune.rung_sizes(3, 2, 2) == [3, 2]
    assert tune.budget_epochs(8, [2, 5, 10], 2) == 8 * 2 + 4 * 3 + 2 * 5


def test_ranking_puts_diverged_and_non_finite_last_and_ties_to_the_smaller_lr():
    no = np.zeros(5, dtype=bool)
    order = tune.ranking(np.array([0.5, np.nan, 0.3, 0.3, 0.1]), np.array([False, False, False, False, True]), no)
    assert order.tolist() == [2, 3, 0, 1, 4]


def test_ranking_puts_collapsed_trials_after_those_that_learned():
    """A majority-class predictor can have the lowest validation loss (cat/not-cat): it still ranks after every
    trial that learned, and before the diverged ones."""
    val_loss = np.array([0.64, 0.9, 1.3, np.inf, 0.65])
    order = tune.ranking(
        val_loss, np.array([False, False, False, True, False]), np.array([True, False, False, False, True])
    )
    assert order.tolist() == [1, 2, 0, 4, 3]


def test_a_promoting_rung_ranks_trials_on_the_plateau_by_learning_rate():
    """All on the plateau (sigmoid + Xavier, depth 4, 8k MNIST images, epoch 2): by loss the smallest steps would go
    on; a promoting rung takes the largest steps still near the prior entropy, then the collapsed ones off it (too
    large a step, or not moved) by loss, then the diverged. The final choice (no plateau given) stays on loss."""
    prior = 2.301
    val_loss = np.array([2.4889, 2.3878, 2.3021, 2.3050, 2.3079, 2.3094, 2.3605, 3.4196, np.nan])
    collapsed = np.ones(9, dtype=bool)
    diverged = np.array([False] * 8 + [True])
    plateau = val_loss <= prior / 0.9
    assert tune.ranking(val_loss, diverged, collapsed, plateau).tolist() == [6, 5, 4, 3, 2, 1, 0, 7, 8]
    assert tune.ranking(val_loss, diverged, collapsed).tolist() == [2, 3, 4, 5, 6, 1, 0, 7, 8]
    learned = collapsed.copy()
    learned[[1, 2]] = False  # trials that learned still come first, by loss
    assert tune.ranking(val_loss, diverged, learned, plateau).tolist()[:3] == [2, 1, 6]


def test_edge_flags_the_ends_of_the_range():
    values = [0.1, 1.0, 10.0]
    assert tune.edge(0.1, values) == "low" and tune.edge(10.0, values) == "high" and tune.edge(1.0, values) is None


def test_survivors_continue_as_if_never_stopped(spec, hp, splits):
    """The winner's validation loss at the last rung equals training it alone, uninterrupted, for as long (the
    halving only drops models: it does not change the survivors' training); test data is never read."""
    no_test = {k: v for k, v in splits.items() if not k.endswith("_test")}
    record = tune.select(no_test, spec, hp, 2, TUNE)  # would fail with a KeyError if tuning wanted test data
    assert [t["rung"] for t in record["trials"]].count(2) == 2
    alone = train(splits, spec, {**hp, "epochs": 3, "lr": record["chosen"]["lr"]}, 2, [TUNE["seed"]])
    assert record["val_loss"] == pytest.approx(alone.best_val_loss[0], rel=1e-5)  # at its best checkpoint
    finalists = [t for t in record["trials"] if t["rung"] == 2]
    assert record["val_loss"] == min(t["val_loss"] for t in finalists)
    assert record["lr_edge"] == tune.edge(record["chosen"]["lr"], [t["lr"] for t in record["trials"]])


# --- nested tuning (docs/design.md#nested-tuning) ---------------------------------------------------------------------


def test_a_nested_method_searches_its_base_lr_and_neighbours_crossed_with_its_values():
    base = {"chosen": {"lr": 0.1}, "trials": [{"lr": lr} for lr in (0.01, 0.1, 1.0, 10.0)]}
    trials, incumbent = tune.nested_grid({"aux": "covariance"}, TUNE, base)
    assert [(t["lr"], t["cov_lambda"]) for t in trials] == [
        (lr, v) for lr in (0.01, 0.1, 1.0) for v in (0.0, 1.0, 10.0)
    ]
    assert trials[incumbent] == {"lr": 0.1, "cov_lambda": 0.0}
    at_edge, incumbent = tune.nested_grid({"aux": "deep_supervision"}, TUNE, {**base, "chosen": {"lr": 10.0}})
    assert [t["lr"] for t in at_edge] == [1.0, 1.0, 10.0, 10.0] and at_edge[incumbent] == {
        "lr": 10.0,
        "aux_weight": 0.0,
    }


@pytest.mark.parametrize("aux", ["covariance", "deep_supervision"])
def test_the_incumbent_reproduces_its_base_and_the_choice_is_never_worse(spec, hp, splits, aux):
    """The variant's trials share the base's seed, weights and batches: at the base's lr and value 0 it
    trains as the base's chosen trial did, survives every rung, and the variant's choice is at most as bad."""
    base = {"dataset": "toy", "method": "baseline", "depth": 3, **tune.select(splits, spec, hp, 3, TUNE)}
    record = {
        "dataset": "toy",
        "method": aux,
        "depth": 3,
        **tune.select(splits, {**spec, "aux": aux}, hp, 3, TUNE, base=base),
    }
    incumbent = record["nested"]["incumbent"]
    assert incumbent["lr"] == base["chosen"]["lr"] and incumbent["rung"] == len(TUNE["rung_epochs"])
    assert incumbent["val_loss"] == base["val_loss"]  # the base itself: the same numbers on one CPU
    assert record["val_loss"] <= incumbent["val_loss"]
    tune.check_inclusion(record, base)
    name = "cov_lambda" if aux == "covariance" else "aux_weight"
    assert [p[name] for p in record["lambda_profile"]] == TUNE["nested"][name]
    assert [p["lr"] for p in record["lambda_profile"] if p[name] == record["chosen"][name]] == [record["chosen"]["lr"]]
    assert record["nested"]["budget_ratio"] == tune.budget_epochs(
        len(record["trials"]), TUNE["rung_epochs"], 2
    ) / tune.budget_epochs(TUNE["trials"], TUNE["rung_epochs"], 2)


def test_the_lambda_profile_ranks_as_selection_does():
    """A value's best trial is the one selection would rank first: a collapsed trial's lower loss (the class prior's,
    on cat/not-cat) does not beat one that learned, and a trial cut at an earlier rung does not beat a finalist."""
    trial = {"cov_lambda": 0.0, "val_accuracy": 0.5, "diverged": False}
    trials = [
        {**trial, "lr": 0.01, "rung": 1, "val_loss": 0.1, "collapsed": False},
        {**trial, "lr": 0.1, "rung": 2, "val_loss": 0.7, "collapsed": False},
        {**trial, "lr": 1.0, "rung": 2, "val_loss": 0.6, "collapsed": True},
        {**trial, "lr": 10.0, "rung": 2, "val_loss": float("nan"), "collapsed": False},
    ]
    assert [p["lr"] for p in tune.lambda_profile(trials, "cov_lambda")] == [0.1]


def test_the_inclusion_check_stops_on_a_doctored_record(tmp_path):
    """tune_summary checks every nested record against its base's: a variant whose choice is worse stops it with one
    line naming the cell."""
    trial = {"lr": 0.1, "rung": 1, "val_loss": 0.5, "diverged": False, "train_loss": 0.4}
    common = {
        "dataset": "mnist",
        "depth": 8,
        "selected_on": "best_val_loss",
        "collapsed": False,
        "val_accuracy": 0.9,
        "lr_edge": None,
        "aux_edge": None,
        "lr_range": [0.01, 1.0],
        "rung_epochs": [2],
        "budget_epochs": 8,
    }
    base = {**common, "method": "baseline", "chosen": {"lr": 0.1}, "val_loss": 0.5, "budget": 8, "trials": [trial]}
    variant = {
        **common,
        "method": "covariance",
        "chosen": {"lr": 0.1, "cov_lambda": 0.0},
        "val_loss": 0.5,
        "budget": 12,
        "trials": [{**trial, "cov_lambda": 0.0}],
        "nested": {"base": "baseline", "budget_ratio": 1.5},
    }
    paths = [tmp_path / "base.json", tmp_path / "variant.json"]
    for path, record in zip(paths, (base, variant)):
        path.write_text(json.dumps(record))
    variant["lambda_profile"] = [
        {
            "cov_lambda": 0.0,
            "lr": 0.1,
            "rung": 1,
            "val_loss": 0.5,
            "val_accuracy": 0.9,
            "collapsed": False,
            "diverged": False,
        }
    ]
    paths[1].write_text(json.dumps(variant))
    tune.summarize([str(p) for p in paths], str(tmp_path / "chosen.parquet"), str(tmp_path / "profile.parquet"))
    assert pd.read_parquet(tmp_path / "chosen.parquet").nested_in.tolist() == ["", "baseline"]
    profile = pd.read_parquet(tmp_path / "profile.parquet")
    assert profile.columns.tolist() == tune.PROFILE_COLUMNS and profile.chosen.tolist() == [True]
    paths[1].write_text(json.dumps({**variant, "val_loss": 0.5 * (1 + 2 * tune.INCLUSION_TOLERANCE)}))
    with pytest.raises(
        tune.InclusionError,
        match=r"^inclusion check failed for mnist, covariance, depth 8: its "
        r"chosen trial has validation loss 0\.51 against 0\.5 for its base "
        r"baseline \(tolerance 1%\)",
    ):
        tune.summarize([str(p) for p in paths], str(tmp_path / "chosen.parquet"), str(tmp_path / "profile.parquet"))


# --- tuning on K splits (docs/design.md#tuning-splits): cat/not-cat, each tuning seed its own split ------------------


@pytest.fixture(scope="module")
def cat_tuning(tmp_path_factory, mirror):
    """Two tuning seeds' per-seed splits of the real cat/not-cat files, and their records."""
    path = data.prepare("catvnoncat", mirror, tmp_path_factory.mktemp("cat") / "cat.pt")
    seeds = tuning_seeds({**TUNE, "splits": 2}, "per_seed")
    tuning, records, _, _ = resplit.job_splits(data.load_splits(path), "per_seed", 0, [0], seeds)
    return tuning, records


def test_a_trial_scores_the_mean_of_its_splits(cat_tuning, spec, hp, one_thread):
    """Each of a trial's K models trains as it would alone on its tuning seed's split (that seed's initialisation
    and data order); the trial's validation loss is the mean of their best ones, and the record names the splits."""
    tuning, records = cat_tuning
    record = tune.select(tuning, spec, hp, 2, TUNE, split_records=records)
    assert record["tune_seeds"] == [1000, 1001] and record["tuning_splits"] == records
    assert len({r["sha256"] for r in record["tuning_splits"]}) == 2
    for trial in (t for t in record["trials"] if t["rung"] == 2):
        assert trial["val_loss"] == pytest.approx(np.mean(trial["val_losses"]), rel=1e-12)
        assert trial["val_accuracy"] == pytest.approx(np.mean(trial["val_accuracies"]), rel=1e-12)
        for k, seed in enumerate(record["tune_seeds"]):
            split = {key: tensor[k] for key, tensor in tuning.items()}
            alone = train(split, spec, {**hp, "epochs": 3, "lr": trial["lr"]}, 2, [seed])
            assert trial["val_losses"][k] == pytest.approx(float(alone.best_val_loss[0]), rel=1e-5)
    finalists = [t for t in record["trials"] if t["rung"] == 2 and not t["diverged"]]
    assert record["val_loss"] == min(t["val_loss"] for t in finalists)


def test_a_nested_variant_keeps_its_base_on_the_mean_of_the_same_splits(cat_tuning, spec, hp, one_thread):
    """The incumbent trains on the base's K splits with the base's seeds: it is the base's chosen trial, split by
    split, so inclusion holds on the mean; a base tuned on other splits stops the variant with one line."""
    tuning, records = cat_tuning
    base = {"dataset": "catvnoncat", "method": "baseline", "depth": 2}
    base.update(tune.select(tuning, spec, hp, 2, TUNE, split_records=records))
    variant = {"dataset": "catvnoncat", "method": "covariance", "depth": 2}
    variant.update(tune.select(tuning, {**spec, "aux": "covariance"}, hp, 2, TUNE, base=base, split_records=records))
    incumbent = next(t for t in variant["trials"] if t == {**t, **variant["nested"]["incumbent"]})
    chosen = next(t for t in base["trials"] if t["lr"] == base["chosen"]["lr"])
    assert incumbent["val_losses"] == chosen["val_losses"] and incumbent["val_loss"] == base["val_loss"]
    assert variant["val_loss"] <= base["val_loss"]
    tune.check_inclusion(variant, base)
    other = [records[1], records[0]]
    with pytest.raises(
        ValueError, match=r"^covariance at depth 2 tunes nested in baseline, whose tuning splits"
    ) as error:
        tune.select(
            tuning,
            {**spec, "aux": "covariance"},
            hp,
            2,
            TUNE,
            base={**base, "tuning_splits": other},
            split_records=records,
        )
    assert "\n" not in str(error.value)


def test_one_split_is_one_model_per_trial(spec, hp, splits):
    """A shared split (the official protocol) tunes on tune.seed alone: each trial's lists hold its one model's
    numbers, the same as the trial's own."""
    record = tune.select(splits, spec, hp, 2, TUNE)
    assert record["tune_seeds"] == [TUNE["seed"]]
    for trial in record["trials"]:
        assert trial["val_losses"] == [trial["val_loss"]] and trial["best_epochs"] == [trial["best_epoch"]]
