"""Covariance vs every other method at each (dataset, depth): differences, bootstrap intervals, verdicts.

For each covariance variant (a method whose `aux` starts with "covariance") and each other method of the
grid, per metric: the difference of means (covariance minus other) over seeds, a bootstrap 95% interval,
a t-test (paired by seed when both methods ran the same seeds, Welch otherwise) and a Holm correction over
the whole family of one metric. The verdict reads the Holm p-value and the sign, oriented so that "beats"
always means "better": higher test accuracy, or a vanishing index closer to 0 (|index| smaller), since a
negative index is vanishing and a positive one exploding gradients (DESIGN section 4).

    comparisons = compare(run_summary, ["covariance", "covariance_pooled"])
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95
COLUMNS = ["dataset", "depth", "method", "other_method", "metric", "difference", "ci_low", "ci_high", "n_method",
           "n_other", "n_pairs", "n_dropped", "test", "p_value", "reason"]  # then p_holm and verdict


@dataclass(frozen=True)
class Metric:
    column: str  # run_summary column
    absolute: bool  # compare |value|
    higher_is_better: bool


METRICS = {
    "final_test_accuracy": Metric("final_test_accuracy", absolute=False, higher_is_better=True),
    "abs_vanishing_index_init": Metric("vanishing_index_init", absolute=True, higher_is_better=False),
}


def covariance_methods(specs: dict[str, dict]) -> list[str]:
    """Methods whose auxiliary component is a covariance variant, in the given order."""
    return [name for name, spec in specs.items() if str(spec.get("aux", "none")).startswith("covariance")]


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


def bootstrap_ci(a: np.ndarray, b: np.ndarray, paired: bool, rng: np.random.Generator,
                 n_bootstrap: int = N_BOOTSTRAP, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b): seeds resampled as pairs when paired, per method otherwise."""
    if paired:
        d = a - b
        means = d[rng.integers(0, len(d), (n_bootstrap, len(d)))].mean(1)
    else:
        means = (a[rng.integers(0, len(a), (n_bootstrap, len(a)))].mean(1)
                 - b[rng.integers(0, len(b), (n_bootstrap, len(b)))].mean(1))
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


def compare_values(method: pd.Series, other: pd.Series, metric: Metric, seed: int = 0,
                   n_bootstrap: int = N_BOOTSTRAP) -> dict:
    """One comparison: difference of means, its interval, the test and (unadjusted) p-value."""
    a, b, paired = aligned_values(method, other)
    n_dropped = len(method) + len(other) - len(a) - len(b)
    if metric.absolute:
        a, b = np.abs(a), np.abs(b)
    reason = degenerate_reason(a, b, paired)
    row = {
        "difference": float(a.mean() - b.mean()) if len(a) and len(b) else np.nan,
        "ci_low": np.nan, "ci_high": np.nan,
        "n_method": len(a), "n_other": len(b), "n_pairs": len(a) if paired else 0,
        "n_dropped": n_dropped,
        "test": "none", "p_value": np.nan, "reason": reason,
    }
    if min(len(a), len(b)) >= 2:
        row["ci_low"], row["ci_high"] = bootstrap_ci(a, b, paired, np.random.default_rng(seed), n_bootstrap)
    if not reason:
        result = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
        row["test"] = "paired t-test" if paired else "Welch t-test"
        row["p_value"] = float(result.pvalue)
    return row


def verdict(difference: float, p_holm: float, higher_is_better: bool, alpha: float = ALPHA) -> str:
    if not np.isfinite(p_holm) or p_holm >= alpha:
        return "does not beat"
    better = difference > 0 if higher_is_better else difference < 0
    return "beats" if better else "is beaten by"


def compare(run_summary: pd.DataFrame, covariance: list[str], metrics: dict[str, Metric] = METRICS,
            alpha: float = ALPHA, seed: int = 0, n_bootstrap: int = N_BOOTSTRAP) -> pd.DataFrame:
    """The comparisons table (one row per dataset, depth, covariance variant, other method, metric)."""
    rows = []
    for (dataset, depth), cell in run_summary.groupby(["dataset", "depth"], sort=True):
        by_method = {name: runs.set_index("seed") for name, runs in cell.groupby("method")}
        for method in [m for m in covariance if m in by_method]:
            for other in [m for m in by_method if m != method]:
                for name, metric in metrics.items():
                    values = compare_values(by_method[method][metric.column], by_method[other][metric.column],
                                            metric, seed, n_bootstrap)
                    rows.append({"dataset": dataset, "depth": int(depth), "method": method, "other_method": other,
                                 "metric": name, **values})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["p_holm"] = np.nan
    for family in table.groupby("metric").groups.values():
        table.loc[family, "p_holm"] = holm(table.loc[family, "p_value"].to_numpy())
    table["verdict"] = [verdict(d, p, metrics[m].higher_is_better, alpha)
                        for d, p, m in zip(table.difference, table.p_holm, table.metric)]
    return table


def run(run_summary_path: str, out_path: str, covariance: list[str], alpha: float = ALPHA, seed: int = 0,
        n_bootstrap: int = N_BOOTSTRAP) -> None:
    table = compare(pd.read_parquet(run_summary_path), covariance, alpha=alpha, seed=seed, n_bootstrap=n_bootstrap)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_path, index=False)
