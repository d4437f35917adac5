"""Covariance's best shot (covbench.training.lambda_sweep, covbench.analysis.sweep, covbench.report.macros.best_shot): lambda = 0 is the base method, selection reads validation only, the
summary's verdicts, the config checks, the paper's sentences."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import merge
from scipy import stats

from covbench.analysis import sweep
from covbench.config import ConfigError, validate
from covbench.report.macros import best_shot
from covbench.training import lambda_sweep
from covbench.training.settings import JobSettings
from covbench.training.train import train
from covbench.training.vanishing import vanishing_index

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"alpha": 0.05, "equivalence_margin": {"mnist": 0.01, "catvnoncat": 0.05}}
SEEDS = (0, 1, 2, 3, 4)


def synthetic_sweep_runs(cells: dict | None = None, lambdas=(0.0, 1.0, 10.0, 100.0), seeds=SEEDS) -> pd.DataFrame:
    """A tidy sweep table. cells: (dataset, variant, depth) -> {lambda: (val_loss, test_accuracy)} for the lambdas
    given, the others a worse validation loss; each seed adds a small wobble, growing along the lambdas, so that
    paired differences have some spread."""
    cells = cells or {("mnist", "covariance", 4): {10.0: (0.2, 0.95)}, ("catvnoncat", "covariance", 4): {}}
    wobble = dict(zip(seeds, [0.001, -0.001, 0.0005, -0.0005, 0.0]))
    rows = []
    for (dataset, variant, depth), given in cells.items():
        for position, v in enumerate(lambdas):
            val_loss, accuracy = given.get(v, (1.0 + v / 1000, 0.9))
            for s in seeds:
                rows.append(
                    {
                        "dataset": dataset,
                        "variant": variant,
                        "base": "baseline",
                        "depth": depth,
                        "lr": 0.1,
                        "cov_lambda": v,
                        "seed": s,
                        "diverged": False,
                        "best_val_loss": val_loss + wobble[s],
                        "best_val_accuracy": 0.9,
                        "test_accuracy": accuracy + wobble[s] * (1 + position),
                        "vanishing_index_init": -depth / 2,
                        "vanishing_index_epoch1": -depth / 2 + np.log10(1 + v),
                        "test_train_ratio": 50 / 167 if dataset == "catvnoncat" else 0.0,
                    }
                )
    return pd.DataFrame(rows, columns=sweep.COLUMNS)


# --- training ---------------------------------------------------------------------------------------


def test_lambda_zero_trains_exactly_as_the_base_method_alone(splits, spec, hp):
    """lambda = 0 in the sweep's batch is the base (same seed, same lr): the same numbers; lambda > 0 is not."""
    hp.update(epochs=3, lr=0.5)
    variant = {**spec, "aux": "covariance"}
    cell = lambda_sweep.train_cell(splits, variant, hp, 3, [10.0, 0.0], [0, 1])
    assert cell.cov_lambda.tolist() == [0.0, 0.0, 10.0, 10.0] and cell.seed.tolist() == [0, 1, 0, 1]
    base = train(splits, spec, hp, 3, [0, 1])
    at_best = base.epochs.set_index(["model", "epoch"]).val_accuracy
    zero = cell[cell.cov_lambda == 0]
    assert zero.best_val_accuracy.tolist() == [at_best[m, e] for m, e in enumerate(base.best_epoch)]
    assert zero.test_accuracy.tolist() == base.test_accuracy.astype(float).tolist()
    torch.testing.assert_close(
        torch.tensor(zero.best_val_loss.to_numpy()),
        torch.tensor(base.best_val_loss, dtype=torch.float64),
        rtol=1e-6,
        atol=0,
    )
    index = vanishing_index(base.layer_stats.assign(dataset="", method="base", depth=3))
    for column in ("vanishing_index_init", "vanishing_index_epoch1"):
        np.testing.assert_allclose(zero[column], index[column], rtol=1e-6)
    assert not np.allclose(cell[cell.cov_lambda == 10].best_val_loss, zero.best_val_loss)


def test_run_trains_the_base_learning_rate_and_writes_the_tidy_table(splits, spec, hp, tmp_path):
    torch.save(splits, tmp_path / "data.pt")
    (tmp_path / "tune.json").write_text(json.dumps({"chosen": {"lr": 0.3}}))
    out = tmp_path / "cell.parquet"
    variant = {**spec, "aux": "covariance", "cov_lambda": 5.0}
    settings = JobSettings("mnist", "covariance", variant, hp, seeds=(3, 4))
    lambda_sweep.run(
        settings, 2, "baseline", [0, 1, 100], str(tmp_path / "data.pt"), str(tmp_path / "tune.json"), str(out)
    )
    table = pd.read_parquet(out)
    assert table.columns.tolist() == sweep.COLUMNS
    assert len(table) == 6 and set(table.lr) == {0.3} and sorted(set(table.cov_lambda)) == [0, 1, 100]
    assert set(table.variant) == {"covariance"} and set(table.base) == {"baseline"} and set(table.depth) == {2}
    assert table[["best_val_loss", "test_accuracy", "vanishing_index_epoch1"]].notna().all().all()


# --- selection and verdicts ----------------------------------------------------------------------------


def test_best_lambda_is_chosen_on_validation_loss_not_test_accuracy():
    cells = {("mnist", "covariance", 4): {1.0: (0.5, 0.99), 10.0: (0.3, 0.91)}}
    best = sweep.best_lambdas(synthetic_sweep_runs(cells)).set_index(sweep.CELL_KEYS).best_lambda
    assert best[("mnist", "covariance", 4)] == 10.0  # lowest validation loss, though lambda = 1 has the best test


def test_diverged_seed_disqualifies_a_lambda_and_ties_go_to_the_smaller_lambda():
    runs = synthetic_sweep_runs({("mnist", "covariance", 4): {1.0: (0.3, 0.9), 10.0: (0.3, 0.9), 100.0: (0.1, 0.9)}})
    runs.loc[(runs.cov_lambda == 100) & (runs.seed == 2), "diverged"] = True
    assert sweep.best_lambdas(runs).best_lambda.tolist() == [1.0]
    runs.loc[runs.cov_lambda == 1, "best_val_loss"] = np.nan  # a missing loss counts as infinite
    assert sweep.best_lambdas(runs).best_lambda.tolist() == [10.0]


def test_summary_gives_each_of_the_verdicts():
    cells = {
        ("mnist", "covariance", 4): {10.0: (0.2, 0.95)},  # +5 points, tight: beats
        ("mnist", "covariance", 16): {1.0: (0.2, 0.85)},  # -5 points: is beaten by
        ("mnist", "relu_he_covariance", 4): {100.0: (0.2, 0.9)},  # +0 points within the 1-point margin: equivalent
        ("catvnoncat", "covariance", 4): {1.0: (0.2, 0.91)},  # +1 point, noisy against a 5-point margin: inconclusive
        ("catvnoncat", "covariance", 16): {0.0: (0.1, 0.9)},  # the base wins on validation
    }
    runs = synthetic_sweep_runs(cells)
    noisy = (runs.dataset == "catvnoncat") & (runs.depth == 4) & (runs.cov_lambda == 1)
    runs.loc[noisy, "test_accuracy"] += np.array([0.08, -0.06, 0.05, -0.07, 0.02])
    summary = sweep.summarize(runs, SETTINGS).set_index(sweep.CELL_KEYS)
    assert summary.columns.tolist() == [c for c in sweep.SUMMARY_COLUMNS if c not in sweep.CELL_KEYS]
    verdicts = summary.verdict.to_dict()
    assert verdicts == {
        ("mnist", "covariance", 4): "beats",
        ("mnist", "covariance", 16): "is beaten by",
        ("mnist", "relu_he_covariance", 4): "is equivalent to",
        ("catvnoncat", "covariance", 4): "inconclusive",
        ("catvnoncat", "covariance", 16): sweep.ZERO_CHOSEN,
    }
    beats = summary.loc[("mnist", "covariance", 4)]
    assert beats.best_lambda == 10 and beats.difference == pytest.approx(0.05, abs=1e-3)
    assert beats.ci_low < beats.difference < beats.ci_high and beats.p_holm > beats.p_value  # Holm over the sweep
    zero = summary.loc[("catvnoncat", "covariance", 16)]
    assert zero.difference == 0 and np.isnan(zero.p_holm) and zero.test == "none"
    assert summary.margin.to_dict()[("catvnoncat", "covariance", 4)] == 0.05
    # four tested cells, a difference and an equivalence p-value each, in one Holm family
    assert summary.p_value.notna().sum() == 4 and (summary.family == sweep.FAMILY).all()


def test_sweep_on_per_seed_splits_runs_the_corrected_test():
    """Where each seed had its own split (cat/not-cat), the sweep's comparison is the corrected resampled t-test: the
    paired differences' variance times 1/J + n_test/n_train, J - 1 degrees of freedom, in the test, both TOST halves
    and the interval, computed here by hand; on MNIST's one split, the plain paired test."""
    cells = {("catvnoncat", "covariance", 4): {1.0: (0.2, 0.95)}, ("mnist", "covariance", 4): {1.0: (0.2, 0.95)}}
    runs = synthetic_sweep_runs(cells)
    chosen = (runs.dataset == "catvnoncat") & (runs.cov_lambda == 1)
    runs.loc[chosen, "test_accuracy"] += np.array([0.03, -0.02, 0.01, -0.01, 0.02])
    summary = sweep.summarize(runs, SETTINGS).set_index("dataset")
    a = runs[chosen].sort_values("seed").test_accuracy.to_numpy()
    b = runs[(runs.dataset == "catvnoncat") & (runs.cov_lambda == 0)].sort_values("seed").test_accuracy.to_numpy()
    d, J, ratio, delta = a - b, len(a), 50 / 167, 0.05
    se = d.std(ddof=1) * np.sqrt(1 / J + ratio)
    cat = summary.loc["catvnoncat"]
    assert (
        cat.corrected and cat.ci_method == "corrected paired t" and cat.variance_factor == pytest.approx(1 + J * ratio)
    )
    assert cat.se_difference == pytest.approx(se) and cat.df == J - 1
    assert cat.p_value == pytest.approx(2 * stats.t.sf(abs(d.mean() / se), J - 1))
    p_equivalence = max(stats.t.sf((d.mean() + delta) / se, J - 1), stats.t.cdf((d.mean() - delta) / se, J - 1))
    assert cat.p_equivalence == pytest.approx(p_equivalence)
    half = stats.t.ppf(0.975, J - 1) * se
    assert (cat.ci_low, cat.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    mnist = summary.loc["mnist"]
    assert not mnist.corrected and mnist.ci_method == "paired t" and mnist.variance_factor == 1


def test_collect_writes_runs_and_summary(tmp_path):
    runs = synthetic_sweep_runs()
    paths = []
    for i, (_, cell) in enumerate(runs.groupby(sweep.CELL_KEYS)):
        paths.append(str(tmp_path / f"cell{i}.parquet"))
        cell.to_parquet(paths[-1], index=False)
    sweep.collect(paths, str(tmp_path / "runs.parquet"), str(tmp_path / "summary.parquet"), SETTINGS)
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == len(runs)
    assert len(pd.read_parquet(tmp_path / "summary.parquet")) == 2
    sweep.collect([], str(tmp_path / "none.parquet"), str(tmp_path / "none_summary.parquet"), SETTINGS)
    assert pd.read_parquet(tmp_path / "none_summary.parquet").empty


# --- config --------------------------------------------------------------------------------------------


def test_default_quick_and_full_sweeps_are_valid(config):
    """The default grid sweeps nothing (its hour goes to 10 seeds); quick and full sweep variants with their bases."""
    lambda_sweep.validate(validate(config))
    assert lambda_sweep.bases(config) == {}
    for name, bases in (
        ("quick", {"covariance": "baseline"}),
        ("full", {"covariance": "baseline", "relu_he_covariance": "relu_he"}),
    ):
        merged = validate(merge(config, yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())))
        lambda_sweep.validate(merged)
        assert lambda_sweep.bases(merged) == bases


@pytest.mark.parametrize(
    "override, key, words",
    [
        ({"lambda_sweep": {"variants": ["bogus"]}}, "lambda_sweep.variants", "not a method of the grid"),
        ({"lambda_sweep": {"variants": ["relu_he"]}}, "lambda_sweep.variants", "not a covariance method"),
        (
            {
                "grid": {"methods": ["covariance", "relu_he", "relu_he_covariance"]},
                "lambda_sweep": {"variants": ["covariance"]},
            },
            "lambda_sweep.variants",
            "the base of 'covariance'",
        ),
        ({"lambda_sweep": {"depths": [16, 3]}}, "lambda_sweep.depths", "3 is not a grid depth"),
        ({"lambda_sweep": {"lambdas": [0.1, 1, 10]}}, "lambda_sweep.lambdas", "must include 0"),
    ],
)
def test_sweep_config_errors_name_the_key(config, override, key, words):
    with pytest.raises(ConfigError) as error:
        lambda_sweep.validate(validate(merge(config, override)))
    message = str(error.value)
    assert "\n" not in message and f"'{key}'" in message and words in message


@pytest.mark.parametrize(
    "override, key",
    [
        ({"lambda_sweep": {"lambdas": [0, -1]}}, "lambda_sweep.lambdas.1"),
        ({"lambda_sweep": {"seeds": [0]}}, "lambda_sweep.seeds"),
        ({"lambda_sweep": {"depth": [4]}}, "lambda_sweep"),
    ],
)
def test_sweep_schema_errors_name_the_key(config, override, key):
    with pytest.raises(ConfigError) as error:
        validate(merge(config, override))
    assert f"'{key}'" in str(error.value)


# --- the paper ---------------------------------------------------------------------------------------


def test_macros_state_each_cell_and_the_counts(config):
    cells = {
        ("mnist", "covariance", 16): {10.0: (0.2, 0.95)},
        ("catvnoncat", "relu_he_covariance", 16): {0.0: (0.1, 0.9)},
    }
    macros = best_shot.sweep_macros(config, sweep.summarize(synthetic_sweep_runs(cells), SETTINGS))
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in macros)
    sentence = macros["SweepCovarianceMnistDepthSixteen"]
    assert sentence.startswith(r"For \texttt{covariance} at depth 16 on MNIST the best $\lambda$ on validation is $10$")
    assert "differs by $+5.0$ percentage points" in sentence
    assert sentence.endswith(r"$\lambda = 10$ beats $\lambda = 0$.")
    assert macros["SweepReluHeCovarianceCatvnoncatDepthSixteen"].endswith(r"$\lambda = 0$ is chosen.")
    assert macros["SweepBeats"] == "1" and macros["SweepZeroChosen"] == "1" and macros["SweepCells"] == "2"
    depths = config["lambda_sweep"]["depths"]
    assert macros["SweepDepths"] == (
        f"depth {depths[0]}"
        if len(depths) == 1
        else "depths " + ", ".join(map(str, depths[:-1])) + f" and {depths[-1]}"
    )
    assert macros["SweepLambdas"].startswith("$0$, $0.01$")
    nothing = best_shot.sweep_macros(config, None)
    assert nothing["SweepSummary"] == "No covariance variant was swept." and nothing["SweepSentences"] == ""
