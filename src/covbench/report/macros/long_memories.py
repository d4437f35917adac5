"""The "Long memories" section's numbers and sentences (docs/design.md#the-recurrent-track): the recurrent track, where
a run's `depth` is its sequence length T. Called by covbench.report.paper.paper_macros with the recurrent rows of the
tables."""

import numpy as np
import pandas as pd

from covbench.config import covariance_methods, method_spec
from covbench.data.sequences import ROWS
from covbench.report.labels import dataset_label, method_label
from covbench.report.prose import claim, family_summary, table_refs, verdict_details, word_list


def _accuracy_clauses(method_summary: pd.DataFrame, dataset: str, length: int, methods: list[str]) -> list[str]:
    rows = method_summary[
        (method_summary.metric == "test_accuracy")
        & (method_summary.dataset == dataset)
        & (method_summary.depth == length)
        & method_summary.method.isin(methods)
    ]
    rows = rows.sort_values("median", ascending=False)
    return [
        f"{method_label(r.method)} {100 * r.median:.1f}\\% [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]"
        for r in rows.itertuples()
    ]


def _index_clauses(method_summary: pd.DataFrame, dataset: str, length: int, methods: list[str], metric: str):
    rows = method_summary[
        (method_summary.metric == metric)
        & (method_summary.dataset == dataset)
        & (method_summary.depth == length)
        & method_summary.method.isin(methods)
    ]

    def index(value):  # -inf: ||dL/dh_1|| underflowed float32 at some logged step
        return f"{value:.1f}" if np.isfinite(value) else "$-\\infty$ (the first step's gradient underflows float32)"

    return [f"{method_label(r.method)} {index(r.median)}" for r in rows.sort_values("median").itertuples()]


def long_memory_macros(config: dict, method_summary: pd.DataFrame, comparisons: pd.DataFrame) -> dict[str, str]:
    """Macros of the recurrent track; `method_summary` and `comparisons` may hold other tracks' rows too."""
    track = config.get("recurrent", {"datasets": [], "methods": [], "lengths": []})
    datasets, methods, lengths = track["datasets"], track["methods"], sorted(track.get("lengths", []))
    specs = {m: method_spec(config, m) for m in methods}
    if not datasets:
        off = "The recurrent track is not part of this configuration."
        return {
            "LongMemoryRows": str(ROWS),
            "LongMemoryCovarianceVariants": "none",
            "LongMemoryAccuracyTables": "no table",
            "LongMemoryVerdictTables": "no table",
            "LongMemoryLengths": "none",
            "LongMemoryMaxLength": "--",
            "LongMemorySetup": off,
            "LongMemoryAccuracy": off,
            "LongMemoryVanishing": off,
            "LongMemoryVerdicts": off,
            "LongMemoryDeepest": off,
        }
    data = config["datasets"][datasets[0]]
    longest, shortest = max(lengths), min(lengths)
    accuracy, vanishing = [], []
    for dataset in datasets:
        where = f"on {dataset_label(dataset)}"
        for length in dict.fromkeys([shortest, longest]):
            clauses = _accuracy_clauses(method_summary, dataset, length, methods)
            if clauses:
                accuracy.append(
                    f"At $T = {length}$ {where} the median test accuracy (bootstrap interval) is {word_list(clauses)}."
                )
        for metric, when in (
            ("vanishing_index_init", "at initialization"),
            ("vanishing_index_epoch1", "averaged over the first epoch"),
        ):
            clauses = _index_clauses(method_summary, dataset, longest, methods, metric)
            if clauses:
                vanishing.append(
                    f"At $T = {longest}$ {where}, {when}, the temporal vanishing index is {word_list(clauses)} decades."
                )
    deepest = comparisons[
        (comparisons.family == "recurrent_primary")
        & (comparisons.depth == longest)
        & (comparisons.metric == "test_accuracy")
    ]
    items = [
        r"\item " + claim(r.method, r.verdict, r.other_method, f" at $T = {r.depth}$") + f" ({verdict_details(r)})."
        for r in deepest.itertuples()
    ]
    measured = [d for d in datasets if d in set(method_summary.dataset)]  # tables.all_tables writes theirs only
    return {
        "LongMemoryRows": str(ROWS),
        "LongMemoryAccuracyTables": table_refs([f"tab:accuracy-{d}" for d in measured]),
        "LongMemoryVerdictTables": table_refs(
            [
                f"tab:verdicts-{d}"
                for d in measured
                if d in set(comparisons.dataset[comparisons.family == "recurrent_primary"])
            ]
        ),
        "LongMemoryLengths": word_list(lengths),
        "LongMemoryMaxLength": str(longest),
        "LongMemorySetup": (
            f"{word_list([method_label(m) for m in methods])}, each with {data.get('width', config['train']['width'])} "
            f"hidden units, on {data['train_size'] or 'all'} training images for {data['epochs']} "
            f"epochs (batch {data['batch_size']}), validated on {data.get('val_size') or 'all'} "
            f"images every epoch and tested once"
        ),
        "LongMemoryCovarianceVariants": word_list([method_label(m) for m in covariance_methods(specs)]),
        "LongMemoryAccuracy": " ".join(accuracy) or "No recurrent run finished.",
        "LongMemoryVanishing": " ".join(vanishing) or "No recurrent run logged its gradients.",
        "LongMemoryVerdicts": family_summary(comparisons, specs, "recurrent_primary"),
        "LongMemoryDeepest": (
            "\n".join([r"\begin{itemize}", *items, r"\end{itemize}"])
            if items
            else f"No primary comparison was made at $T = {longest}$."
        ),
    }
