"""Covariance variants against the other methods at each (dataset, depth): differences, intervals, four verdicts.

Two families of comparisons (DESIGN section 7), declared in the config's `compare` block before any run:

- **primary**: each covariance variant (a method whose `aux` starts with "covariance") against its base (the same
  composition with `aux: none`, `base_method`) and against the best standard remedy at that (dataset, depth) (the
  non-covariance method with the highest mean best-checkpoint validation accuracy over seeds, `best_by_validation`:
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
the difference of means (variant minus other) with a bootstrap 95% interval; a two-sided t-test of no difference
(`p_value`: paired t-test, or Welch's); and the two one-sided tests (TOST) of equivalence within the margin
delta (`margin`, from config): H0 d <= -delta against d > -delta, and H0 d >= +delta against d < +delta, same
t-test. Equivalence needs both one-sided nulls rejected (an intersection-union test), so its p-value is the
larger of the two, `p_equivalence`, a level-alpha test of H0 |d| >= delta.

Resampled splits (DESIGN section 7): on a dataset whose config declares `split: per_seed` (`split_protocols`), every
seed draws its own train/test split, so the seeds' training and test sets overlap and the paired t-test over J seeds
is too confident. There a paired comparison uses the corrected resampled t-test (Nadeau & Bengio 2003; Bouckaert &
Frank 2004): the variance of the paired differences is multiplied by 1/J + n_test/n_train in place of 1/J, with
J - 1 degrees of freedom, in the difference test, both TOST halves, the minimum detectable difference and the
interval, which is then the corrected t interval, not the bootstrap (`ci_method`). n_test/n_train is read from the
runs' split records; `corrected` says where the correction applied and `variance_factor` by how much it multiplies
the plain test's variance, 1 + J n_test/n_train (1 where it did not apply).

A best remedy must have learned: a remedy whose mean validation accuracy is not above the cell's majority-class rate
on validation (mean `val_majority_rate` of the cell's runs) is a constant predictor and never the best remedy; a cell
with no eligible remedy has no best-remedy comparison (`best_remedy` None). The cell's mean majority rates ride
along in `val_majority_rate` and `test_majority_rate`.

Holm: within one family, the m difference p-values and the m equivalence p-values are adjusted together as one
set of 2m hypotheses (NaN, i.e. untestable, entries do not count). Both kinds of claim end up in the verdicts,
so this bounds the chance of any false verdict of the family, a false "beats"/"is beaten by" or a false "is
equivalent to", by alpha (adjusting each kind on its own would allow up to 2 alpha). It is conservative: of a
comparison's two null hypotheses (d = 0, |d| >= delta) at most one is true. The secondary family's p-values never
enter the primary adjustment, and the reverse. The recurrent track (DESIGN section 8; variants with a `cell`, the
sequence length in `depth`) asks its own question, so its comparisons form their own two families,
`recurrent_primary` and `recurrent_secondary`, with the same roles.

Verdicts, oriented so that "beats" always means "better" (higher test accuracy, or an |index| closer to 0):
`beats` / `is beaten by` when the Holm-adjusted difference p is below alpha (by the sign of the difference),
else `is equivalent to` when the Holm-adjusted equivalence p is below alpha, else `inconclusive` (no test
possible included: `reason` says why). A difference can be significant and inside the margin at once; the
verdict is then the directional one and `p_equivalence_holm` shows the equivalence.

    comparisons = compare(run_summary, specs, config["compare"])
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from covbench.analysis.aggregate import best_by_validation
from covbench.config import base_method, covariance_methods

N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95
VERDICTS = ("beats", "is beaten by", "is equivalent to", "inconclusive")
FAMILIES = ("primary", "secondary", "recurrent_primary", "recurrent_secondary")
COLUMNS = [
    "dataset",
    "depth",
    "method",
    "other_method",
    "metric",
    "family",
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
    "test",
    "p_value",
    "p_holm",
    "p_equivalence",
    "p_equivalence_holm",
    "verdict",
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
IDENTICAL_RUNS = "identical runs"  # the test of two sets of runs that are the same numbers
POWER = 0.8  # of the minimum detectable difference (DESIGN section 7)


@dataclass(frozen=True)
class Metric:
    column: str  # run_summary column
    absolute: bool  # compare |value|
    higher_is_better: bool
    primary: bool  # may be in the primary family (against a primary opponent)
    margin: Callable[[dict, str], float]  # (config's compare block, dataset) -> equivalence margin, metric units


METRICS = {
    "test_accuracy": Metric(
        "test_accuracy",
        absolute=False,
        higher_is_better=True,
        primary=True,
        margin=lambda settings, dataset: settings["equivalence_margin"][dataset],
    ),
    "abs_vanishing_index_epoch1": Metric(
        "vanishing_index_epoch1",
        absolute=True,
        higher_is_better=False,
        primary=False,
        margin=lambda settings, dataset: settings["vanishing_margin"],
    ),
}


# --- who is compared with whom ------------------------------------------------------------------------


def majority_rate(cell: pd.DataFrame, which: str = "val") -> float:
    """Mean `{which}_majority_rate` over one (dataset, depth)'s runs (NaN when the runs do not record it)."""
    column = f"{which}_majority_rate"
    return float(cell[column].astype(float).mean()) if column in cell else np.nan


def best_remedy_of_cell(cell: pd.DataFrame, covariance: list[str]) -> str | None:
    """The best standard remedy among one (dataset, depth)'s runs: highest mean validation accuracy at the best
    checkpoint, above the cell's majority-class rate on validation; None when no remedy is eligible."""
    remedies = cell[~cell.method.isin(covariance)]
    return best_by_validation(remedies.groupby("method")["best_val_accuracy"].mean(), majority_rate(cell))


def test_train_ratio(runs: pd.DataFrame) -> float:
    """n_test / n_train of the runs' split records (their median: every seed's split has the same sizes)."""
    if not {"n_test", "n_train"} <= set(runs.columns):
        return np.nan
    return float((runs.n_test.astype(float) / runs.n_train.astype(float)).median())


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


def bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    paired: bool,
    rng: np.random.Generator,
    n_bootstrap: int = N_BOOTSTRAP,
    level: float = CI_LEVEL,
) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b): seeds resampled as pairs when paired, per method otherwise."""
    if paired:
        d = a - b
        means = d[rng.integers(0, len(d), (n_bootstrap, len(d)))].mean(1)
    else:
        means = a[rng.integers(0, len(a), (n_bootstrap, len(a)))].mean(1) - b[
            rng.integers(0, len(b), (n_bootstrap, len(b)))
        ].mean(1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def aligned_values(method: pd.Series, other: pd.Series) -> tuple[np.ndarray, np.ndarray, bool]:
    """Values by seed -> (a, b, paired). Paired when both ran the same seeds; non-finite values (no result,
    or an infinite vanishing index) are dropped, with their partner when paired."""
    paired = set(method.index) == set(other.index)
    if paired:
        both = pd.concat([method, other], axis=1, keys=["a", "b"]).sort_index()
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
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    ratio: float = 0.0,
) -> dict:
    """One comparison: difference of means, its interval, and the (unadjusted) difference and TOST p-values.
    ratio = n_test/n_train > 0: the seeds' splits overlap, a paired comparison is corrected (module docstring)."""
    a, b, paired = aligned_values(method, other)
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
        "ci_method": "corrected t" if corrected else "bootstrap",
    }
    if min(len(a), len(b)) >= 2 and corrected:
        row["ci_low"], row["ci_high"] = corrected_t_interval(a, b, ratio)
    elif min(len(a), len(b)) >= 2:
        row["ci_low"], row["ci_high"] = bootstrap_ci(a, b, paired, np.random.default_rng(seed), n_bootstrap)
    if paired and len(a) >= 2 and np.array_equal(a, b):
        # the same runs, seed for seed: a variant whose tuning chose value 0 is its base, computed again (DESIGN
        # section 6). No difference and equivalence within any margin are then facts, not estimates.
        row.update(
            test=IDENTICAL_RUNS, p_value=1.0, p_equivalence=0.0, reason="", se_difference=0.0, df=float(len(a) - 1)
        )
    elif not reason:
        row["test"] = "paired t-test" if paired else "Welch t-test"
        row["p_value"] = t_test(a, b, paired, ratio=ratio)
        row["p_equivalence"] = tost(a, b, paired, margin, ratio)
        row["se_difference"], row["df"] = standard_error(a, b, paired, ratio)
    elif min(len(a), len(b)) >= 2:  # zero variance: the spread is nil, the t statistic undefined
        row["se_difference"], row["df"] = 0.0, float(len(a) - 1 if paired else len(a) + len(b) - 2)
    return row


def standard_error(a: np.ndarray, b: np.ndarray, paired: bool, ratio: float = 0.0) -> tuple[float, float]:
    """(standard error of mean(a) - mean(b), degrees of freedom) of the paired t-test, or of Welch's. Paired with
    ratio = n_test/n_train: the corrected resampled t-test's, sd(d) sqrt(1/J + ratio) (ratio 0: the plain one)."""
    if paired:
        return float(np.std(a - b, ddof=1) * np.sqrt(1 / len(a) + ratio)), float(len(a) - 1)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va + vb > 0 else len(a) + len(b) - 2
    return float(np.sqrt(va + vb)), float(df)


def corrected_t_interval(a: np.ndarray, b: np.ndarray, ratio: float, level: float = CI_LEVEL) -> tuple[float, float]:
    """The corrected resampled t-test's interval of the paired difference: mean(d) -+ t_{J-1} x its corrected se."""
    se, df = standard_error(a, b, True, ratio)
    half = stats.t.ppf((1 + level) / 2, df) * se
    d = float(np.mean(a - b))
    return d - half, d + half


def power_columns(table: pd.DataFrame, alpha: float, power: float = POWER) -> pd.DataFrame:
    """What each comparison could have found (DESIGN section 7), at its family's strictest Holm level alpha / m (m:
    the family's difference and equivalence hypotheses; the level a hypothesis meets when no other is rejected):
    min_detectable_difference, the true difference a two-sided test at that level finds with probability `power`
    given the observed spread, (t_{1 - level/2} + t_{power}) x se; equivalence_reachable, whether TOST at that level
    could show equivalence within the margin had the observed difference been 0 (t_{1 - level} x se < margin)."""
    table = table.assign(holm_level=np.nan, min_detectable_difference=np.nan, equivalence_reachable=False)
    for rows in table.groupby("family").groups.values():
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


def adjust(table: pd.DataFrame) -> pd.DataFrame:
    """p_holm and p_equivalence_holm: Holm over the union of a family's difference and equivalence p-values."""
    table = table.assign(p_holm=np.nan, p_equivalence_holm=np.nan)
    for rows in table.groupby("family").groups.values():
        adjusted = holm(np.concatenate([table.loc[rows, "p_value"], table.loc[rows, "p_equivalence"]]))
        table.loc[rows, "p_holm"] = adjusted[: len(rows)]
        table.loc[rows, "p_equivalence_holm"] = adjusted[len(rows) :]
    return table


def compare(
    run_summary: pd.DataFrame,
    specs: dict[str, dict],
    settings: dict,
    metrics: dict[str, Metric] = METRICS,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    split_protocols: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The comparisons table: one row per (dataset, depth, covariance variant, other method, metric).

    `specs`: the grid's methods (name -> composition); `settings`: the config's `compare` block;
    `split_protocols`: dataset -> its config's `split` ("per_seed": the corrected test; missing: "official").
    """
    covariance = covariance_methods(specs)
    rows = []
    for (dataset, depth), cell in run_summary.groupby(["dataset", "depth"], sort=True):
        by_method = {name: runs.set_index("seed") for name, runs in cell.groupby("method")}
        best = best_remedy_of_cell(cell, covariance)
        per_seed = (split_protocols or {}).get(dataset) == PER_SEED
        for method in [m for m in covariance if m in by_method]:
            base = base_method(method, specs)
            track = "recurrent_" if "cell" in specs[method] else ""
            for other in [m for m in by_method if m != method]:
                roles = roles_of(other, base, best)
                ratio = test_train_ratio(cell[cell.method.isin([method, other])]) if per_seed else 0.0
                if not np.isfinite(ratio):
                    raise ValueError(
                        f"{dataset} is split per seed (config datasets.{dataset}.split) but the runs of {method} and "
                        f"{other} at depth {depth} record no split sizes (n_test, n_train): rerun aggregate"
                    )
                for name, metric in metrics.items():
                    primary = metric.primary and bool(set(roles) & set(settings["primary_opponents"]))
                    values = compare_values(
                        by_method[method][metric.column],
                        by_method[other][metric.column],
                        metric,
                        metric.margin(settings, dataset),
                        seed,
                        n_bootstrap,
                        ratio,
                    )
                    rows.append(
                        {
                            "dataset": dataset,
                            "depth": int(depth),
                            "method": method,
                            "other_method": other,
                            "metric": name,
                            "family": track + ("primary" if primary else "secondary"),
                            "role": roles[0],
                            "best_remedy": best,
                            "val_majority_rate": majority_rate(cell, "val"),
                            "test_majority_rate": majority_rate(cell, "test"),
                            **values,
                            # diverged runs stay in, at the outcome they had when they stopped: say how many
                            "diverged_method": int(by_method[method].diverged.sum()),
                            "diverged_other": int(by_method[other].diverged.sum()),
                        }
                    )
    derived = (
        "p_holm",
        "p_equivalence_holm",
        "verdict",
        "holm_level",
        "min_detectable_difference",
        "equivalence_reachable",
    )
    table = adjust(pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in derived]))
    table["verdict"] = [
        verdict(d, p, q, metrics[m].higher_is_better, settings["alpha"])
        for d, p, q, m in zip(table.difference, table.p_holm, table.p_equivalence_holm, table.metric)
    ]
    return power_columns(table, settings["alpha"])[COLUMNS]


def run(
    run_summary_path: str,
    out_path: str,
    specs: dict[str, dict],
    settings: dict,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    split_protocols: dict[str, str] | None = None,
) -> None:
    table = compare(
        pd.read_parquet(run_summary_path),
        specs,
        settings,
        seed=seed,
        n_bootstrap=n_bootstrap,
        split_protocols=split_protocols,
    )
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_path, index=False)
