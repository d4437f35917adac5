"""The results section's macros: the abstract's headline comparison, the tests' settings and every verdict in words,
and the references to tables and figures (their number depends on the grid).

Split from covbench.report.paper, which gathers every section's macros.

    macros = {**headline_macros(comparisons, specs, datasets, max_depth),
              **comparison_macros(config, comparisons, specs, datasets, max_depth)}
"""

import pandas as pd

from covbench.analysis.compare import CI_LEVEL, FAMILIES, IDENTICAL_RUNS
from covbench.config import covariance_methods
from covbench.report.labels import dataset_label, method_label, plain_number
from covbench.report.prose import (
    METRIC_WORDS,
    OPPONENT_BRIEF,
    OPPONENT_WORDS,
    claim,
    conclusive_verdicts,
    deepest_verdicts,
    exploratory_datasets,
    family_summary,
    macro_name,
    opponent_words,
    p_text,
    plain,
    signed,
    table_refs,
    verdict_counts,
    verdict_details,
    verdict_sentence,
    word_list,
)
from covbench.report.tables import primary_datasets, verdict_pairs

HEADLINE_NAMES = (
    "HeadlineMethod",
    "HeadlineOther",
    "HeadlineRole",
    "HeadlineClaim",
    "HeadlineDetails",
    "HeadlineDataset",
    "HeadlineDepth",
    "HeadlineDifference",
    "HeadlineCiLow",
    "HeadlineCiHigh",
    "HeadlineMargin",
    "HeadlinePHolm",
    "HeadlinePEquivalence",
    "HeadlineVerdict",
)


def headline_macros(
    comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str], max_depth: int
) -> dict[str, str]:
    """The abstract's comparison, from the primary family: the first covariance variant against its base (else
    the best remedy) at the deepest depth of the first dataset. Where the variant's tuning chose the base itself
    (lambda = 0: identical runs, equivalent by construction) the best remedy is the comparison that says something."""
    variants = covariance_methods(specs)
    rows = comparisons[
        (comparisons.family == "primary")
        & (comparisons.metric == "test_accuracy")
        & (comparisons.dataset == datasets[0])
        & (comparisons.depth == max_depth)
        & (comparisons.method == (variants[0] if variants else None))
    ]
    rank = rows.role.map({"base": 0, "best_remedy": 1}) + 2 * (rows.test == IDENTICAL_RUNS)
    row = next(rows.loc[rank.sort_values(kind="stable").index].itertuples(), None)
    if row is None:
        return {name: "n/a" for name in HEADLINE_NAMES} | {"HeadlineSentence": "no comparison was made."}
    words = METRIC_WORDS["test_accuracy"]
    return {
        "HeadlineMethod": method_label(row.method),
        "HeadlineOther": method_label(row.other_method),
        "HeadlineRole": opponent_words(row),
        "HeadlineClaim": claim(row.method, row.verdict, row.other_method, f", {opponent_words(row)},").rstrip(","),
        "HeadlineDetails": verdict_details(row),
        "HeadlineDataset": dataset_label(row.dataset),
        "HeadlineDepth": str(max_depth),
        "HeadlineDifference": signed(words.scale * row.difference, words.decimals),
        "HeadlineCiLow": plain(words.scale * row.ci_low, words.decimals),
        "HeadlineCiHigh": plain(words.scale * row.ci_high, words.decimals),
        "HeadlineMargin": plain(words.scale * row.margin, words.decimals),
        "HeadlinePHolm": p_text(row.p_holm),
        "HeadlinePEquivalence": p_text(row.p_equivalence_holm),
        "HeadlineVerdict": row.verdict,
        "HeadlineSentence": verdict_sentence(row),
    }


def comparison_macros(
    config: dict, comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str], max_depth: int
) -> dict[str, str]:
    """The test settings, verdict counts per family and metric, and the verdicts in words."""
    settings = config["compare"]
    macros = {
        "Alpha": str(settings["alpha"]),
        "CiLevel": f"{CI_LEVEL * 100:.0f}",
        "VanishingMargin": plain_number(settings["vanishing_margin"]),
        "PrimaryOpponents": word_list([OPPONENT_WORDS[o] for o in settings["primary_opponents"]]),
        "PrimaryOpponentsBrief": word_list([OPPONENT_BRIEF[o] for o in settings["primary_opponents"]]),
        "EquivalenceMargins": word_list(
            [
                f"$\\pm${100 * settings['equivalence_margin'][d]:g} percentage "
                f"point{'' if settings['equivalence_margin'][d] == 0.01 else 's'} on "
                f"{dataset_label(d)}"
                for d in datasets
            ]
        ),
    }
    for dataset, margin in settings["equivalence_margin"].items():
        macros[macro_name("margin", dataset)] = f"{100 * margin:g}"
    for family in FAMILIES:
        rows = comparisons[comparisons.family == family]
        tested = rows.p_value.notna().sum() + rows.p_equivalence.notna().sum()
        macros[macro_name(family, "hypotheses")] = str(int(tested))
        for metric, words in METRIC_WORDS.items():
            for key, value in verdict_counts(rows[rows.metric == metric]).items():
                macros[macro_name(family, words.short, key)] = str(value)
    for row in comparisons.itertuples():
        name = macro_name(
            "verdict",
            METRIC_WORDS[row.metric].short,
            row.method,
            "vs",
            row.other_method,
            row.dataset,
            "depth",
            row.depth,
        )
        macros[name] = verdict_sentence(row)
    macros["ExploratoryDatasets"] = exploratory_datasets(comparisons)
    macros["PrimarySummary"] = family_summary(comparisons, specs, "primary")
    macros["SecondarySummary"] = family_summary(comparisons, specs, "secondary")
    macros["DeepestVerdicts"] = deepest_verdicts(comparisons, max_depth)
    macros["SecondaryVerdicts"] = conclusive_verdicts(comparisons, "secondary")
    return macros


def reference_macros(
    comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str], figure_rules: dict[str, str]
) -> dict[str, str]:
    """Lists of table references (their number depends on the grid) and the rule that made each figure."""
    pairs = verdict_pairs(comparisons, datasets, list(specs))
    macros = {
        "AccuracyTables": table_refs([f"tab:accuracy-{d}" for d in datasets]),
        "VanishingTables": table_refs([f"tab:vanishing-{d}" for d in datasets]),
        "HyperparameterTables": table_refs([f"tab:hyperparameters-{d}" for d in datasets]),
        "VerdictTables": table_refs([f"tab:verdicts-{d}" for d in primary_datasets(comparisons, datasets)]),
        "SecondaryVerdictTables": table_refs([f"tab:verdicts-secondary-{d}-{v}" for d, v in pairs]),
        "VanishingVerdictTables": table_refs([f"tab:verdicts-vanishing-{d}-{v}" for d, v in pairs]),
    }
    for path, rule in figure_rules.items():
        macros[macro_name("rule", path)] = r"\texttt{" + rule.replace("_", r"\_") + "}"
    return macros
