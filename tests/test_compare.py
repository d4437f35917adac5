"""Tests of covbench.analysis.compare: Holm and TOST by hand, bootstrap intervals, pairing, families, roles, four verdicts."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from covbench.analysis.compare import (
    COLUMNS,
    METRICS,
    REMEDY_COLUMNS,
    VERDICTS,
    compare,
    compare_values,
    covariance_methods,
    holm,
    identical_variants,
    learned_p,
    power_columns,
    remedies,
    run,
    t_interval,
    verdict,
)
from covbench.config import base_method

ACCURACY = METRICS["test_accuracy"]
SETTINGS = {
    "alpha": 0.05,
    "primary_opponents": ["base", "best_remedy"],
    "equivalence_margin": {"mnist": 0.01, "catvnoncat": 0.05},
    "vanishing_margin": 0.25,
}
SPECS = {
    "baseline": {"activation": "sigmoid", "init": "normal", "aux": "none"},
    "relu_he": {"activation": "relu", "init": "he", "aux": "none"},
    "tanh_xavier": {"activation": "tanh", "init": "xavier", "aux": "none"},
    "covariance": {"activation": "sigmoid", "init": "normal", "aux": "covariance"},
    "covariance_pooled": {"activation": "sigmoid", "init": "normal", "aux": "covariance_pooled", "cov_lambda": 3.0},
}


def by_seed(values, seeds=None) -> pd.Series:
    return pd.Series(
        values, index=pd.Index(seeds if seeds is not None else range(len(values)), name="seed"), dtype=float
    )


def run_summary(
    accuracy: dict[str, list[float]],
    validation: dict[str, float] | None = None,
    vanishing: dict[str, list[float]] | None = None,
    dataset: str = "mnist",
    depth: int = 8,
) -> pd.DataFrame:
    """Rows of the agreed run_summary for one (dataset, depth): method -> test accuracy per seed; `validation`:
    method -> its validation accuracy (every seed; default: its test accuracy)."""
    rows = []
    for method, values in accuracy.items():
        for seed, value in enumerate(values):
            vi = vanishing[method][seed] if vanishing else -1.0 - 0.1 * seed
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "depth": depth,
                    "seed": seed,
                    "diverged": False,
                    "collapsed": False,
                    "val_majority_rate": 0.1 if dataset == "mnist" else 0.6,
                    "test_accuracy": value,
                    "best_val_accuracy": (validation or {}).get(method, value),
                    "vanishing_index_init": -3.0 - 0.1 * seed,
                    "vanishing_index_epoch1": vi,
                }
            )
    return pd.DataFrame(rows)


def row_of(
    table: pd.DataFrame, other: str, metric: str = "test_accuracy", method: str = "covariance", depth: int | None = None
):
    rows = table[(table.method == method) & (table.other_method == other) & (table.metric == metric)]
    if depth is not None:
        rows = rows[rows.depth == depth]
    assert len(rows) == 1
    return rows.iloc[0]


# --- the statistics -------------------------------------------------------------------------------


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    assert holm(np.array([0.5, 0.9]))[1] == 1.0  # capped at 1


def test_interval_is_the_tests_own():
    """Paired: mean(d) -+ t_{J-1, 0.975} sd(d)/sqrt(J); Welch: its own se and df. So a 95% interval excludes 0 exactly
    when the two-sided test's p is below 0.05."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.9, 0.02, 5), rng.normal(0.85, 0.03, 5)
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert t_interval(a, b, True) == pytest.approx((d.mean() - half, d.mean() + half))
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert t_interval(a, b, False) == pytest.approx((welch.low, welch.high))
    for shift in np.linspace(-0.05, 0.05, 21):
        row = compare_values(by_seed(a + shift), by_seed(b), ACCURACY, 0.01)
        assert (row["ci_low"] > 0 or row["ci_high"] < 0) == (row["p_value"] < 0.05)
        assert row["ci_method"] == "paired t"


def test_paired_t_test_when_same_seeds():
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.90, 0.91, 0.91]
    row = compare_values(by_seed(a), by_seed(b), ACCURACY, 0.01)
    assert row["test"] == "paired t-test" and row["n_pairs"] == 4 and row["margin"] == 0.01
    assert row["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert row["difference"] == pytest.approx(np.mean(a) - np.mean(b))


def test_paired_tost_matches_hand_computation():
    """Two one-sided paired t-tests: t = (mean(d) + delta) / se against d > -delta and (mean(d) - delta) / se
    against d < +delta; the equivalence p-value is the larger one-sided p."""
    a = np.array([0.912, 0.905, 0.921, 0.917, 0.909])
    b = np.array([0.910, 0.909, 0.915, 0.913, 0.911])
    delta = 0.01
    d = a - b
    n, se = len(d), d.std(ddof=1) / np.sqrt(len(d))
    p_lower = stats.t.sf((d.mean() + delta) / se, n - 1)  # H0: d <= -delta
    p_upper = stats.t.cdf((d.mean() - delta) / se, n - 1)  # H0: d >= +delta
    row = compare_values(by_seed(a), by_seed(b), ACCURACY, delta)
    assert row["p_equivalence"] == pytest.approx(max(p_lower, p_upper), rel=1e-9)
    assert p_upper > p_lower  # the mean difference is positive: the upper bound is the binding one
    # a narrower margin makes equivalence harder to show
    assert compare_values(by_seed(a), by_seed(b), ACCURACY, 0.005)["p_equivalence"] > row["p_equivalence"]


def test_welch_tost_matches_hand_computation():
    a, b = np.array([0.91, 0.93, 0.92]), np.array([0.90, 0.88, 0.91, 0.87])
    delta = 0.05
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = a.mean() - b.mean()
    expected = max(stats.t.sf((diff + delta) / se, df), stats.t.cdf((diff - delta) / se, df))
    row = compare_values(by_seed(a, [0, 1, 2]), by_seed(b, [0, 1, 2, 3]), ACCURACY, delta)
    assert row["test"] == "Welch t-test" and row["n_pairs"] == 0
    assert row["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert row["p_equivalence"] == pytest.approx(expected, rel=1e-9)


def test_diverged_nan_drops_the_pair():
    row = compare_values(by_seed([0.9, np.nan, 0.92, 0.95]), by_seed([0.8, 0.81, 0.83, 0.8]), ACCURACY, 0.01)
    assert row["n_pairs"] == 3 and row["n_dropped"] == 2 and np.isfinite(row["p_value"])
    assert np.isfinite(row["p_equivalence"])


def test_verdict_reads_difference_first_then_equivalence():
    assert verdict(0.05, 0.01, 0.9, higher_is_better=True, alpha=0.05) == "beats"
    assert verdict(-0.05, 0.01, 0.9, higher_is_better=True, alpha=0.05) == "is beaten by"
    assert verdict(-0.5, 0.01, 0.9, higher_is_better=False, alpha=0.05) == "beats"
    assert verdict(0.001, 0.2, 0.01, higher_is_better=True, alpha=0.05) == "is equivalent to"
    assert verdict(0.001, 0.2, 0.06, higher_is_better=True, alpha=0.05) == "inconclusive"
    assert verdict(0.001, 0.2, 0.06, higher_is_better=True, alpha=0.1) == "is equivalent to"
    assert verdict(0.002, 0.01, 0.01, higher_is_better=True, alpha=0.05) == "beats"  # significant and small
    assert verdict(0.05, np.nan, np.nan, higher_is_better=True, alpha=0.05) == "inconclusive"


# --- the four verdicts on constructed data ---------------------------------------------------------


def test_four_verdicts_on_constructed_data():
    """Covariance against its base at four depths: clearly better, clearly worse, equal within the 1-point
    margin with a tight spread, and noisy."""
    noise = np.array([0.0, 0.001, -0.001, 0.0005, -0.0005])
    base = 0.90 + np.array([0.004, -0.003, 0.002, -0.001, 0.0])
    cases = {
        2: base + 0.05 + noise,  # clearly better
        4: base - 0.05 + noise,  # clearly worse
        8: base + 0.001 + noise,  # a tenth of a point, tight: equivalent
        16: base + np.array([0.04, -0.05, 0.03, -0.04, 0.01]),  # noisy: neither shown
    }
    frames = [
        run_summary({"covariance": list(covariance), "baseline": list(base)}, depth=depth)
        for depth, covariance in cases.items()
    ]
    table = compare(pd.concat(frames), SPECS, SETTINGS)
    verdicts = {depth: row_of(table, "baseline", depth=depth).verdict for depth in cases}
    assert verdicts == {2: "beats", 4: "is beaten by", 8: "is equivalent to", 16: "inconclusive"}
    equivalent = row_of(table, "baseline", depth=8)
    assert equivalent.p_equivalence_holm < 0.05 <= equivalent.p_holm and equivalent.margin == 0.01
    assert (table[table.metric == "test_accuracy"].family == "primary").all()


def test_catvnoncat_uses_its_own_margin():
    """The same +1-point difference (spread 1 point) is equivalent within cat/non-cat's 5 points, not within
    MNIST's 1 point, where it sits on the margin."""
    base = 0.70 + np.array([0.004, -0.003, 0.002, -0.001, 0.0])
    spread = np.array([0.01, -0.01, 0.015, -0.015, 0.0])
    verdicts, margins = {}, {}
    for dataset in ("mnist", "catvnoncat"):
        summary = run_summary({"covariance": list(base + 0.01 + spread), "baseline": list(base)}, dataset=dataset)
        row = row_of(compare(summary, SPECS, SETTINGS), "baseline")
        verdicts[dataset], margins[dataset] = row.verdict, row.margin
        assert row.difference == pytest.approx(0.01) and row.p_holm > 0.05
    assert margins == {"mnist": 0.01, "catvnoncat": 0.05}
    assert verdicts == {"mnist": "inconclusive", "catvnoncat": "is equivalent to"}


@pytest.mark.parametrize(
    "a, b, reason",
    [
        ([0.9], [0.8], "fewer than 2"),
        ([0.9, np.nan], [0.8, 0.7], "fewer than 2"),
        ([0.9, 0.8], [0.8, 0.7], "zero variance"),
        ([np.nan, np.nan], [np.nan, np.nan], "fewer than 2"),
    ],
)
def test_degenerate_cases_are_untested_and_inconclusive(a, b, reason):
    table = compare(run_summary({"covariance": a, "baseline": b}), SPECS, SETTINGS)
    row = row_of(table, "baseline")
    assert np.isnan(row.p_value) and np.isnan(row.p_holm)
    assert np.isnan(row.p_equivalence) and np.isnan(row.p_equivalence_holm)
    assert row.verdict == "inconclusive" and row.test == "none" and reason in row.reason


def test_a_variant_that_chose_zero_is_identical_read_from_its_tuning_record():
    """Identity comes from the tuning records (lambda = 0 chosen), never from equal numbers: the same accuracies
    without that record are untested (zero variance), and a variant that chose 0 is "identical" even where its runs'
    numbers differ in the last digits (another CPU); it is no hypothesis, so Holm does not count it."""
    same = [0.91, 0.93, 0.90, 0.94, 0.92]
    chosen = pd.DataFrame(
        {
            "dataset": ["mnist", "mnist"],
            "method": ["covariance", "baseline"],
            "depth": [8, 8],
            "cov_lambda": [0.0, np.nan],
            "aux_weight": [np.nan, np.nan],
            "nested_in": ["baseline", ""],
        }
    )
    identical = identical_variants(chosen, SPECS)
    assert identical == {("mnist", 8, "covariance")}
    assert identical_variants(chosen.assign(cov_lambda=[0.01, np.nan]), SPECS) == set()
    equal_numbers = row_of(compare(run_summary({"covariance": same, "baseline": same}), SPECS, SETTINGS), "baseline")
    assert equal_numbers.verdict == "inconclusive" and equal_numbers.test == "none"
    nearly = [v + 1e-7 * k for k, v in enumerate(same)]
    table = compare(run_summary({"covariance": nearly, "baseline": same}), SPECS, SETTINGS, identical=identical)
    row = row_of(table, "baseline")
    assert row.verdict == "is identical to" and row.test == "identical runs" and np.isnan(row.p_holm)
    assert row_of(table, "baseline", metric="abs_vanishing_index_epoch1").verdict == "is identical to"


def test_two_collapsed_methods_are_both_collapsed_never_equivalent():
    """Two methods that each collapsed on most seeds score the constant predictor's 0.60 on every per-seed test set:
    equal numbers, "both collapsed", no hypothesis; one collapsed seed of five changes nothing of that."""
    collapsed = [0.6, 0.6, 0.6, 0.6, 0.62]
    summary = run_summary({"covariance": collapsed, "baseline": [0.6] * 5}, dataset="catvnoncat")
    summary["collapsed"] = [True, True, True, True, False] + [True] * 5
    row = row_of(compare(summary, SPECS, SETTINGS), "baseline")
    assert row.verdict == "both collapsed" and np.isnan(row.p_value) and np.isnan(row.p_holm)
    assert row.collapsed_method == 4 and row.collapsed_other == 5
    summary["collapsed"] = [True, True, False, False, False] + [True] * 5  # covariance learned on 3 of 5
    assert row_of(compare(summary, SPECS, SETTINGS), "baseline").verdict != "both collapsed"


# --- families and roles ----------------------------------------------------------------------------


def test_base_is_the_same_composition_without_the_force():
    assert base_method("covariance", SPECS) == "baseline"
    assert base_method("covariance_pooled", SPECS) == "baseline"  # a fixed lambda is not part of the network
    assert base_method("covariance", {k: v for k, v in SPECS.items() if k != "baseline"}) is None


def test_best_remedy_is_chosen_on_validation_even_when_test_disagrees():
    """relu_he has the best test accuracy, tanh_xavier the best validation accuracy: tanh_xavier is the best
    remedy, in the primary family; relu_he is only secondary."""
    rng = np.random.default_rng(0)
    accuracy = {
        "covariance": list(0.90 + rng.normal(0, 0.01, 5)),
        "baseline": list(0.50 + rng.normal(0, 0.01, 5)),
        "relu_he": list(0.97 + rng.normal(0, 0.01, 5)),
        "tanh_xavier": list(0.80 + rng.normal(0, 0.01, 5)),
        "covariance_pooled": list(0.99 + rng.normal(0, 0.001, 5)),
    }
    validation = {"covariance": 0.90, "baseline": 0.5, "relu_he": 0.85, "tanh_xavier": 0.86, "covariance_pooled": 0.99}
    table = compare(run_summary(accuracy, validation), SPECS, SETTINGS)
    accuracy_rows = table[(table.metric == "test_accuracy") & (table.method == "covariance")]
    roles = accuracy_rows.set_index("other_method").role.to_dict()
    assert roles == {
        "baseline": "base",
        "tanh_xavier": "best_remedy",
        "relu_he": "other",
        "covariance_pooled": "other",
    }  # a covariance variant is never the best remedy
    assert set(table.best_remedy) == {"tanh_xavier"}
    primary = table[table.family == "primary"]
    assert set(zip(primary.method, primary.other_method)) == {
        ("covariance", "baseline"),
        ("covariance", "tanh_xavier"),
        ("covariance_pooled", "baseline"),
        ("covariance_pooled", "tanh_xavier"),
    }
    assert (primary.metric == "test_accuracy").all()


def test_base_that_is_also_the_best_remedy_is_one_primary_comparison():
    accuracy = {
        "covariance": [0.9, 0.91, 0.92, 0.9, 0.93],
        "baseline": [0.9, 0.92, 0.91, 0.9, 0.92],
        "relu_he": [0.8, 0.82, 0.81, 0.8, 0.82],
    }
    table = compare(run_summary(accuracy), SPECS, SETTINGS)
    primary = table[table.family == "primary"]
    assert list(primary.other_method) == ["baseline"] and list(primary.role) == ["base"]
    assert list(primary.best_remedy) == ["baseline"]
    # still primary when only the best remedy is a primary opponent: the base is that remedy
    only_best = compare(run_summary(accuracy), SPECS, {**SETTINGS, "primary_opponents": ["best_remedy"]})
    assert list(only_best[only_best.family == "primary"].other_method) == ["baseline"]


def test_primary_opponents_come_from_config():
    accuracy = {
        "covariance": [0.9, 0.91, 0.92, 0.9, 0.93],
        "baseline": [0.5, 0.52, 0.51, 0.5, 0.52],
        "relu_he": [0.95, 0.92, 0.91, 0.9, 0.92],
    }
    table = compare(run_summary(accuracy), SPECS, {**SETTINGS, "primary_opponents": ["base"]})
    primary = table[table.family == "primary"]
    assert list(primary.other_method) == ["baseline"]
    assert row_of(table, "relu_he").role == "best_remedy" and row_of(table, "relu_he").family == "secondary"


def test_holm_runs_within_the_primary_family_only():
    """Adding methods (secondary comparisons) leaves every primary p-value as it was; each family's adjustment is
    Holm over the union of its difference and equivalence p-values."""
    rng = np.random.default_rng(1)
    accuracy = {"covariance": list(0.90 + rng.normal(0, 0.01, 5)), "baseline": list(0.89 + rng.normal(0, 0.01, 5))}
    small = compare(run_summary(accuracy, {"covariance": 0.9, "baseline": 0.9}), SPECS, SETTINGS)
    more = {**accuracy, **{name: list(0.5 + rng.normal(0, 0.01, 5)) for name in ("relu_he", "tanh_xavier")}}
    large = compare(
        run_summary(more, {"covariance": 0.9, "baseline": 0.9, "relu_he": 0.5, "tanh_xavier": 0.5}),
        SPECS,
        SETTINGS,
    )
    columns = ["other_method", "p_value", "p_holm", "p_equivalence", "p_equivalence_holm", "verdict"]
    pd.testing.assert_frame_equal(
        small[small.family == "primary"][columns].reset_index(drop=True),
        large[large.family == "primary"][columns].reset_index(drop=True),
    )
    assert len(large[large.family == "secondary"]) > len(small[small.family == "secondary"])
    for _, family in large.groupby("holm_family"):
        adjusted = holm(np.concatenate([family.p_value, family.p_equivalence]))
        np.testing.assert_allclose(family.p_holm, adjusted[: len(family)])
        np.testing.assert_allclose(family.p_equivalence_holm, adjusted[len(family) :])
    primary = large[large.family == "primary"].iloc[0]
    # two hypotheses (difference and equivalence) of one comparison: Holm's smaller one is doubled
    assert min(primary.p_holm, primary.p_equivalence_holm) == pytest.approx(
        min(1.0, 2 * min(primary.p_value, primary.p_equivalence))
    )


def test_vanishing_index_compares_distance_from_balance_over_epoch1():
    """A vanishing (-5) and an exploding (+5) index over epoch 1 are both worse than one near 0; the index at
    initialization (equal here) is not what is compared; the vanishing index is always secondary."""
    accuracy = {
        "covariance": [0.9, 0.91, 0.92, 0.9, 0.93],
        "baseline": [0.9, 0.92, 0.91, 0.9, 0.92],
        "relu_he": [0.9, 0.92, 0.91, 0.9, 0.92],
    }
    vanishing = {
        "covariance": [-0.1, 0.2, -0.05, 0.1, 0.0],
        "baseline": [-5.1, -4.8, -5.3, -5.0, -4.9],
        "relu_he": [5.2, 4.9, 5.1, 5.0, 4.7],
    }
    table = compare(run_summary(accuracy, vanishing=vanishing), SPECS, SETTINGS)
    rows = table[table.metric == "abs_vanishing_index_epoch1"].set_index("other_method")
    assert (rows.verdict == "beats").all() and (rows.difference < 0).all()
    assert (rows.family == "secondary").all() and (rows.margin == 0.25).all()


def test_table_is_tidy_and_written(tmp_path):
    rng = np.random.default_rng(0)
    frames = [
        run_summary(
            {
                "covariance": list(rng.normal(0.95, 0.01, 5)),
                "covariance_pooled": list(rng.normal(0.9, 0.01, 5)),
                "baseline": list(rng.normal(0.5, 0.01, 5)),
            },
            depth=depth,
        )
        for depth in (2, 32)
    ]
    pd.concat(frames).to_parquet(tmp_path / "run_summary.parquet")
    chosen = pd.DataFrame(columns=["dataset", "method", "depth", "cov_lambda", "aux_weight", "nested_in"])
    chosen.to_parquet(tmp_path / "chosen.parquet")
    paths = [str(tmp_path / f"{name}.parquet") for name in ("run_summary", "chosen", "comparisons", "remedies")]
    run(*paths, SPECS, SETTINGS)
    table = pd.read_parquet(tmp_path / "comparisons.parquet")
    assert list(table.columns) == COLUMNS
    # 2 depths x 2 variants x 2 others x 2 metrics
    assert len(table) == 16
    assert set(table.verdict) <= set(VERDICTS)
    written = pd.read_parquet(tmp_path / "remedies.parquet")
    assert list(written.columns) == REMEDY_COLUMNS and set(written.method) == {"baseline"}
    accuracy = table[(table.metric == "test_accuracy") & (table.other_method == "baseline")]
    assert (accuracy.verdict == "beats").all() and (accuracy.family == "primary").all()


def test_covariance_methods_read_from_specs():
    specs = {
        "baseline": {"aux": "none"},
        "covariance": {"aux": "covariance"},
        "deep_supervision": {"aux": "deep_supervision"},
        "pooled": {"aux": "covariance_pooled"},
    }
    assert covariance_methods(specs) == ["covariance", "pooled"]


def test_diverged_runs_stay_in_the_test_and_every_sentence_and_table_counts_them():
    """A diverged run enters the comparison at the accuracy it had when it stopped (chance here), and the verdict
    sentence, the verdict table and the accuracy table of its cell say how many diverged."""
    from covbench.analysis import aggregate
    from covbench.report import prose, tables

    summary = run_summary({"covariance": [0.9, 0.1, 0.91, 0.92], "baseline": [0.8, 0.81, 0.83, 0.8]})
    summary.loc[(summary.method == "covariance") & (summary.seed == 1), "diverged"] = True
    row = row_of(compare(summary, {m: SPECS[m] for m in ("baseline", "covariance")}, SETTINGS), "baseline")
    assert row.n_method == 4 and row.diverged_method == 1 and row.diverged_other == 0
    assert row.difference == pytest.approx(np.mean([0.9, 0.1, 0.91, 0.92]) - np.mean([0.8, 0.81, 0.83, 0.8]))
    assert (
        r"1 run of \texttt{covariance} diverged (counted at the outcome it had when it stopped)"
        in prose.verdict_sentence(row)
    )
    assert "diverged 1 / 0" in tables.verdict_lines(row, 100, 1)[-1]
    methods = summary.assign(collapsed=False, epochs_to_threshold=np.nan, vanishing_index_init=-1.0)
    cells = aggregate.method_summary(methods)
    counts = aggregate.diverged_counts(cells).set_index("method")
    assert counts.loc["covariance", "n_diverged"] == 1 and counts.loc["baseline", "n_diverged"] == 0
    latex = tables.accuracy_table(cells, "mnist", ["baseline", "covariance"], "tables")
    assert r"1/4 diverged" in latex and r"\texttt{covariance} at depth 8 (1 of 4)" in latex
    assert "No run diverged." in tables.accuracy_table(cells, "mnist", ["baseline"], "tables")


def test_power_columns_say_what_each_comparison_could_have_found():
    """docs/design.md#power: at the family's strictest Holm level (alpha over its 4 hypotheses here) the minimum
    detectable difference is (t_{1 - level/2} + t_{0.8}) x se, and equivalence within the margin is reachable when
    TOST at that level could succeed at an observed difference of 0."""
    table = pd.DataFrame(
        {
            "family": ["primary", "primary", "secondary"],
            "p_value": [0.1, 0.2, 0.3],
            "p_equivalence": [0.4, 0.5, np.nan],
            "se_difference": [0.01, 0.002, 0.01],
            "df": [9.0, 9.0, 4.0],
            "margin": [0.01, 0.01, 0.01],
        }
    )
    out = power_columns(table, alpha=0.05)
    assert out.holm_level.tolist() == [0.05 / 4, 0.05 / 4, 0.05]
    level = 0.05 / 4
    expected = (stats.t.ppf(1 - level / 2, 9) + stats.t.ppf(0.8, 9)) * np.array([0.01, 0.002])
    np.testing.assert_allclose(out.min_detectable_difference[:2], expected)
    assert out.equivalence_reachable.tolist() == [False, True, False]  # 2.6 se = 0.026 > 0.01; 0.0052 < 0.01


def test_the_table_has_the_power_of_every_comparison():
    table = compare(
        run_summary({"baseline": [0.90, 0.91, 0.92], "covariance": [0.91, 0.93, 0.92]}),
        SPECS,
        SETTINGS,
    )
    row = table[(table.other_method == "baseline") & (table.metric == "test_accuracy")].iloc[0]
    d = np.array([0.01, 0.02, 0.0])
    assert row.se_difference == pytest.approx(d.std(ddof=1) / np.sqrt(3)) and row.df == 2
    assert row.min_detectable_difference > abs(row.difference) and not row.equivalence_reachable


# --- the constant predictor and the split per seed ------------------------------------------


def with_splits(summary: pd.DataFrame, n_train: int = 168, n_test: int = 50, val_majority: float = 0.6):
    """The run_summary columns of a split per seed: each run's split sizes and majority-class rates."""
    return summary.assign(
        n_train=float(n_train),
        n_val=41.0,
        n_test=float(n_test),
        val_majority_rate=val_majority,
        test_majority_rate=0.66,
        split_sha256=[f"split of seed {seed}" for seed in summary.seed],  # the same seed, the same split
    )


def test_a_remedy_that_learned_nothing_is_never_the_best_remedy():
    """relu_he and tanh_xavier answer the validation data no better than its majority class: neither is eligible, so
    the cell has no best-remedy comparison (only the base is primary); with a lower majority rate tanh_xavier is."""
    accuracy = {
        "covariance": [0.70, 0.72, 0.71, 0.69, 0.73],
        "baseline": [0.60, 0.61, 0.62, 0.60, 0.61],
        "relu_he": [0.66, 0.66, 0.66, 0.66, 0.66],
        "tanh_xavier": [0.64, 0.65, 0.66, 0.64, 0.65],
    }
    validation = {"covariance": 0.75, "baseline": 0.5, "relu_he": 0.62, "tanh_xavier": 0.63}
    summary = with_splits(run_summary(accuracy, validation, dataset="catvnoncat"), val_majority=0.63)
    table = compare(summary, SPECS, SETTINGS)
    assert table.best_remedy.isna().all()
    primary = table[table.family == "primary"]
    assert set(primary.role) == {"base"} and set(primary.other_method) == {"baseline"}
    assert table.val_majority_rate.iloc[0] == pytest.approx(0.63) and table.test_majority_rate.iloc[0] == 0.66
    eligible = compare(summary.assign(val_majority_rate=0.6), SPECS, SETTINGS)
    assert set(eligible.best_remedy) == {"tanh_xavier"}


CELLS = [("catvnoncat", 168, 50), ("mnist", 50_000, 10_000)]  # (dataset, n_train, n_test)


def test_corrected_resampled_t_test_matches_hand_computation():
    """Nadeau & Bengio's correction on cat/not-cat (split per seed): variance of the paired differences times
    1/J + n_test/n_train, J - 1 degrees of freedom, in the difference test, both TOST halves, the interval (a t
    interval, not the bootstrap) and the standard error the power columns use; MNIST (official split) unchanged."""
    a = np.array([0.80, 0.76, 0.84, 0.78, 0.82, 0.79])
    b = np.array([0.74, 0.75, 0.77, 0.70, 0.79, 0.72])
    mnist = {"covariance": list(a), "baseline": list(b)}
    specs = {m: SPECS[m] for m in ("baseline", "covariance")}
    summary = pd.concat(
        [with_splits(run_summary(mnist, dataset=d), n_train=n, n_test=t) for d, n, t in CELLS], ignore_index=True
    )
    protocols = {"catvnoncat": "per_seed", "mnist": "official"}
    table = compare(summary, specs, SETTINGS, split_protocols=protocols)
    cat = row_of(table[table.dataset == "catvnoncat"], "baseline")

    d, J, ratio, delta = a - b, len(a), 50 / 168, 0.05
    se = np.sqrt(np.var(d, ddof=1) * (1 / J + ratio))
    t = d.mean() / se
    assert cat.corrected and cat.ci_method == "corrected paired t" and cat.test_train_ratio == pytest.approx(ratio)
    assert cat.variance_factor == pytest.approx(1 + J * ratio)
    assert cat.se_difference == pytest.approx(se) and cat.df == J - 1
    assert cat.p_value == pytest.approx(2 * stats.t.sf(abs(t), J - 1))
    p_lower = stats.t.sf((d.mean() + delta) / se, J - 1)  # H0: d <= -delta
    p_upper = stats.t.cdf((d.mean() - delta) / se, J - 1)  # H0: d >= +delta
    assert cat.p_equivalence == pytest.approx(max(p_lower, p_upper))
    half = stats.t.ppf(0.975, J - 1) * se
    assert (cat.ci_low, cat.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    plain = stats.ttest_rel(a, b).pvalue
    assert cat.p_value > plain  # the correction is less confident than the plain test

    uncorrected = compare(summary, specs, SETTINGS)  # no declaration: both plain
    mnist_rows = table[table.dataset == "mnist"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mnist_rows, uncorrected[uncorrected.dataset == "mnist"].reset_index(drop=True))
    row = row_of(mnist_rows, "baseline")
    assert not row.corrected and row.variance_factor == 1 and row.ci_method == "paired t"
    assert row.p_value == pytest.approx(plain)


def test_split_per_seed_without_split_sizes_is_an_error():
    summary = run_summary({"covariance": [0.9, 0.8, 0.85], "baseline": [0.7, 0.75, 0.8]}, dataset="catvnoncat")
    with pytest.raises(ValueError, match="split per seed"):
        compare(summary, SPECS, SETTINGS, split_protocols={"catvnoncat": "per_seed"})


def test_one_primary_family_per_dataset():
    """cat/not-cat's primary hypotheses never enter MNIST's Holm correction: MNIST's adjusted p-values are those of
    MNIST alone, and each dataset's primary rows are one Holm family."""
    rng = np.random.default_rng(4)
    mnist = run_summary(
        {"covariance": list(0.9 + rng.normal(0, 0.01, 5)), "baseline": list(0.89 + rng.normal(0, 0.01, 5))}
    )
    cat = run_summary(
        {"covariance": list(0.7 + rng.normal(0, 0.03, 5)), "baseline": list(0.66 + rng.normal(0, 0.03, 5))},
        dataset="catvnoncat",
    )
    both = compare(pd.concat([mnist, cat], ignore_index=True), SPECS, SETTINGS)
    alone = compare(mnist, SPECS, SETTINGS)
    columns = ["p_holm", "p_equivalence_holm", "holm_level", "verdict"]
    pd.testing.assert_frame_equal(
        both[(both.dataset == "mnist") & (both.family == "primary")][columns].reset_index(drop=True),
        alone[alone.family == "primary"][columns].reset_index(drop=True),
    )
    primary = both[both.family == "primary"]
    assert set(zip(primary.dataset, primary.holm_family)) == {
        ("mnist", "primary_mnist"),
        ("catvnoncat", "primary_catvnoncat"),
    }
    assert set(both[both.family == "secondary"].holm_family) == {"secondary"}


def test_a_best_remedy_must_have_learned_beyond_noise():
    """Eligible only when most seeds did not collapse and the best validation accuracy beats the same validation
    data's majority rate by a one-sided paired t-test over seeds: a net one lucky image above the constant predictor
    on a single seed (2.4 points of 41 images) is not, nor one that collapsed on 3 of 5 seeds."""
    majority = np.array([0.61, 0.59, 0.61, 0.6, 0.59])
    lucky = majority + np.array([1 / 41, 0, 0, 0, 0])
    assert learned_p(lucky, majority) == pytest.approx(
        stats.ttest_1samp(lucky - majority, 0, alternative="greater").pvalue
    )
    assert learned_p(lucky, majority) > 0.05
    learned = majority + np.array([0.05, 0.08, 0.02, 0.07, 0.04])
    assert learned_p(learned, majority) < 0.05
    assert learned_p(majority, majority) == 1.0 and learned_p(majority + 0.1, majority) == 0.0
    accuracy = {m: [0.7] * 5 for m in ("covariance", "baseline", "relu_he", "tanh_xavier")}
    summary = run_summary(accuracy, dataset="catvnoncat").assign(val_majority_rate=np.tile(majority, 4))
    summary["best_val_accuracy"] = np.concatenate([learned, lucky + 0.3, learned + 0.02, lucky])
    collapsed = {"baseline": [False] * 5, "relu_he": [True, True, True, False, False], "tanh_xavier": [False] * 5}
    for method, flags in collapsed.items():
        summary.loc[summary.method == method, "collapsed"] = flags
    table = remedies(summary, SPECS, 0.05).set_index("method")
    assert table.eligible.to_dict() == {"baseline": True, "relu_he": False, "tanh_xavier": False}
    assert table.n_collapsed.to_dict() == {"baseline": 0, "relu_he": 3, "tanh_xavier": 0}
    assert table.best.to_dict() == {"baseline": True, "relu_he": False, "tanh_xavier": False}
    assert table.p_learned["tanh_xavier"] == pytest.approx(learned_p(lucky, majority))
    tied = summary.assign(best_val_accuracy=np.tile(learned, 4), collapsed=False)
    assert remedies(tied, SPECS, 0.05).query("best").method.tolist() == ["baseline"]  # a tie goes to the first name
    assert set(compare(summary, SPECS, SETTINGS).best_remedy) == {"baseline"}


def test_a_significant_difference_inside_the_margin_is_marked():
    """Half a point better, very tight: significant, inside MNIST's 1-point margin: beats, within the margin."""
    base = 0.90 + np.array([0.004, -0.003, 0.002, -0.001, 0.0])
    noise = np.array([0.0, 0.0002, -0.0002, 0.0001, -0.0001])
    table = compare(run_summary({"covariance": list(base + 0.005 + noise), "baseline": list(base)}), SPECS, SETTINGS)
    row = row_of(table, "baseline")
    assert row.verdict == "beats" and row.within_margin
    wide = compare(run_summary({"covariance": list(base + 0.05 + noise), "baseline": list(base)}), SPECS, SETTINGS)
    assert row_of(wide, "baseline").verdict == "beats" and not row_of(wide, "baseline").within_margin


def test_per_seed_pairs_on_shared_seeds_and_on_the_same_splits():
    """Each seed its own split: methods with different seeds pair on the seeds both ran, corrected (never an
    uncorrected Welch test); seed s of two methods on different splits stops with one line naming both runs."""
    a = [0.80, 0.76, 0.84, 0.78, 0.82, 0.79]
    b = [0.74, 0.75, 0.77, 0.70]
    summary = with_splits(run_summary({"covariance": a, "baseline": b}, dataset="catvnoncat"))
    summary["split_sha256"] = [f"split{seed}" for seed in summary.seed]
    protocols = {"catvnoncat": "per_seed"}
    row = row_of(compare(summary, SPECS, SETTINGS, split_protocols=protocols), "baseline")
    assert row.test == "paired t-test" and row.corrected and row.n_pairs == 4 and row.n_dropped == 2
    d = np.array(a[:4]) - np.array(b)
    assert row.se_difference == pytest.approx(d.std(ddof=1) * np.sqrt(1 / 4 + 50 / 168))
    summary.loc[(summary.method == "baseline") & (summary.seed == 2), "split_sha256"] = "official"
    message = (
        "results/runs/catvnoncat/covariance/depth8/seed2 and results/runs/catvnoncat/baseline/depth8/seed2 ran on "
        "different splits"
    )
    with pytest.raises(ValueError, match=message):
        compare(summary, SPECS, SETTINGS, split_protocols=protocols)
