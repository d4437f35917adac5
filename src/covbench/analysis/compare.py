"""Covariance variants against the other methods at each (dataset, depth): differences, intervals, verdicts.

Two families of comparisons (docs/design.md#families), declared in the config's `compare` block before any run:

- **primary**: each covariance variant (a method whose `aux` starts with "covariance") against its base (the same
  composition with `aux: none`, `base_method`) and against the best standard remedy at that (dataset, depth) (the
  eligible non-covariance method with the highest mean best-checkpoint validation accuracy over seeds, `remedies`:
  chosen without test data), on best-checkpoint test accuracy. Which of the two opponents are primary is
  `compare.primary_opponents`. Column `role` says which the other method is (`base`, `best_remedy`, `other`);
  a base that is also the best remedy is one comparison, with role `base`.
- **secondary**: every other comparison: the variant against every other method on best-checkpoint test accuracy, and
  against every other method on the absolute vanishing index averaged over epoch 1 (at initialization a
  covariance variant *is* its base network, so the index at init cannot tell them apart).

A diverged run stays in its method's values at the outcome it had when it stopped (dropping it would flatter an
unstable method); `diverged_method` and `diverged_other` count them, and every sentence and table cell built from
the row says so.

Per comparison, on the values by seed (paired when both methods ran the same seeds, each method alone otherwise):
the difference of means (variant minus other) with its test's own 95% interval (a paired t interval, Welch's when
unpaired: an interval and its verdict never disagree; unadjusted for multiplicity); a two-sided t-test of no
difference (`p_value`); and the two one-sided tests (TOST) of equivalence within the margin delta (`margin`, from
config): H0 d <= -delta against d > -delta, and H0 d >= +delta against d < +delta, same t-test. Equivalence needs
both one-sided nulls rejected (an intersection-union test), so its p-value is the larger of the two,
`p_equivalence`, a level-alpha test of H0 |d| >= delta.

Resampled splits (docs/design.md#the-corrected-test): on a dataset whose config declares `split: per_seed`
(`split_protocols`), every seed draws its own train/test split, so the seeds' training and test sets overlap and the
paired t-test over J seeds is too confident. There a comparison pairs seed s of both methods (on the seeds both ran; the
runs' split digests must agree, else one line naming both runs) and uses the corrected resampled t-test (Nadeau & Bengio
2003; Bouckaert & Frank 2004): the variance of the paired differences is multiplied by 1/J + n_test/n_train in place of
1/J, with J - 1 degrees of freedom, in the difference test, both TOST halves, the minimum detectable difference and the
interval (`ci_method`). n_test/n_train is read from the runs' split records, and a run without one is an error;
`corrected` says where the correction applied and `variance_factor` by how much it multiplies the plain test's
variance, 1 + J n_test/n_train (1 where it did not apply).

A best remedy must have learned, beyond noise (`remedies`, the one place it is decided; written to
remedies.parquet for figures and sentences): a remedy is eligible at a (dataset, depth) when most of its seeds did not
collapse and its best validation accuracy beats the majority-class rate of the same validation data by a one-sided
paired t-test over seeds at alpha (`p_learned`); the eligible remedy with the highest mean validation accuracy is the
best. A cell with no eligible remedy has no best-remedy comparison (`best_remedy` None). The cell's mean majority
rates ride along in `val_majority_rate` and `test_majority_rate`.

Two labels come from the runs, not from the numbers: a variant whose tuning chose its hyperparameter at 0 is its base
(same spec, same trial) and "is identical to" it (`identical_variants`, from the tuning records); two methods that
each collapsed on most seeds score the class prior alike and are "both collapsed", never "equivalent". Neither is a
hypothesis, so neither counts in Holm.

Holm: within one Holm family (`holm_family`), the m difference p-values and the m equivalence p-values are adjusted
together as one set of 2m hypotheses (NaN, i.e. untestable, entries do not count). Both kinds of claim end up in the
verdicts, so this bounds the chance of any false verdict of the family, a false "beats"/"is beaten by" or a false "is
equivalent to", by alpha. It is conservative: of a comparison's two null hypotheses (d = 0, |d| >= delta) at most one
is true. The primary family is one Holm family per dataset; the secondary family's p-values never enter a primary
adjustment, and the reverse. The recurrent track (docs/design.md#the-recurrent-track; variants with a `cell`, the
sequence length in `depth`) asks its own question, so its comparisons form their own two families, `recurrent_primary`
and `recurrent_secondary`, with the same roles.

Verdicts, oriented so that "beats" always means "better" (higher test accuracy, or an |index| closer to 0):
`beats` / `is beaten by` when the Holm-adjusted difference p is below alpha (by the sign of the difference;
`within_margin` when the difference is smaller than the margin: true, and of no practical weight), else `is
equivalent to` when the Holm-adjusted equivalence p is below alpha, else `inconclusive` (no test possible included:
`reason` says why); `is identical to` and `both collapsed` as above.

    comparisons = compare(run_summary, specs, config["compare"])
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from covbench import atomic
from covbench.config import AUX_HYPERPARAMETER, base_method, covariance_methods

CI_LEVEL = 0.95
IDENTICAL = "is identical to"
BOTH_COLLAPSED = "both collapsed"
VERDICTS = ("beats", "is beaten by", "is equivalent to", IDENTICAL, BOTH_COLLAPSED, "inconclusive")
FAMILIES = ("primary", "secondary", "recurrent_primary", "recurrent_secondary")
COLUMNS = [
    "dataset",
    "depth",
    "method",
    "other_method",
    "metric",
    "family",
    "holm_family",
    "role",
    "best_remedy",
    "val_majority_rate",
    "test_majority_rate",
    "difference",
    "ci_low",
    "ci_high",
    "margin",
    "n_method",
    "n_other",
    "n_pairs",
    "n_dropped",
    "diverged_method",
    "diverged_other",
    "collapsed_method",
    "collapsed_other",
    "test",
    "p_value",
    "p_holm",
    "p_equivalence",
    "p_equivalence_holm",
    "verdict",
    "within_margin",
    "reason",
    "se_difference",
    "df",
    "corrected",
    "test_train_ratio",
    "variance_factor",
    "ci_method",
    "holm_level",
    "min_detectable_difference",
    "equivalence_reachable",
]
PER_SEED = "per_seed"  # config datasets.<d>.split: each seed draws its own split (the corrected test applies)
IDENTICAL_RUNS = "identical runs"  # the `test` of a variant whose tuning chose its hyperparameter at 0: its base's runs
POWER = 0.8  # of the minimum detectable difference (docs/design.md#power)
REMEDY_COLUMNS = [
    "dataset",
    "depth",
    "method",
    "n_seeds",
    "n_collapsed",
    "mean_val_accuracy",
    "val_majority_rate",
    "p_learned",
    "eligible",
    "best",
]


@dataclass(frozen=True)
class Metric:
    column: str  # run_summary column
    absolute: bool  # compare |value|
    higher_is_better: bool
    primary: bool  # may be in the primary family (against a primary opponent)
    collapse_matters: bool  # two methods collapsed on most seeds are "both collapsed" here, not compared
    margin: Callable[[dict, str], float]  # (config's compare block, dataset) -> equivalence margin, metric units


METRICS = {
    "test_accuracy": Metric(
        "test_accuracy",
        absolute=False,
        higher_is_better=True,
        primary=True,
        collapse_matters=True,
        margin=lambda settings, dataset: settings["equivalence_margin"][dataset],
    ),
    "abs_vanishing_index_epoch1": Metric(
        "vanishing_index_epoch1",
        absolute=True,
        higher_is_better=False,
        primary=False,
        collapse_matters=False,
        margin=lambda settings, dataset: settings["vanishing_margin"],
    ),
}


# --- who is compared with whom ------------------------------------------------------------------------


def majority_rate(cell: pd.DataFrame, which: str = "val") -> float:
    """Mean `{which}_majority_rate` over one (dataset, depth)'s runs (NaN when the runs do not record it)."""
    column = f"{which}_majority_rate"
    return float(cell[column].astype(float).mean()) if column in cell else np.nan


def mostly_collapsed(runs: pd.DataFrame) -> bool:
    """Whether more than half of one method's runs ended collapsed (training loss at the class-prior entropy)."""
    return "collapsed" in runs and 2 * int(runs.collapsed.astype(bool).sum()) > len(runs)


def learned_p(accuracy: np.ndarray, majority: np.ndarray) -> float:
    """One-sided paired t-test over seeds of H0 mean(accuracy - majority) <= 0 against > 0: did the remedy's best
    validation accuracy beat the constant predictor of the same validation data beyond noise
    (docs/design.md#the-best-remedy)? Differences equal to rounding: 0 when all are positive, 1 otherwise; NaN with
    fewer than two seeds."""
    keep = np.isfinite(accuracy) & np.isfinite(majority)
    d = accuracy[keep] - majority[keep]
    if len(d) < 2:
        return np.nan
    if constant(d):
        return 0.0 if d.min() > 1e-6 else 1.0
    return float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)


def remedies_of_cell(cell: pd.DataFrame, covariance: list[str], alpha: float) -> pd.DataFrame:
    """Every standard remedy of one (dataset, depth) and whether it may be the best remedy: most of its seeds did
    not collapse and its best validation accuracy beats the validation majority rate (`learned_p` below alpha). The
    eligible one with the highest mean validation accuracy (ties to the first name) is the cell's `best`."""
    rows = []
    for method, runs in cell[~cell.method.isin(covariance)].groupby("method", sort=True):
        accuracy = runs.best_val_accuracy.to_numpy(float)
        majority = runs.val_majority_rate.to_numpy(float) if "val_majority_rate" in runs else np.full(len(runs), np.nan)
        p = learned_p(accuracy, majority)
        mean = float(np.nanmean(accuracy)) if np.isfinite(accuracy).any() else np.nan
        rows.append(
            {
                "dataset": cell.dataset.iloc[0],
                "depth": int(cell.depth.iloc[0]),
                "method": method,
                "n_seeds": len(runs),
                "n_collapsed": int(runs.collapsed.astype(bool).sum()) if "collapsed" in runs else 0,
                "mean_val_accuracy": mean,
                "val_majority_rate": float(np.nanmean(majority)) if np.isfinite(majority).any() else np.nan,
                "p_learned": p,
                "eligible": bool(np.isfinite(mean) and not mostly_collapsed(runs) and p < alpha),
            }
        )
    remedies = pd.DataFrame(rows, columns=REMEDY_COLUMNS[:-1])
    if remedies.empty:  # only covariance variants ran here
        return remedies.assign(best=pd.Series(dtype=bool))
    eligible = remedies[remedies.eligible].sort_values(["mean_val_accuracy", "method"], ascending=[False, True])
    return remedies.assign(best=remedies.method == (eligible.method.iloc[0] if len(eligible) else None))


def remedies(run_summary: pd.DataFrame, specs: dict[str, dict], alpha: float) -> pd.DataFrame:
    """remedies_of_cell of every (dataset, depth): the one place the best remedy is decided."""
    covariance = covariance_methods(specs)
    cells = [remedies_of_cell(cell, covariance, alpha) for _, cell in run_summary.groupby(["dataset", "depth"])]
    return pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(columns=REMEDY_COLUMNS)


def decided_best_remedy(comparisons: pd.DataFrame, dataset: str, depth: int) -> str | None:
    """The best remedy the verdicts used at (dataset, depth) (comparisons' `best_remedy`), for every figure and
    sentence that names it; None where no remedy was eligible or no comparison was made."""
    rows = comparisons.best_remedy[(comparisons.dataset == dataset) & (comparisons.depth == depth)].dropna()
    return str(rows.iloc[0]) if len(rows) else None


def test_train_ratio(runs: pd.DataFrame) -> float:
    """n_test / n_train of the runs' split records (every seed's split has the same sizes). A run without them is an
    error, never skipped: its dataset is split per seed, so the corrected test needs them."""
    sizes = runs[["n_test", "n_train"]].astype(float) if {"n_test", "n_train"} <= set(runs.columns) else None
    missing = runs if sizes is None else runs[~np.isfinite(sizes.n_test) | ~np.isfinite(sizes.n_train)]
    if len(missing):
        run = missing.iloc[0]
        raise ValueError(
            f"{run.dataset} is split per seed (config datasets.{run.dataset}.split) but the run {run_name(run)} "
            "records no split sizes (n_test, n_train): rerun its training job"
        )
    return float((sizes.n_test / sizes.n_train).median())


def run_name(run, seed: int | None = None) -> str:
    """results/runs/... folder of one run (a run_summary row, or one indexed by seed with `seed` given)."""
    seed = int(run.seed) if seed is None else int(seed)
    return f"results/runs/{run.dataset}/{run.method}/depth{int(run.depth)}/seed{seed}"


def check_same_splits(method_runs: pd.DataFrame, other_runs: pd.DataFrame) -> None:
    """Seed s of two methods (their runs indexed by seed) is a pair only where both ran on the same split (its
    digest, `split_sha256`): else one line naming both runs."""
    for seed in method_runs.index.intersection(other_runs.index):
        a, b = method_runs.loc[seed], other_runs.loc[seed]
        for run in (a, b):
            if not isinstance(run.get("split_sha256"), str):
                raise ValueError(
                    f"{run_name(run, seed)} records no split digest, but its dataset is split per seed: retrain it "
                    "with a producer that draws the seed's split through covbench.data.splits.seed_data"
                )
        if a.split_sha256 != b.split_sha256:
            raise ValueError(
                f"{run_name(a, seed)} and {run_name(b, seed)} ran on different splits ({str(a.split_sha256)[:12]} "
                f"vs {str(b.split_sha256)[:12]}): retrain the one whose producer does not draw the seed's split "
                "through covbench.data.splits.seed_data"
            )


def identical_variants(chosen: pd.DataFrame, specs: dict[str, dict]) -> set[tuple[str, int, str]]:
    """(dataset, depth, variant) where the variant's nested tuning chose its hyperparameter at 0: it then is its base
    (same spec, same trial, docs/design.md#identity-and-collapse), read from the tuning records, never from equal
    accuracies."""
    identical = set()
    for row in chosen.itertuples():
        name = AUX_HYPERPARAMETER.get(specs.get(row.method, {}).get("aux"))
        if row.nested_in and name and getattr(row, name) == 0:
            identical.add((row.dataset, int(row.depth), row.method))
    return identical


def roles_of(other: str, base: str | None, best_remedy: str | None) -> list[str]:
    """Every role `other` plays for a variant: ["base"], ["best_remedy"], both (a base that is also the best
    remedy: one comparison), or ["other"]. The table's `role` is the first."""
    return [role for role, name in (("base", base), ("best_remedy", best_remedy)) if other == name] or ["other"]


# --- one comparison -----------------------------------------------------------------------------------


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in the family."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p_values, np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    order = finite[np.argsort(p_values[finite], kind="stable")]
    m = len(order)
    scaled = p_values[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def aligned_values(
    method: pd.Series, other: pd.Series, pair_shared: bool = False
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Values by seed -> (a, b, paired). Paired when both ran the same seeds, or, with `pair_shared` (each seed its
    own split: an unpaired test would ignore that the seeds' splits overlap), on the seeds both ran. Non-finite
    values (no result, or an infinite vanishing index) are dropped, with their partner when paired."""
    shared = method.index.intersection(other.index)
    paired = set(method.index) == set(other.index) or pair_shared
    if paired:
        both = pd.concat([method.loc[shared], other.loc[shared]], axis=1, keys=["a", "b"]).sort_index()
        both = both[np.isfinite(both.a) & np.isfinite(both.b)]
        return both.a.to_numpy(float), both.b.to_numpy(float), True
    a, b = method.to_numpy(float), other.to_numpy(float)
    return a[np.isfinite(a)], b[np.isfinite(b)], False


def constant(values: np.ndarray) -> bool:
    """Equal up to float32 rounding (accuracies arrive as float32 fractions)."""
    return np.ptp(values) <= 1e-6 * max(1.0, np.abs(values).max())


def degenerate_reason(a: np.ndarray, b: np.ndarray, paired: bool) -> str:
    """Why no test is possible, or "" when the t-test is defined."""
    if min(len(a), len(b)) < 2:
        return "fewer than 2 seeds with a finite value" + (" in both methods" if paired else " in a method")
    if paired and constant(a - b):
        return "zero variance of the paired differences"
    if not paired and constant(a) and constant(b):
        return "zero variance in both methods"
    return ""


def t_test(
    a: np.ndarray, b: np.ndarray, paired: bool, shift: float = 0.0, alternative: str = "two-sided", ratio: float = 0.0
) -> float:
    """p-value of H0 mean(a) - mean(b) = shift (paired t-test or Welch's), against `alternative` ("greater":
    the difference exceeds shift, "less": it falls short of it). A paired test with ratio = n_test/n_train > 0 is
    the corrected resampled t-test: the standard error of standard_error(..., ratio), J - 1 degrees of freedom."""
    if paired and ratio > 0:
        se, df = standard_error(a, b, paired, ratio)
        t = (np.mean(a - b) - shift) / se
        tails = {"two-sided": 2 * stats.t.sf(abs(t), df), "greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}
        return float(tails[alternative])
    if paired:
        return float(stats.ttest_1samp(a - b, shift, alternative=alternative).pvalue)
    return float(stats.ttest_ind(a - shift, b, equal_var=False, alternative=alternative).pvalue)


def tost(a: np.ndarray, b: np.ndarray, paired: bool, margin: float, ratio: float = 0.0) -> float:
    """Equivalence p-value (two one-sided tests): the larger of p(H0 d <= -margin) and p(H0 d >= +margin)."""
    return max(t_test(a, b, paired, -margin, "greater", ratio), t_test(a, b, paired, margin, "less", ratio))


def compare_values(
    method: pd.Series,
    other: pd.Series,
    metric: Metric,
    margin: float,
    ratio: float = 0.0,
    identical: bool = False,
    both_collapsed: bool = False,
) -> dict:
    """One comparison: difference of means, its test's own interval, and the (unadjusted) difference and TOST
    p-values. ratio = n_test/n_train > 0: each seed has its own split, so the comparison pairs on the seeds both ran
    and is corrected (module docstring). `identical`: the variant's tuning chose its base (no test: the same runs);
    `both_collapsed`: both methods collapsed on most seeds (no test: two constant predictors are not "equivalent")."""
    a, b, paired = aligned_values(method, other, pair_shared=ratio > 0)
    corrected = bool(paired and ratio > 0)
    ratio = ratio if corrected else 0.0
    n_dropped = len(method) + len(other) - len(a) - len(b)
    if metric.absolute:
        a, b = np.abs(a), np.abs(b)
    reason = degenerate_reason(a, b, paired)
    row = {
        "difference": float(a.mean() - b.mean()) if len(a) and len(b) else np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "margin": float(margin),
        "n_method": len(a),
        "n_other": len(b),
        "n_pairs": len(a) if paired else 0,
        "n_dropped": n_dropped,
        "test": "none",
        "p_value": np.nan,
        "p_equivalence": np.nan,
        "reason": reason,
        "se_difference": np.nan,
        "df": np.nan,
        "corrected": corrected,
        "test_train_ratio": ratio if corrected else np.nan,
        "variance_factor": 1 + len(a) * ratio,
        "ci_method": "corrected paired t" if corrected else "paired t" if paired else "Welch t",
    }
    if min(len(a), len(b)) >= 2:
        row["se_difference"], row["df"] = standard_error(a, b, paired, ratio)
        row["ci_low"], row["ci_high"] = t_interval(a, b, paired, ratio)
    if identical:
        row.update(test=IDENTICAL_RUNS, reason="its tuning chose the hyperparameter at 0: its base's runs")
    elif both_collapsed:
        row["reason"] = "both methods collapsed on most seeds"
    elif not reason:
        row["test"] = "paired t-test" if paired else "Welch t-test"
        row["p_value"] = t_test(a, b, paired, ratio=ratio)
        row["p_equivalence"] = tost(a, b, paired, margin, ratio)
    return row


def standard_error(a: np.ndarray, b: np.ndarray, paired: bool, ratio: float = 0.0) -> tuple[float, float]:
    """(standard error of mean(a) - mean(b), degrees of freedom) of the paired t-test, or of Welch's. Paired with
    ratio = n_test/n_train: the corrected resampled t-test's, sd(d) sqrt(1/J + ratio) (ratio 0: the plain one)."""
    if paired:
        return float(np.std(a - b, ddof=1) * np.sqrt(1 / len(a) + ratio)), float(len(a) - 1)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va + vb > 0 else len(a) + len(b) - 2
    return float(np.sqrt(va + vb)), float(df)


def t_interval(
    a: np.ndarray, b: np.ndarray, paired: bool, ratio: float = 0.0, level: float = CI_LEVEL
) -> tuple[float, float]:
    """The interval of the comparison's own test, so that an interval and its verdict never disagree: mean(a) -
    mean(b) -+ t x its standard error (paired; corrected with ratio > 0; Welch's when unpaired). Zero spread: the
    point itself."""
    se, df = standard_error(a, b, paired, ratio)
    half = stats.t.ppf((1 + level) / 2, df) * se if se > 0 else 0.0
    d = float(np.mean(a) - np.mean(b))
    return d - half, d + half


def power_columns(table: pd.DataFrame, alpha: float, power: float = POWER) -> pd.DataFrame:
    """What each comparison could have found (docs/design.md#power), at its family's strictest Holm level alpha / m (m:
    the family's difference and equivalence hypotheses; the level a hypothesis meets when no other is rejected):
    min_detectable_difference, the true difference a two-sided test at that level finds with probability `power`
    given the observed spread, (t_{1 - level/2} + t_{power}) x se; equivalence_reachable, whether TOST at that level
    could show equivalence within the margin had the observed difference been 0 (t_{1 - level} x se < margin)."""
    table = table.assign(holm_level=np.nan, min_detectable_difference=np.nan, equivalence_reachable=False)
    for rows in table.groupby("holm_family" if "holm_family" in table else "family").groups.values():
        hypotheses = int(table.loc[rows, "p_value"].notna().sum() + table.loc[rows, "p_equivalence"].notna().sum())
        table.loc[rows, "holm_level"] = alpha / max(hypotheses, 1)
    df, se, level = table["df"].to_numpy(float), table["se_difference"].to_numpy(float), table.holm_level.to_numpy()
    defined = np.isfinite(df) & np.isfinite(se) & (df > 0)
    with np.errstate(invalid="ignore"):
        critical = np.where(defined, stats.t.ppf(1 - level / 2, np.where(defined, df, 1)), np.nan)
        one_sided = np.where(defined, stats.t.ppf(1 - level, np.where(defined, df, 1)), np.nan)
        beta = np.where(defined, stats.t.ppf(power, np.where(defined, df, 1)), np.nan)
    table["min_detectable_difference"] = (critical + beta) * se
    table["equivalence_reachable"] = defined & (one_sided * se < table.margin.to_numpy(float))
    return table


def verdict(difference: float, p_holm: float, p_equivalence_holm: float, higher_is_better: bool, alpha: float) -> str:
    """One of VERDICTS from the Holm-adjusted p-values: a shown difference first, then a shown equivalence."""
    if np.isfinite(p_holm) and p_holm < alpha:
        better = difference > 0 if higher_is_better else difference < 0
        return "beats" if better else "is beaten by"
    if np.isfinite(p_equivalence_holm) and p_equivalence_holm < alpha:
        return "is equivalent to"
    return "inconclusive"


# --- the table ----------------------------------------------------------------------------------------


def holm_family(family: str, dataset: str) -> str:
    """The set of hypotheses one Holm correction runs over: one primary family per dataset (each dataset asks its own
    question, and cat/not-cat's unreachable hypotheses must not dilute MNIST's), the other families whole."""
    return f"{family}_{dataset}" if family == "primary" else family


def adjust(table: pd.DataFrame) -> pd.DataFrame:
    """p_holm and p_equivalence_holm: Holm over the union of a Holm family's difference and equivalence p-values
    (`holm_family`; a table without it, the lambda sweep's, is one family per `family`)."""
    table = table.assign(p_holm=np.nan, p_equivalence_holm=np.nan)
    groups = "holm_family" if "holm_family" in table else "family"
    for rows in table.groupby(groups).groups.values():
        adjusted = holm(np.concatenate([table.loc[rows, "p_value"], table.loc[rows, "p_equivalence"]]))
        table.loc[rows, "p_holm"] = adjusted[: len(rows)]
        table.loc[rows, "p_equivalence_holm"] = adjusted[len(rows) :]
    return table


def labelled(table: pd.DataFrame, metrics: dict[str, Metric], alpha: float) -> pd.DataFrame:
    """verdict and within_margin from the adjusted p-values; identical runs and both-collapsed pairs by their rows."""
    table["verdict"] = [
        IDENTICAL
        if test == IDENTICAL_RUNS
        else BOTH_COLLAPSED
        if reason == "both methods collapsed on most seeds"
        else verdict(d, p, q, metrics[m].higher_is_better, alpha)
        for d, p, q, m, test, reason in zip(
            table.difference, table.p_holm, table.p_equivalence_holm, table.metric, table.test, table.reason
        )
    ]
    directional = table.verdict.isin(["beats", "is beaten by"])
    table["within_margin"] = directional & (table.difference.abs() < table.margin)
    return table


def compare(
    run_summary: pd.DataFrame,
    specs: dict[str, dict],
    settings: dict,
    metrics: dict[str, Metric] = METRICS,
    split_protocols: dict[str, str] | None = None,
    identical: set[tuple[str, int, str]] = frozenset(),
    remedy_table: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The comparisons table: one row per (dataset, depth, covariance variant, other method, metric).

    `specs`: the grid's methods (name -> composition); `settings`: the config's `compare` block;
    `split_protocols`: dataset -> its config's `split` ("per_seed": the corrected test; missing: "official");
    `identical`: (dataset, depth, variant) whose tuning chose its base (identical_variants); `remedy_table`:
    remedies(run_summary, ...) when already made.
    """
    covariance = covariance_methods(specs)
    if remedy_table is None:
        remedy_table = remedies(run_summary, specs, settings["alpha"])
    best_of = remedy_table[remedy_table.best].set_index(["dataset", "depth"]).method
    rows = []
    for (dataset, depth), cell in run_summary.groupby(["dataset", "depth"], sort=True):
        by_method = {name: runs.set_index("seed") for name, runs in cell.groupby("method")}
        best = best_of.get((dataset, depth))
        per_seed = (split_protocols or {}).get(dataset) == PER_SEED
        for method in [m for m in covariance if m in by_method]:
            base = base_method(method, specs)
            track = "recurrent_" if "cell" in specs[method] else ""
            for other in [m for m in by_method if m != method]:
                roles = roles_of(other, base, best)
                pair = cell[cell.method.isin([method, other])]
                ratio = test_train_ratio(pair) if per_seed else 0.0
                if per_seed:
                    check_same_splits(by_method[method], by_method[other])
                same_runs = other == base and (dataset, int(depth), method) in identical
                collapsed = mostly_collapsed(by_method[method]) and mostly_collapsed(by_method[other])
                for name, metric in metrics.items():
                    primary = metric.primary and bool(set(roles) & set(settings["primary_opponents"]))
                    family = track + ("primary" if primary else "secondary")
                    values = compare_values(
                        by_method[method][metric.column],
                        by_method[other][metric.column],
                        metric,
                        metric.margin(settings, dataset),
                        ratio,
                        identical=same_runs,
                        both_collapsed=collapsed and metric.collapse_matters,
                    )
                    rows.append(
                        {
                            "dataset": dataset,
                            "depth": int(depth),
                            "method": method,
                            "other_method": other,
                            "metric": name,
                            "family": family,
                            "holm_family": holm_family(family, dataset),
                            "role": roles[0],
                            "best_remedy": best,
                            "val_majority_rate": majority_rate(cell, "val"),
                            "test_majority_rate": majority_rate(cell, "test"),
                            **values,
                            # diverged runs stay in, at the outcome they had when they stopped: say how many
                            "diverged_method": int(by_method[method].diverged.sum()),
                            "diverged_other": int(by_method[other].diverged.sum()),
                            "collapsed_method": collapsed_count(by_method[method]),
                            "collapsed_other": collapsed_count(by_method[other]),
                        }
                    )
    derived = (
        "p_holm",
        "p_equivalence_holm",
        "verdict",
        "within_margin",
        "holm_level",
        "min_detectable_difference",
        "equivalence_reachable",
    )
    table = adjust(pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in derived]))
    table = labelled(table, metrics, settings["alpha"])
    return power_columns(table, settings["alpha"])[COLUMNS]


def collapsed_count(runs: pd.DataFrame) -> int:
    return int(runs.collapsed.astype(bool).sum()) if "collapsed" in runs else 0


def run(
    run_summary_path: str,
    chosen_path: str,
    out_path: str,
    remedies_path: str,
    specs: dict[str, dict],
    settings: dict,
    split_protocols: dict[str, str] | None = None,
) -> None:
    """comparisons.parquet and remedies.parquet (every remedy's eligibility; the best remedy of each cell, the one
    figures and sentences read)."""
    run_summary = atomic.read_parquet(run_summary_path)
    identical = identical_variants(atomic.read_parquet(chosen_path), specs)
    remedy_table = remedies(run_summary, specs, settings["alpha"])
    table = compare(
        run_summary, specs, settings, split_protocols=split_protocols, identical=identical, remedy_table=remedy_table
    )
    atomic.write_parquet(table, out_path)
    atomic.write_parquet(remedy_table, remedies_path)
