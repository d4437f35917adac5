"""Which lines answer the question: in a figure that draws every method, the covariance variants, their
bases and the cell's best remedy keep their palette style and their legend entry; every other method is a thin grey
line under them, one legend entry for all. The best remedy is read from the primary verdicts (comparisons.parquet,
column `best_remedy`), never chosen again, so a figure shows the opponent the verdicts were reached against.

    looks = emphasized(styles, answer_methods(comparisons, "mnist", 32))
"""

import pandas as pd

PRIMARY_FAMILIES = ("primary", "recurrent_primary")
OTHERS_LABEL = "other methods"
GREY = {"color": "0.75", "linestyle": "-", "linewidth": 0.6, "marker": "", "zorder": 1}


def primary_rows(comparisons: pd.DataFrame, dataset: str | None = None, depth: int | None = None) -> pd.DataFrame:
    """Both tracks' primary rows on test accuracy, of one dataset and depth where given."""
    rows = comparisons[comparisons.family.isin(PRIMARY_FAMILIES) & (comparisons.metric == "test_accuracy")]
    if dataset is not None:
        rows = rows[rows.dataset == dataset]
    return rows if depth is None else rows[rows.depth == depth]


def answer_methods(comparisons: pd.DataFrame, dataset: str | None = None, depth: int | None = None) -> list[str]:
    """The covariance variants, their bases and the best remedies of the primary rows (of one dataset or cell)."""
    rows = primary_rows(comparisons, dataset, depth)
    names = [*rows.method, *rows.other_method[rows.role == "base"], *rows.best_remedy.dropna()]
    return list(dict.fromkeys(names))


def emphasized(styles: dict, answer: list[str]) -> dict:
    """Every method's look: its palette style when it answers the question, the thin grey line otherwise; every
    palette style where nothing was compared (no covariance variant in the grid)."""
    return {method: style if method in answer or not answer else GREY for method, style in styles.items()}


def line_label(method: str, looks: dict) -> str:
    """A line's label: the method where it is in colour, hidden (leading underscore) where it is grey."""
    return f"_{method}" if looks[method] is GREY else method
