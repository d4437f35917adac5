"""The answer in words before the counts: per track, which covariance variants lose to, match or beat the
best standard remedy, on which datasets and at which depths; per dataset, the same answer in one sentence for the
abstract; the cells where no remedy learned (so no best remedy); and the corrected resampled t-test where
each seed had its own split.

    macros = {**answer_macros(comparisons), **correction_macros(comparisons)}

`comparisons` holds both tracks' rows (compare.compare's table): the MLP grid's family `primary`, the recurrent
track's `recurrent_primary`.
"""

import numpy as np
import pandas as pd

from covbench.report.labels import dataset_label, method_label
from covbench.report.prose import plain, word_list

# verdict -> what the variant does against the best remedy, in the order the sentence gives them
AGAINST_BEST = (
    ("is beaten by", "loses"),
    ("is equivalent to", "is equivalent (within the margin)"),
    ("is identical to", "is identical (its tuning chose the base, there the best remedy)"),
    ("beats", "wins"),
)
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
        parts.append(f"on {dataset_label(dataset)} {at(depths, universe[dataset], unit)}")
    return word_list(parts)


def at(depths: list[int], every: list[int], unit: str) -> str:
    """'at every depth (2--32)' when `depths` are all of `every` (more than one), else 'at depths 2 and 4'."""
    if len(depths) > 1 and depths == every:
        return f"at every {unit} ({depths[0]}--{depths[-1]})"
    return f"at {unit}{'s' if len(depths) > 1 else ''} {word_list(depths)}"


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
        elif verdict in ("is beaten by", "beats"):
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
    """One sentence per track from its primary verdicts against the best remedy (docs/design.md#the-best-remedy)."""
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


# --- the abstract's answer: one sentence per dataset, in words ------------------------------

DATASET_ANSWERS = {  # macro -> (family, the opponent as the sentence names it, the unit of its depth column)
    "AnswerDatasets": ("primary", "the best standard remedy", "depth"),
    "AnswerRecurrentDatasets": ("recurrent_primary", "the best recurrent remedy", "length"),
}
SETTLED = {  # the abstract gave the margin
    "is beaten by": "loses to it",
    "is equivalent to": "is equivalent to it",
    "is identical to": "is identical to it (its tuning chose $\\lambda = 0$, the best remedy itself)",
}


def detectable(rows: pd.DataFrame) -> str:
    """'$1.2$--$3.4$ points': the range of the rows' finite minimum detectable differences ('' if none)."""
    values = rows.get("min_detectable_difference", pd.Series(dtype=float)).astype(float)
    finite = 100 * values[np.isfinite(values)]
    if finite.empty:
        return ""
    low, high = plain(finite.min(), 1), plain(finite.max(), 1)
    return f"{low} points" if low == high else f"{low}--{high} points"


def settled_part(best: pd.DataFrame, verdict: str, verb: str, count: int, every: list[int], unit: str) -> str:
    """'every variant loses to it at every depth (2--32)', or 'a variant ... (every variant at depth 32)'."""
    hit = best[best.verdict == verdict]
    depths = sorted(set(hit.depth))
    unanimous = [d for d in depths if hit.method[hit.depth == d].nunique() == count]
    if count == 1:
        return f"the variant {verb} {at(depths, every, unit)}"
    if unanimous == depths:
        return f"every variant {verb} {at(depths, every, unit)}"
    also = f" (every variant {at(unanimous, every, unit)})" if unanimous else ""
    return f"a variant {verb} {at(depths, every, unit)}{also}"


def dataset_answer(rows: pd.DataFrame, remedy: str, unit: str) -> str:
    """One dataset's answer in words: whether any covariance variant beats `remedy`, where they lose to it or match
    it, where the data cannot tell (with the smallest difference the design could detect there), where no remedy
    learned. A verdict other than the four (a later kind) is named as it is."""
    every, count = sorted(set(rows.depth)), rows.method.nunique()
    best = against_best_rows(rows)
    opening = f"On {dataset_label(rows.dataset.iloc[0])}"
    open_rows = best[best.verdict == "inconclusive"]
    if best.empty:
        head, parts = f"{opening}, no covariance variant was compared with {remedy}", []
    elif len(open_rows) == len(best):
        smallest = detectable(open_rows)
        exploratory = not rows.equivalence_reachable.astype(bool).any() if "equivalence_reachable" in rows else False
        head = f"{opening} the data cannot tell{' (its verdicts are exploratory)' if exploratory else ''}: every " + (
            f"comparison with {remedy} is inconclusive"
            + (f" (smallest detectable difference {smallest})" if smallest else "")
        )
        parts = []
    else:
        wins = best[best.verdict == "beats"]
        if len(wins):
            winners = [
                f"{method_label(m)} {at(sorted(set(wins.depth[wins.method == m])), every, unit)}"
                for m in dict.fromkeys(wins.method)
            ]
            head = f"{opening}, {remedy} is beaten by {word_list(winners)}"
        else:
            head = f"{opening}, no covariance variant beats {remedy}"
        parts = [
            settled_part(best, verdict, verb, count, every, unit)
            for verdict, verb in SETTLED.items()
            if (best.verdict == verdict).any()
        ]
        known = {"beats", "inconclusive", *SETTLED}
        parts += [
            f"the verdict is ``{verdict}'' {at(sorted(set(best.depth[best.verdict == verdict])), every, unit)}"
            for verdict in dict.fromkeys(best.verdict)
            if verdict not in known
        ]
        if len(open_rows):
            smallest = detectable(open_rows)
            parts.append(
                "the rest are inconclusive" + (f" (smallest detectable difference {smallest})" if smallest else "")
            )
    missing = sorted(set(rows.depth[rows.best_remedy.isna()]))
    if missing:
        parts.append(f"no remedy learned {at(missing, every, unit)}, so there is no best remedy there")
    return head + "".join(f"; {part}" for part in parts) + "."


def dataset_answers(
    comparisons: pd.DataFrame, family: str, remedy: str, unit: str, datasets: list[str] | None = None
) -> str:
    """The abstract's answer for one track: dataset_answer for each of its datasets, in the order of `datasets` (the
    config's), then of the rows."""
    rows = comparisons[(comparisons.family == family) & (comparisons.metric == "test_accuracy")]
    if rows.empty:
        return f"No covariance variant was compared with {remedy}."
    order = [d for d in dict.fromkeys([*(datasets or []), *rows.dataset]) if d in set(rows.dataset)]
    return " ".join(dataset_answer(rows[rows.dataset == d], remedy, unit) for d in order)


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
            "At every dataset and depth a standard remedy learned beyond noise (most seeds not collapsed, validation "
            "accuracy above the validation majority-class rate by a one-sided paired $t$-test), so every cell has a "
            "best-remedy comparison."
        )
    rate = f" (on average {plain(100 * np.mean(rates), 1)}\\,\\%)" if np.isfinite(np.mean(rates or [np.nan])) else ""
    return (
        f"No standard remedy learned beyond noise {word_list(places)}: none has most of its seeds not collapsed and a "
        f"validation accuracy above the majority-class rate of the validation data{rate}, the accuracy of a constant "
        "predictor, by a one-sided paired $t$-test; so those cells have no best-remedy comparison."
    )


def answer_macros(comparisons: pd.DataFrame, datasets: list[str] | None = None) -> dict[str, str]:
    """AnswerPerceptrons and AnswerRecurrent (every variant's verdicts, for Results), AnswerDatasets and
    AnswerRecurrentDatasets (the abstract's and conclusion's answer in words, a sentence per dataset), and
    NoBestRemedyCells. `datasets` orders the sentences of the datasets (the config's order)."""
    macros = {name: answer_sentence(comparisons, *track) for name, track in TRACKS.items()}
    macros |= {name: dataset_answers(comparisons, *track, datasets) for name, track in DATASET_ANSWERS.items()}
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
