"""The best-shot section's macros (docs/design.md#the-best-shot): the lambda sweep's settings, verdict counts and one
sentence per swept cell, and nested tuning's profile sentences.

Split from the former flat sweep.py: the words about covbench.analysis.sweep's summary, in the report layer.

    macros = {**sweep_macros(config, summary), **profile_macros(lambda_profile, layer_summary)}
"""

import math

import pandas as pd

from covbench.analysis import compare
from covbench.analysis.sweep import COUNTED, SUMMARY_COLUMNS, ZERO_CHOSEN
from covbench.report.labels import dataset_label, method_label, plain_number
from covbench.report.prose import macro_name, p_text, plain, signed, word_list

# --- the paper's sentences -----------------------------------------------------------------------------


def cell_sentence(row) -> str:
    """'For X at depth D on DATA the best lambda on validation is V; ...: verdict.' from one summary row."""
    head = (
        f"For {method_label(row.variant)} at depth {row.depth} on {dataset_label(row.dataset)} the best "
        f"$\\lambda$ on validation is ${plain_number(row.best_lambda)}$"
    )
    if row.verdict == ZERO_CHOSEN:
        return f"{head}, the base {method_label(row.base)} itself: $\\lambda = 0$ is chosen."
    difference = f"its test accuracy differs by {signed(100 * row.difference, 1)} percentage points"
    if row.reason:
        detail = f"no test: {row.reason}"
    else:
        detail = (
            f"{compare.CI_LEVEL * 100:.0f}\\% interval [{plain(100 * row.ci_low, 1)}, "
            f"{plain(100 * row.ci_high, 1)}], margin $\\pm${plain(100 * row.margin, 1)}; Holm $p$ "
            f"{p_text(row.p_holm)} for a difference, {p_text(row.p_equivalence_holm)} for equivalence"
        )
    claim = (
        "the comparison is inconclusive"
        if row.verdict == "inconclusive"
        else f"$\\lambda = {plain_number(row.best_lambda)}$ {row.verdict} $\\lambda = 0$"
    )
    return f"{head}; against $\\lambda = 0$ (the base {method_label(row.base)}) {difference} ({detail}): {claim}."


def force_ratio_layer1(layer_summary: pd.DataFrame | None, dataset: str, method: str, depth: int) -> float:
    """Median over seeds of force_grad_ratio at layer 1 (an RNN: time step 1) over the last epoch of the final runs:
    how large the chosen force was against the gradient it joins (NaN: no force, or no statistics)."""
    if layer_summary is None:
        return math.nan
    rows = layer_summary[
        (layer_summary.dataset == dataset)
        & (layer_summary.method == method)
        & (layer_summary.depth == depth)
        & (layer_summary.statistic == "force_grad_ratio")
        & (layer_summary.layer == 1)
    ]
    return float(rows.loc[rows.epoch == rows.epoch.max(), "median"].iloc[0]) if len(rows) else math.nan


def profile_sentence(cell: pd.DataFrame, ratio: float) -> str:
    """Which value of the nested hyperparameter won in one (dataset, method, depth), against the base's choice."""
    chosen, first = cell[cell.chosen].iloc[0], cell.iloc[0]
    symbol = "$\\lambda$" if first.hyperparameter == "cov_lambda" else "the companion-loss weight"
    note = " (the base itself: no force)" if chosen.value == 0 else ""
    head = (
        f"{method_label(first.method)} at depth {first.depth} on {dataset_label(first.dataset)}: {symbol} "
        f"${plain_number(chosen.value)}$ won{note} at learning rate ${plain_number(chosen.lr)}$, validation loss {plain(chosen.val_loss, 3)} against "
        f"{plain(first.base_val_loss, 3)} for {method_label(first.base)}"
    )
    force = (
        "" if not math.isfinite(ratio) else f"; the force was {plain(100 * ratio, 2)}\\,\\% of the gradient at layer 1"
    )
    return head + force + "."


def profile_macros(profile: pd.DataFrame | None, layer_summary: pd.DataFrame | None) -> dict[str, str]:
    """One sentence per nested cell (profile_sentence) and their count, for the best-shot section."""
    profile = pd.DataFrame(columns=["dataset", "method", "depth", "chosen", "value"]) if profile is None else profile
    cells = profile.groupby(["dataset", "method", "depth"], sort=True)
    sentences = {
        macro_name("profile", dataset, method, "depth", depth): profile_sentence(
            cell.sort_values("value"), force_ratio_layer1(layer_summary, dataset, method, depth)
        )
        for (dataset, method, depth), cell in cells
    }
    zero = sum(bool((cell[cell.chosen].value == 0).any()) for _, cell in cells)
    items = [r"\item " + sentence for sentence in sentences.values()]
    return {
        "ProfileCells": str(len(sentences)),
        "ProfileZeroChosen": str(zero),
        **sentences,
        "ProfileSentences": "\n".join([r"\begin{itemize}\small", *items, r"\end{itemize}"]) if items else "",
    }


def sweep_macros(config: dict, summary: pd.DataFrame | None) -> dict[str, str]:
    """The sweep's settings, verdict counts and one sentence per (dataset, variant, depth) of `summary`
    (None: nothing was swept)."""
    sweep = config["lambda_sweep"]
    summary = pd.DataFrame(columns=SUMMARY_COLUMNS) if summary is None else summary
    sentences = {
        macro_name("sweep", row.variant, row.dataset, "depth", row.depth): cell_sentence(row)
        for row in summary.itertuples()
    }
    counts = {key: int((summary.verdict == verdict).sum()) for key, verdict in COUNTED.items()}
    depths = sorted(sweep["depths"])
    items = [r"\item " + sentence for sentence in sentences.values()]
    return {
        "SweepVariants": word_list([method_label(v) for v in sweep["variants"]]),
        "SweepDepths": f"depth{'' if len(depths) == 1 else 's'} {word_list(depths)}",
        "SweepLambdas": word_list([f"${plain_number(v)}$" for v in sorted(sweep["lambdas"])]),
        "SweepNumLambdas": str(len(sweep["lambdas"])),
        "SweepNumSeeds": str(len(sweep["seeds"])),
        "SweepCells": str(len(summary)),
        "SweepHypotheses": str(int(summary.p_value.notna().sum() + summary.p_equivalence.notna().sum())),
        **{macro_name("sweep", key): str(n) for key, n in counts.items()},
        "SweepSummary": (
            f"Of the {len(summary)} cells, the best $\\lambda$ on validation is $\\lambda = 0$ in "
            f"{counts['zero chosen']}; in the others it beats $\\lambda = 0$ in {counts['beats']}, is "
            f"beaten by it in {counts['beaten']}, is equivalent to it in {counts['equivalent']} and is "
            f"inconclusive in {counts['inconclusive']}:"
            if items
            else "No covariance variant was swept."
        ),
        **sentences,
        "SweepSentences": "\n".join([r"\begin{itemize}\small", *items, r"\end{itemize}"]) if items else "",
    }
