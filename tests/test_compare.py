"""Tests of covbench.compare: Holm by hand, bootstrap intervals, pairing, verdicts and degenerate cases."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from covbench.compare import (METRICS, bootstrap_ci, compare, compare_values, covariance_methods, holm, run,
                              verdict)

ACCURACY = METRICS["final_test_accuracy"]
VANISHING = METRICS["abs_vanishing_index_init"]


def by_seed(values, seeds=None) -> pd.Series:
    return pd.Series(values, index=pd.Index(seeds if seeds is not None else range(len(values)), name="seed"),
                     dtype=float)


def run_summary(accuracy: dict[str, list[float]], vanishing: dict[str, list[float]] | None = None,
                dataset: str = "mnist", depth: int = 8) -> pd.DataFrame:
    """Rows of the agreed run_summary for one (dataset, depth): method -> one value per seed."""
    rows = []
    for method, values in accuracy.items():
        for seed, value in enumerate(values):
            vi = vanishing[method][seed] if vanishing else -1.0 - 0.1 * seed
            rows.append({"dataset": dataset, "method": method, "depth": depth, "seed": seed, "diverged": False,
                         "final_test_accuracy": value, "vanishing_index_init": vi})
    return pd.DataFrame(rows)


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    assert holm(np.array([0.5, 0.9]))[1] == 1.0  # capped at 1


@pytest.mark.parametrize("paired", [True, False])
def test_bootstrap_interval_contains_point_estimate(paired):
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.9, 0.02, 5), rng.normal(0.85, 0.03, 5)
    low, high = bootstrap_ci(a, b, paired, np.random.default_rng(0))
    assert low <= a.mean() - b.mean() <= high
    assert low < high


def test_paired_t_test_when_same_seeds():
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.90, 0.91, 0.91]
    row = compare_values(by_seed(a), by_seed(b), ACCURACY)
    assert row["test"] == "paired t-test" and row["n_pairs"] == 4
    assert row["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert row["difference"] == pytest.approx(np.mean(a) - np.mean(b))


def test_welch_when_seeds_differ():
    a, b = by_seed([0.91, 0.93, 0.92], [0, 1, 2]), by_seed([0.90, 0.88, 0.91, 0.87], [0, 1, 2, 3])
    row = compare_values(a, b, ACCURACY)
    assert row["test"] == "Welch t-test" and row["n_pairs"] == 0
    assert row["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_diverged_nan_drops_the_pair():
    row = compare_values(by_seed([0.9, np.nan, 0.92, 0.95]), by_seed([0.8, 0.81, 0.83, 0.8]), ACCURACY)
    assert row["n_pairs"] == 3 and row["n_dropped"] == 2 and np.isfinite(row["p_value"])


@pytest.mark.parametrize("a, b, reason", [
    ([0.9], [0.8], "fewer than 2"),
    ([0.9, np.nan], [0.8, 0.7], "fewer than 2"),
    ([0.9, 0.8], [0.8, 0.7], "zero variance"),
    ([np.nan, np.nan], [np.nan, np.nan], "fewer than 2"),
])
def test_degenerate_cases_are_untested_not_errors(a, b, reason):
    table = compare(run_summary({"covariance": a, "baseline": b}), ["covariance"])
    row = table[table.metric == "final_test_accuracy"].iloc[0]
    assert np.isnan(row.p_value) and np.isnan(row.p_holm)
    assert row.verdict == "does not beat" and row.test == "none" and reason in row.reason


def test_verdicts_follow_sign_and_holm():
    assert verdict(0.05, 0.01, higher_is_better=True) == "beats"
    assert verdict(-0.05, 0.01, higher_is_better=True) == "is beaten by"
    assert verdict(0.05, 0.2, higher_is_better=True) == "does not beat"
    assert verdict(-0.5, 0.01, higher_is_better=False) == "beats"
    assert verdict(0.05, np.nan, higher_is_better=True) == "does not beat"


def test_vanishing_index_compares_distance_from_balance():
    """A vanishing (-5) and an exploding (+5) index are both worse than one near 0."""
    accuracy = {"covariance": [0.9, 0.91, 0.92, 0.9, 0.93], "baseline": [0.9, 0.92, 0.91, 0.9, 0.92],
                "residual": [0.9, 0.92, 0.91, 0.9, 0.92]}
    vanishing = {"covariance": [-0.1, 0.2, -0.05, 0.1, 0.0], "baseline": [-5.1, -4.8, -5.3, -5.0, -4.9],
                 "residual": [5.2, 4.9, 5.1, 5.0, 4.7]}
    table = compare(run_summary(accuracy, vanishing), ["covariance"])
    rows = table[table.metric == "abs_vanishing_index_init"].set_index("other_method")
    assert (rows.verdict == "beats").all()
    assert (rows.difference < 0).all()


def test_family_is_corrected_per_metric_and_table_is_tidy(tmp_path):
    rng = np.random.default_rng(0)
    frames = [run_summary({"covariance": list(rng.normal(0.95, 0.01, 5)), "covariance_pooled":
                           list(rng.normal(0.9, 0.01, 5)), "baseline": list(rng.normal(0.5, 0.01, 5))},
                          depth=depth) for depth in (2, 32)]
    pd.concat(frames).to_parquet(tmp_path / "run_summary.parquet")
    run(str(tmp_path / "run_summary.parquet"), str(tmp_path / "comparisons.parquet"),
        ["covariance", "covariance_pooled"], n_bootstrap=500)
    table = pd.read_parquet(tmp_path / "comparisons.parquet")
    # 2 depths x 2 variants x 2 others x 2 metrics
    assert len(table) == 16
    assert {"dataset", "depth", "method", "other_method", "metric", "difference", "ci_low", "ci_high", "n_pairs",
            "test", "p_value", "p_holm", "verdict", "reason"} <= set(table.columns)
    for metric, family in table.groupby("metric"):
        np.testing.assert_allclose(family.p_holm, holm(family.p_value.to_numpy()))
    accuracy = table[(table.metric == "final_test_accuracy") & (table.other_method == "baseline")]
    assert (accuracy.verdict == "beats").all()


def test_covariance_methods_read_from_specs():
    specs = {"baseline": {"aux": "none"}, "covariance": {"aux": "covariance"},
             "deep_supervision": {"aux": "deep_supervision"}, "pooled": {"aux": "covariance_pooled"}}
    assert covariance_methods(specs) == ["covariance", "pooled"]
