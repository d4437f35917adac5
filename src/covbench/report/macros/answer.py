"""The answer in words before the counts (issue 31): per track, which covariance variants lose to, match or beat the
best standard remedy, on which datasets and at which depths; the cells where no remedy learned (so no best remedy);
and the corrected resampled t-test where each seed had its own split.

    macros = {**answer_macros(comparisons), **correction_macros(comparisons)}

`comparisons` holds both tracks' rows (compare.compare's table): the MLP grid's family `primary`, the recurrent
track's `recurrent_primary`.
"""

import numpy as np
import pandas as pd

from covbench.report.labels import dataset_label, method_label
from covbench.report.prose import plain, word_list

# verdict -> what the variant does against the best remedy, in the order the sentence gives them
AGAINST_BEST = (("is beaten by", "loses"), ("is equivalent to", "is equivalent (within the margin)"), ("beats", "wins"))
TRACKS = {  # macro -> (family, how the sentence opens, the unit of its depth column)
    "AnswerPerceptrons": ("primary", "Against the best standard remedy (chosen on validation at each depth)", "depth"),
    "AnswerRecurrent": (
        "recurrent_primary",
        "In the recurrent track, against the best recurrent remedy (chosen on validation at each sequence length)",
        "length",
    ),
}


def where(cells: pd.DataFrame, universe: dict[str, list[int]], unit: str) -> str:
    """'on MNIST at every depth (2--32) and on cat/non-cat at depths 2 and 4' for (dataset, depth) `cells`;
    `universe`: every depth a dataset has in the family ("every" only when the cells cover them all)."""
    parts = []
    for dataset in [d for d in universe if d in set(cells.dataset)]:
        depths = sorted(set(cells.depth[cells.dataset == dataset]))
        if len(depths) > 1 and depths == universe[dataset]:
            at = f"at every {unit} ({depths[0]}--{depths[-1]})"
        else:
            at = f"at {unit}{'s' if len(depths) > 1 else ''} {word_list(depths)}"
        parts.append(f"on {dataset_label(dataset)} {at}")
    return word_list(parts)


def against_best_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The comparisons with the best remedy: role best_remedy, or the base where it is the best remedy too."""
    return rows[(rows.role == "best_remedy") | ((rows.role == "base") & (rows.other_method == rows.best_remedy))]


def variant_clause(mine: pd.DataFrame, universe: dict[str, list[int]], unit: str) -> str:
    """'X loses on ..., is equivalent (within the margin) on ... and is inconclusive on ...; it wins nowhere' for one
    variant's rows: every verdict it reached, then a loss or a win it never had."""
    parts, nowhere = [], []
    for verdict, verb in AGAINST_BEST:
        hit = mine[mine.verdict == verdict]
        if len(hit):
            parts.append(f"{verb} {where(hit, universe, unit)}")
        elif verdict != "is equivalent to":
            nowhere.append(verb)
    open_cells = mine[mine.verdict == "inconclusive"]
    if len(open_cells):
        parts.append(f"is inconclusive {where(open_cells, universe, unit)}")
    clause = f"{method_label(mine.method.iloc[0])} {word_list(parts)}"  # every row has a verdict: parts is not empty
    if len(nowhere) == 2:
        return f"{clause}, and it neither loses nor wins anywhere"
    return f"{clause}, and it {nowhere[0]} nowhere" if nowhere else clause


def no_remedy_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """(dataset, depth) of the family's cells where no remedy is above the validation majority-class rate."""
    return rows.loc[rows.best_remedy.isna(), ["dataset", "depth"]].drop_duplicates()


def answer_sentence(comparisons: pd.DataFrame, family: str, opening: str, unit: str) -> str:
    """One sentence per track from its primary verdicts against the best remedy (DESIGN section 7)."""
    rows = comparisons[(comparisons.family == family) & (comparisons.metric == "test_accuracy")]
    if rows.empty:
        return f"{opening}: no comparison was made."
    universe = {d: sorted(set(rows.depth[rows.dataset == d])) for d in dict.fromkeys(rows.dataset)}
    best = against_best_rows(rows)
    clauses = [variant_clause(best[best.method == v], universe, unit) for v in dict.fromkeys(best.method)]
    missing = no_remedy_cells(rows)
    none_learned = ""
    if len(missing):
        none_learned = f"no remedy learned {where(missing, universe, unit)}, so there is no best remedy there"
    if not clauses:
        return f"{opening}: no covariance variant was compared with it" + (
            f"; {none_learned}." if none_learned else "."
        )
    return f"{opening}, " + "; ".join(clauses) + (f"; {none_learned}." if none_learned else ".")


def no_remedy_sentence(comparisons: pd.DataFrame) -> str:
    """Where a constant predictor would have been the best remedy: the cells with no best-remedy comparison."""
    places, rates = [], []
    for family, _, unit in TRACKS.values():
        rows = comparisons[comparisons.family == family]
        missing = no_remedy_cells(rows)
        if len(missing):
            universe = {d: sorted(set(rows.depth[rows.dataset == d])) for d in dict.fromkeys(rows.dataset)}
            places.append(where(missing, universe, unit))
            if "val_majority_rate" in rows:
                rates += list(rows.val_majority_rate[rows.best_remedy.isna()].astype(float))
    if not places:
        return (
            "At every dataset and depth a standard remedy learned (its mean validation accuracy above the validation "
            "majority-class rate), so every cell has a best-remedy comparison."
        )
    rate = f" (on average {plain(100 * np.mean(rates), 1)}\\,\\%)" if np.isfinite(np.mean(rates or [np.nan])) else ""
    return (
        f"No standard remedy learned {word_list(places)}: none has a mean validation accuracy above "
        f"the majority-class rate of the validation data{rate}, the accuracy of a constant predictor, which is never "
        "the best remedy; so those cells have no best-remedy comparison."
    )


def answer_macros(comparisons: pd.DataFrame) -> dict[str, str]:
    """AnswerPerceptrons and AnswerRecurrent, the opening sentences of abstract and conclusion, and NoBestRemedyCells."""
    macros = {name: answer_sentence(comparisons, *track) for name, track in TRACKS.items()}
    macros["NoBestRemedyCells"] = no_remedy_sentence(comparisons)
    return macros


# --- the corrected resampled t-test ----------------------------------------------------------------


def correction_macros(comparisons: pd.DataFrame) -> dict[str, str]:
    """CorrectionSentence (the statistics paragraph's account of the corrected test, with n_test/n_train, J and the
    factor on the variance per corrected dataset), CorrectedDatasets and IntervalNote (for captions)."""
    rows = comparisons[comparisons.corrected.astype(bool)] if "corrected" in comparisons else comparisons.iloc[:0]
    datasets = list(dict.fromkeys(rows.dataset))
    if not datasets:
        return {
            "CorrectedDatasets": "none",
            "IntervalNote": "",
            "CorrectionSentence": "Every dataset keeps one split for all seeds, so the paired $t$-test over seeds "
            "needs no correction for overlapping training and test sets.",
        }
    sizes = []
    for dataset in datasets:
        mine = rows[rows.dataset == dataset]
        seeds = int(mine.n_pairs.mode().iloc[0])
        factor = float(mine.variance_factor[mine.n_pairs == seeds].iloc[0])
        sizes.append(
            f"on {dataset_label(dataset)} $n_{{\\mathrm{{test}}}}/n_{{\\mathrm{{train}}}} = "
            f"{mine.test_train_ratio.median():.3f}$ and $J = {seeds}$, so the variance is {plain(factor, 2)} "
            f"times the plain test's and the standard error {plain(np.sqrt(factor), 2)} times"
        )
    labels = word_list([dataset_label(d) for d in datasets])
    return {
        "CorrectedDatasets": labels,
        "IntervalNote": f" (on {labels}, split anew for every seed, the corrected $t$ interval)",
        "CorrectionSentence": (
            f"On {labels} every seed draws its own split (declared in the configuration before any run), so the "
            "seeds' training and test sets overlap and a paired $t$-test over seeds is too confident. There the "
            "difference test, both halves of TOST, the interval and the minimum detectable difference use the "
            "corrected resampled $t$-test \\citep{nadeau2003,bouckaert2004}: the variance of the paired differences "
            "over $J$ seeds is multiplied by $1/J + n_{\\mathrm{test}}/n_{\\mathrm{train}}$ in place of $1/J$, with "
            f"$J - 1$ degrees of freedom; {word_list(sizes)}. The interval of these comparisons is the corrected "
            "$t$ interval, and the comparisons of the $\\lambda$ sweep there are corrected too."
        ),
    }
