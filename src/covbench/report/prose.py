"""The paper's wording: macro names, numbers in words and digits, and the verdict sentences every section's macros
are written with. It sits below the section macro writers (mechanism, sweep, long_memories) and the paper build that
gathers them, so their imports point one way.
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from covbench.analysis.compare import CI_LEVEL
from covbench.config import covariance_methods
from covbench.report.labels import dataset_label, method_label

_ONES = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
]
_TENS = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


@dataclass(frozen=True)
class MetricWords:
    what: str  # what the difference is a difference in
    scale: float
    unit: str
    decimals: int
    short: str  # macro name part


METRIC_WORDS = {
    "test_accuracy": MetricWords("best-checkpoint test accuracy", 100, "percentage points", 1, "Accuracy"),
    "abs_vanishing_index_epoch1": MetricWords(
        "absolute vanishing index over epoch 1", 1, "orders of magnitude", 2, "Vanishing"
    ),
}
VERDICT_COUNTS = {
    "beats": "beats",
    "beaten": "is beaten by",
    "equivalent": "is equivalent to",
    "identical": "is identical to",
    "collapsed": "both collapsed",
    "inconclusive": "inconclusive",
}  # macro name part -> verdict
OPPONENT_WORDS = {
    "base": "its base (the same network without the force)",
    "best_remedy": "the best standard remedy (the other method with the highest mean validation "
    "accuracy at that dataset and depth among those that learned beyond noise)",
}
OPPONENT_BRIEF = {"base": "its base", "best_remedy": "the best standard remedy"}  # the abstract's short forms


# --- names and words ------------------------------------------------------------------------------


def number_words(n: int) -> str:
    """CamelCase English for 0 <= n < 10**6 (32 -> ThirtyTwo), for macro names."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + "Hundred" + (number_words(n % 100) if n % 100 else "")
    return number_words(n // 1000) + "Thousand" + (number_words(n % 1000) if n % 1000 else "")


def macro_name(*parts) -> str:
    """A LaTeX command name from words and numbers: ("verdict", "relu_he", 32) -> VerdictReluHeThirtyTwo."""
    words = []
    for part in parts:
        for token in re.findall(r"[A-Za-z]+|\d+", str(part)):
            words.append(number_words(int(token)) if token.isdigit() else token[0].upper() + token[1:])
    return "".join(words)


def word_list(items: list) -> str:
    """'a', 'a and b', 'a, b and c'; 'none' for no items."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return items[0] if items else "none"
    return ", ".join(items[:-1]) + " and " + items[-1]


def signed(value: float, decimals: int) -> str:
    return f"${round(value, decimals) + 0.0:+.{decimals}f}$" if np.isfinite(value) else "n/a"  # never -0.0


def plain(value: float, decimals: int) -> str:
    return f"${round(value, decimals) + 0.0:.{decimals}f}$" if np.isfinite(value) else "n/a"


def p_text(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "$<0.001$" if p < 0.001 else f"${p:.3f}$"


def table_refs(labels: list[str]) -> str:
    """`Table~\\ref{a}`, `Tables~\\ref{a} and~\\ref{b}`, or a range for three or more consecutive floats."""
    if not labels:
        return "no table"
    if len(labels) == 1:
        return rf"Table~\ref{{{labels[0]}}}"
    if len(labels) == 2:
        return rf"Tables~\ref{{{labels[0]}}} and~\ref{{{labels[1]}}}"
    return rf"Tables~\ref{{{labels[0]}}}--\ref{{{labels[-1]}}}"


# --- the comparisons in words ---------------------------------------------------------------------


def claim(method: str, verdict: str, other: str, where: str = "", within_margin: bool = False) -> str:
    """'X beats Y<where>', 'X beats Y (within the margin)<where>', 'X and Y<where> both collapsed', or 'X against
    Y<where> is inconclusive': the verdict as a clause."""
    if verdict == "inconclusive":
        return f"{method_label(method)} against {method_label(other)}{where} is inconclusive"
    if verdict == "both collapsed":
        return f"{method_label(method)} and {method_label(other)}{where} both collapsed"
    margin = " (within the margin)" if within_margin else ""
    return f"{method_label(method)} {verdict} {method_label(other)}{margin}{where}"


def verdict_details(row) -> str:
    """'difference, interval, margin; Holm p of difference and of equivalence' (or why there is no test)."""
    words = METRIC_WORDS[row.metric]
    difference = f"difference {signed(words.scale * row.difference, words.decimals)} {words.unit} of {words.what}"
    margin = f"margin $\\pm${plain(words.scale * row.margin, words.decimals)}"
    if row.reason:
        return f"{difference}, {margin}; no test: {row.reason}{diverged_words(row)}"
    return (
        f"{difference}, {CI_LEVEL * 100:.0f}\\% interval "
        f"[{plain(words.scale * row.ci_low, words.decimals)}, {plain(words.scale * row.ci_high, words.decimals)}], "
        f"{margin}; Holm $p$ {p_text(row.p_holm)} for a difference, {p_text(row.p_equivalence_holm)} for "
        f"equivalence{diverged_words(row)}"
    )


def diverged_words(row) -> str:
    """'; 2 runs of X diverged (counted at the outcome they had when they stopped)', or '' when none did."""
    counts = [(row.method, getattr(row, "diverged_method", 0)), (row.other_method, getattr(row, "diverged_other", 0))]
    parts = [f"{k} run{'s' if k > 1 else ''} of {method_label(m)}" for m, k in counts if k]
    if not parts:
        return ""
    pronoun = "they" if sum(k for _, k in counts) > 1 else "it"
    return f"; {word_list(parts)} diverged (counted at the outcome {pronoun} had when {pronoun} stopped)"


def verdict_sentence(row) -> str:
    """'X is equivalent to Y at depth D on DATA (difference, interval, margin, Holm p of difference and of
    equivalence).' from one comparisons row."""
    where = f" at depth {row.depth} on {dataset_label(row.dataset)}"
    head = claim(row.method, row.verdict, row.other_method, where, bool(getattr(row, "within_margin", False)))
    return f"{head} ({verdict_details(row)})."


def opponent_words(row) -> str:
    """Who the other method of a primary comparison is: its base, the best remedy, or both at once."""
    if row.role == "base":
        return "its base" + (", also the best remedy on validation" if row.other_method == row.best_remedy else "")
    return "the best remedy on validation" if row.role == "best_remedy" else "another method"


def verdict_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Number of comparisons, of each verdict, and of those that could not be tested (counted as inconclusive)."""
    return {
        "comparisons": len(rows),
        **{key: int((rows.verdict == v).sum()) for key, v in VERDICT_COUNTS.items()},
        "untested": int(((rows.test == "none") & (rows.verdict == "inconclusive")).sum()),
    }


def counts_text(counts: dict[str, int]) -> str:
    return (
        f"beats the other method in {counts['beats']}, is beaten in {counts['beaten']}, is equivalent in "
        f"{counts['equivalent']}, is identical (its tuning chose the base) in {counts['identical']}, both collapsed "
        f"in {counts['collapsed']} and is inconclusive in {counts['inconclusive']} ({counts['untested']} of which "
        f"could not be tested)"
    )


def power_sentence(rows: pd.DataFrame) -> str:
    """Where a dataset's primary family could not reach its verdicts (no comparison could show equivalence), why, from
    its numbers: the largest per-split SD of the paired difference that TOST within the margin tolerates at the family's
    strictest Holm level, the smallest the runs show, and the minimum detectable differences; '' where it could."""
    hypotheses = rows[rows.p_equivalence.notna()]  # identical runs and collapsed pairs are no hypotheses
    tested = hypotheses[hypotheses.se_difference.astype(float) > 0]
    if tested.empty or hypotheses.equivalence_reachable.astype(bool).any():
        return ""
    words = METRIC_WORDS["test_accuracy"]
    seeds = int(tested.n_pairs.max()) if tested.n_pairs.max() > 0 else int(tested.n_method.max())
    factor = float(tested.variance_factor[tested.n_pairs == seeds].iloc[0]) / seeds if seeds else np.nan
    level, margin = float(tested.holm_level.iloc[0]), float(tested.margin.iloc[0])
    needed = margin / (stats.t.ppf(1 - level, seeds - 1) * np.sqrt(factor))
    pairs = tested[tested.n_pairs > 0]
    observed = (pairs.se_difference.astype(float) / np.sqrt(pairs.variance_factor / pairs.n_pairs)).min()
    mdd = tested.min_detectable_difference.astype(float)
    corrected = "$1/J + n_{\\mathrm{test}}/n_{\\mathrm{train}}$" if tested.corrected.astype(bool).any() else "$1/J$"
    ratio = f"variance factor {corrected} $= {factor:.2f}$"
    return (
        f"On {dataset_label(rows.dataset.iloc[0])} the verdicts are exploratory: equivalence within "
        f"$\\pm${plain(words.scale * margin, 0)} points needs a per-split standard deviation of the paired "
        f"difference under {plain(words.scale * needed, 1)} points ($J = {seeds}$, {ratio}, strictest Holm level "
        f"${level:.2g}$), the smallest of any pair is {plain(words.scale * observed, 1)}, and a comparison could detect "
        f"differences of {plain(words.scale * mdd.min(), 0)} to {plain(words.scale * mdd.max(), 0)} points at best."
    )


def family_summary(comparisons: pd.DataFrame, specs: dict[str, dict], family: str) -> str:
    """Counts of the verdicts in one family, per metric and per covariance variant; the primary family per dataset
    (one Holm family each)."""
    rows = comparisons[comparisons.family == family]
    if family == "primary" and len(rows):
        return " ".join(
            family_counts(rows[rows.dataset == d], specs, f"{dataset_label(d)} primary")
            for d in dict.fromkeys(rows.dataset)
        )
    return family_counts(rows, specs, family.replace("_", " "))


def exploratory_datasets(comparisons: pd.DataFrame) -> str:
    """power_sentence of every dataset whose primary verdicts are out of reach, said before any of its counts; ''
    where every dataset could reach its verdicts."""
    rows = comparisons[(comparisons.family == "primary") & (comparisons.metric == "test_accuracy")]
    return " ".join(filter(None, (power_sentence(rows[rows.dataset == d]) for d in dict.fromkeys(rows.dataset))))


def family_counts(rows: pd.DataFrame, specs: dict[str, dict], name: str) -> str:
    """'On <metric>, of N <name> comparisons a covariance variant beats ... ; per variant, ...' per metric."""
    sentences = []
    for metric, words in METRIC_WORDS.items():
        mine = rows[rows.metric == metric]
        if mine.empty:
            continue
        per_variant = []
        for variant in covariance_methods(specs):
            counts = verdict_counts(mine[mine.method == variant])
            if counts["comparisons"]:
                per_variant.append(
                    f"{method_label(variant)} {counts['beats']} wins, {counts['beaten']} losses, "
                    f"{counts['equivalent']} equivalences, {counts['identical']} identical, {counts['collapsed']} "
                    f"both collapsed and {counts['inconclusive']} inconclusive"
                )
        touched = (
            int(((mine.diverged_method > 0) | (mine.diverged_other > 0)).sum()) if "diverged_method" in mine else 0
        )
        diverged = (
            f" In {touched} of these comparisons runs diverged and count at the outcome they had when they "
            f"stopped (the sentences and tables of those cells say how many)."
            if touched
            else ""
        )
        sentences.append(
            f"On {words.what}, of {len(mine)} {name} comparisons a covariance variant "
            f"{counts_text(verdict_counts(mine))}; per variant, {'; '.join(per_variant)}.{diverged}"
        )
    return " ".join(sentences) or f"The {name} family is empty."


def deepest_verdicts(comparisons: pd.DataFrame, max_depth: int) -> str:
    """An itemize of the primary comparisons at the deepest depth, per dataset and covariance variant."""
    rows = comparisons[(comparisons.family == "primary") & (comparisons.depth == max_depth)]
    items = [
        r"\item " + verdict_sentence(row).removesuffix(".") + f"; {opponent_words(row)}." for row in rows.itertuples()
    ]
    if not items:
        return f"No primary comparison was made at depth {max_depth}."
    return "\n".join([r"\begin{itemize}", *items, r"\end{itemize}"])


def conclusive_verdicts(comparisons: pd.DataFrame, family: str) -> str:
    """An itemize of every comparison of one family that ended in a verdict other than 'inconclusive'."""
    rows = comparisons[(comparisons.family == family) & (comparisons.verdict != "inconclusive")]
    if rows.empty:
        return f"No {family} comparison is conclusive after the Holm correction."
    items = [r"\item " + verdict_sentence(row) for row in rows.itertuples()]
    return "\n".join(
        [
            f"The {family} comparisons that reached a verdict other than inconclusive:",
            r"\begin{itemize}\small",
            *items,
            r"\end{itemize}",
        ]
    )
