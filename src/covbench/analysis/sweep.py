"""Covariance's best shot, its analysis (docs/design.md#the-best-shot, rule `lambda_sweep_summary`): was lambda just
badly tuned?

The lambdas trained by covbench.training.lambda_sweep, one table per (dataset, variant, depth), are read here: the
best lambda is chosen on validation (lowest mean best-checkpoint validation cross-entropy over seeds, diverged =
+inf, ties to the smaller lambda, as tuning chooses, docs/design.md#tuning) and its test accuracy is compared with
lambda = 0's, paired by seed, with the verdicts of covbench.analysis.compare (the corrected resampled t-test where
each seed had its own split, `test_train_ratio`); Holm runs over the sweep's own family. The
paper's sentences about it are in covbench.report.macros.best_shot.

    collect(cell_paths, "results/sweep/lambda_sweep.parquet", "results/sweep/summary.parquet", config["compare"])
"""

import numpy as np
import pandas as pd

from covbench import atomic
from covbench.analysis import compare
from covbench.training.lambda_sweep import CELL_KEYS, COLUMNS

SUMMARY_COLUMNS = CELL_KEYS[:2] + [
    "base",
    "depth",
    "lr",
    "best_lambda",
    "best_val_loss",
    "n_lambdas",
    "n_diverged",
    "family",
    "difference",
    "ci_low",
    "ci_high",
    "margin",
    "n_method",
    "n_other",
    "n_pairs",
    "n_dropped",
    "test",
    "p_value",
    "p_equivalence",
    "reason",
    "se_difference",
    "df",
    "corrected",
    "test_train_ratio",
    "variance_factor",
    "ci_method",
    "p_holm",
    "p_equivalence_holm",
    "verdict",
    "within_margin",
]
ZERO_CHOSEN = "lambda = 0 is chosen"  # the verdict when the best lambda on validation is 0 itself
METRIC = compare.METRICS["test_accuracy"]
FAMILY = "lambda_sweep"
COUNTED = {
    "beats": "beats",
    "beaten": "is beaten by",
    "equivalent": "is equivalent to",
    "inconclusive": "inconclusive",
    "zero chosen": ZERO_CHOSEN,
}  # macro name part -> verdict


# --- selection and verdicts ----------------------------------------------------------------------------


def best_lambdas(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, variant, depth): the lambda with the lowest mean best-checkpoint validation loss over seeds
    (diverged or non-finite = +inf, so a lambda with one diverged seed loses), ties to the smaller lambda."""
    loss = table.best_val_loss.astype(float)
    score = loss.where(~table.diverged.astype(bool) & np.isfinite(loss), np.inf)
    means = table.assign(score=score).groupby(CELL_KEYS + ["cov_lambda"], as_index=False).score.mean()
    best = means.sort_values(CELL_KEYS + ["score", "cov_lambda"], kind="stable").groupby(CELL_KEYS).head(1)
    return best.rename(columns={"cov_lambda": "best_lambda", "score": "best_val_loss"}).reset_index(drop=True)


def summarize(table: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """One row per (dataset, variant, depth): the best lambda on validation and its test accuracy against
    lambda = 0 by seed (difference, the test's interval, t-test, TOST within the dataset's margin, corrected where
    each seed had its own split, Holm over the sweep's cells, verdict). `settings`: the config's compare block
    (alpha, equivalence_margin)."""
    rows = []
    for best in best_lambdas(table).itertuples():
        cell = table[(table.dataset == best.dataset) & (table.variant == best.variant) & (table.depth == best.depth)]
        by_lambda = {v: rows_.set_index("seed")[METRIC.column] for v, rows_ in cell.groupby("cov_lambda")}
        margin = METRIC.margin(settings, best.dataset)
        ratio = float(cell.test_train_ratio.iloc[0])
        values = compare.compare_values(by_lambda[best.best_lambda], by_lambda[0.0], METRIC, margin, ratio)
        if best.best_lambda == 0:  # nothing to test: the base itself is chosen
            values.update(
                difference=0.0,
                ci_low=0.0,
                ci_high=0.0,
                test="none",
                p_value=np.nan,
                p_equivalence=np.nan,
                reason="lambda = 0 is chosen on validation",
            )
        rows.append(
            {
                "dataset": best.dataset,
                "variant": best.variant,
                "base": cell.base.iloc[0],
                "depth": int(best.depth),
                "lr": float(cell.lr.iloc[0]),
                "best_lambda": best.best_lambda,
                "best_val_loss": best.best_val_loss,
                "n_lambdas": cell.cov_lambda.nunique(),
                "n_diverged": int(cell.diverged.sum()),
                "family": FAMILY,
                **values,
            }
        )
    summary = compare.adjust(pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-4]))
    summary["verdict"] = [
        ZERO_CHOSEN if v == 0 else compare.verdict(d, p, q, METRIC.higher_is_better, settings["alpha"])
        for v, d, p, q in zip(summary.best_lambda, summary.difference, summary.p_holm, summary.p_equivalence_holm)
    ]
    directional = summary.verdict.isin(["beats", "is beaten by"])
    summary["within_margin"] = directional & (summary.difference.abs() < summary.margin)
    return summary[SUMMARY_COLUMNS]


def collect(cell_paths: list[str], table_path: str, summary_path: str, settings: dict) -> None:
    """The cells as one tidy table, and its summary."""
    table = pd.concat(
        [atomic.read_parquet(path) for path in cell_paths] or [pd.DataFrame(columns=COLUMNS)], ignore_index=True
    )
    for path, frame in ((table_path, table), (summary_path, summarize(table, settings))):
        atomic.write_parquet(frame, path)
