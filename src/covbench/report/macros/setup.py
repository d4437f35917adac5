"""The setup section's macros: the grid (datasets, methods, depths, seeds, runs), the training setup, and tuning
(its budget, rungs, ranges, choices on an end of a range, nested tuning), the MLPs' and the recurrent track's.

Split from covbench.report.paper, which gathers every section's macros.

    macros = {**grid_macros(config, run_summary, specs), **setup_macros(config), **tuning_macros(config, chosen)}
"""

import math

import pandas as pd

from covbench.config import covariance_methods
from covbench.report.labels import dataset_label, method_label, plain_number
from covbench.report.prose import macro_name, word_list
from covbench.training.collapse import COLLAPSED_FRACTION
from covbench.training.tune import INCLUSION_TOLERANCE, budget_epochs, rung_sizes

SHALLOW_DEPTH = 4  # depths at which every standard remedy is expected to learn


# --- the grid and the training setup -------------------------------------------------------------


def grid_macros(config: dict, run_summary: pd.DataFrame, specs: dict[str, dict]) -> dict[str, str]:
    grid = config["grid"]
    variants = covariance_methods(specs)
    remedies = [m for m in specs if m not in variants]
    planned = len(grid["datasets"]) * len(grid["methods"]) * len(grid["depths"]) * len(grid["seeds"])
    return {
        "NumDatasets": str(len(grid["datasets"])),
        "DatasetList": word_list([dataset_label(d) for d in grid["datasets"]]),
        "NumMethods": str(len(specs)),
        "NumRemedies": str(len(remedies)),
        "RemedyList": word_list([method_label(m) for m in remedies]),
        "NumCovarianceVariants": str(len(variants)),
        "CovarianceVariantList": word_list([method_label(m) for m in variants]),
        "NumDepths": str(len(grid["depths"])),
        "DepthList": word_list(sorted(grid["depths"])),
        "MaxDepth": str(max(grid["depths"])),
        "NumSeeds": str(len(grid["seeds"])),
        "SeedList": word_list(sorted(grid["seeds"])),
        "NumRunsPlanned": str(planned),
        "NumRuns": str(len(run_summary)),
        "NumDivergedRuns": str(int(run_summary.diverged.sum())),
        "DivergedCells": diverged_cells(run_summary),
        "NumCollapsedRuns": str(int(run_summary.collapsed.sum())),
        "CollapsedShallowRemedies": collapsed_remedies(run_summary, remedies, SHALLOW_DEPTH),
    }


def diverged_cells(run_summary: pd.DataFrame) -> str:
    """For figure captions: which cells had diverged runs, and how many, counted at the outcome they had when they
    stopped (the figures mark those cells)."""
    runs = run_summary.groupby(["dataset", "method", "depth"]).diverged.agg(["sum", "size"])
    runs = runs[runs["sum"] > 0]
    if runs.empty:
        return "No run diverged."
    return (
        "Runs diverged, each counted at the outcome it had when it stopped, in "
        + word_list(
            [
                f"{method_label(m)} at depth {d} on {dataset_label(ds)} ({int(n)} of {size})"
                for (ds, m, d), (n, size) in runs.iterrows()
            ]
        )
        + "."
    )


def collapsed_remedies(run_summary: pd.DataFrame, remedies: list[str], max_depth: int) -> str:
    """Which tuned remedies of depth <= max_depth ended collapsed (training loss at the class-prior entropy)."""
    rows = run_summary[run_summary.method.isin(remedies) & (run_summary.depth <= max_depth) & run_summary.collapsed]
    if rows.empty:
        return f"no standard remedy of depth at most {max_depth} ended collapsed"
    cells = rows.groupby(["dataset", "method", "depth"]).size()
    return "these runs of standard remedies of depth at most {} ended collapsed: {}".format(
        max_depth,
        word_list(
            [
                f"{method_label(m)} at depth {d} on {dataset_label(ds)} ({n} of its seeds)"
                for (ds, m, d), n in cells.items()
            ]
        ),
    )


def setup_macros(config: dict) -> dict[str, str]:
    train = config["train"]
    sentences = []
    for dataset in config["grid"]["datasets"]:
        data = config["datasets"][dataset]
        size = (
            "the whole training split"
            if data["train_size"] is None
            else f"a stratified subset of {data['train_size']} training examples"
        )
        held_out = [
            f"{data[key]} {name}"
            for key, name in (("val_size", "validation"), ("test_size", "test"))
            if data.get(key) is not None
        ]
        size += f" ({word_list(held_out)} examples)" if held_out else ""
        if data.get("standardize_inputs"):
            size += ", its pixels standardized for every method with the training split's mean and standard deviation"
        sentences.append(
            f"on {dataset_label(dataset)}, {size}, "
            f"{data['epochs']} epochs in mini-batches of {data['batch_size']}, statistics logged every "
            f"{data.get('log_every', train['log_every'])} steps and a validation-accuracy threshold of "
            f"{data['val_threshold']}"
        )
    return {
        "Width": str(train["width"]),
        "Momentum": str(train["momentum"]),
        "WeightDecay": str(train["weight_decay"]),
        "DatasetSetup": "; ".join(sentences),
        "SplitSetup": split_setup(config),
    }


CITATIONS = {"catvnoncat": r"\citep{catvnoncat}"}


def split_setup(config: dict) -> str:
    """How each dataset of the grid other than MNIST is split (config datasets.<d>.split,
    docs/design.md#per-seed-splits): drawn anew for every seed, or its official split; 'no other dataset' where the grid
    has none."""
    clauses = []
    for dataset in [d for d in config["grid"]["datasets"] if d != "mnist"]:
        label = f"{dataset_label(dataset)} {CITATIONS.get(dataset, '')}".rstrip()
        if config["datasets"][dataset].get("split", "official") == "per_seed":
            clauses.append(
                f"{label} pools its official training and test images, and every seed, each tuning seed included, "
                "draws its own stratified split of them into training, validation and test data"
            )
        else:
            clauses.append(
                f"{label} splits its official training images into training and validation with a fixed seed and "
                "keeps its official test set"
            )
    return "; ".join(clauses) or "no other dataset is in the grid"


# --- tuning -------------------------------------------------------------------------------------


def rung_sentence(trials: int, rung_epochs: list[int], eta: int) -> str:
    """'8 trials train 2 epochs, the best 4 go on to epoch 5 and the best 2 to epoch 10 (38 trial-epochs)'."""
    sizes = rung_sizes(trials, len(rung_epochs), eta)
    first = f"{sizes[0]} trials train {rung_epochs[0]} epoch{'' if rung_epochs[0] == 1 else 's'}"
    later = [f"the best {n} to epoch {end}" for n, end in zip(sizes[1:], rung_epochs[1:])]
    if later:
        later[0] = later[0].replace(" to ", " go on to ", 1)
    return f"{word_list([first, *later])} ({budget_epochs(trials, rung_epochs, eta)} trial-epochs)"


def edge_items(chosen: pd.DataFrame, position: str = "depth {}") -> list[str]:
    """Every choice at an end of its learning-rate range, with what the other trials of its cell did; `position`
    names a cell's depth (a recurrent cell's is its sequence length)."""
    items = []
    for row in chosen[chosen.lr_edge != ""].sort_values(["dataset", "method", "depth"]).itertuples():
        evidence = (
            f"all {row.trials - 1} other trials diverged"
            if row.trials_diverged == row.trials - 1
            else f"{row.trials_diverged} of {row.trials - 1} other trials diverged"
        )
        if row.trials_overfit:
            evidence += (
                f", {row.trials_overfit} fit the training set more closely but ended with a higher validation loss"
            )
        items.append(
            f"{method_label(row.method)} at {position.format(row.depth)} on {dataset_label(row.dataset)} "
            f"({row.lr_edge} end, lr {plain_number(row.lr)}; {evidence})"
        )
    return items


def aux_edge_items(chosen: pd.DataFrame, position: str = "depth {}") -> list[str]:
    """Every auxiliary hyperparameter (covariance strength, deep-supervision weight) at an end of its range."""
    items = []
    for row in chosen[chosen.aux_edge != ""].sort_values(["dataset", "method", "depth"]).itertuples():
        name, value = ("$\\lambda$", row.cov_lambda) if not pd.isna(row.cov_lambda) else ("weight", row.aux_weight)
        items.append(
            f"{method_label(row.method)} at {position.format(row.depth)} on {dataset_label(row.dataset)} "
            f"({row.aux_edge} end, {name} {plain_number(value)})"
        )
    return items


def aux_edge_sentence(chosen: pd.DataFrame, position: str = "depth {}") -> str:
    items = aux_edge_items(chosen, position)
    if not items:
        return "No auxiliary hyperparameter sits on an end of its range."
    low = int((chosen.aux_edge == "low").sum())
    reason = (
        " At the low end the validation loss preferred the weakest auxiliary term it was offered (for a method "
        "tuned nested in its base, value 0: none at all): the evidence points towards less of that term rather "
        "than to a range too narrow."
        if low
        else ""
    )
    return (
        f"The auxiliary hyperparameter sits on an end of its range in {len(items)} cells ({low} on the low "
        f"end): {word_list(items)}.{reason}"
    )


def recurrent_edge_macros(chosen: pd.DataFrame) -> dict[str, str]:
    """The recurrent track's tuning choices on an end of a range, listed as the MLPs' are (docs/design.md#tuning)."""
    if chosen is None or chosen.empty:
        return {"LongMemoryTuneEdges": ""}
    position = "$T$ = {}"
    edges = edge_items(chosen, position)
    lr_sentence = (
        f"Of its {len(chosen)} tuning choices, no learning rate sits on an end of its range."
        if not edges
        else f"Of its {len(chosen)} tuning choices, {len(edges)} learning rates sit on an end of their "
        f"range: {word_list(edges)}."
    )
    return {"LongMemoryTuneEdges": f"{lr_sentence} {aux_edge_sentence(chosen, position)}"}


def tuning_macros(config: dict, chosen: pd.DataFrame) -> dict[str, str]:
    tune = config["tune"]
    trials = chosen.trials.astype(int)
    edges = edge_items(chosen)
    ranges = {f"lr_{optimizer}": bounds for optimizer, bounds in tune["lr"].items()}
    ranges.update({name: tune[name] for name in ("cov_lambda", "aux_weight")})
    return {
        "TuneTrials": str(trials.min()) if trials.min() == trials.max() else f"{trials.min()}--{trials.max()}",
        "TuneTrialsTotal": str(int(trials.sum())),
        "TuneCells": str(len(chosen)),
        "TuneSeed": str(tune["seed"]),
        "TuneEta": str(tune["eta"]),
        **{
            macro_name("tune", name, end): plain_number(value)
            for name, bounds in ranges.items()
            for end, value in zip(("low", "high"), bounds)
        },
        "TuneRungs": "; ".join(
            f"on {dataset_label(d)}, {rung_sentence(tune['trials'], config['datasets'][d]['tune_epochs'], tune['eta'])}"
            for d in config["grid"]["datasets"]
        ),
        "TuneSelectedOn": word_list(
            sorted(
                {"validation loss at the best checkpoint" if s == "best_val_loss" else s for s in chosen.selected_on}
            )
        ),
        "TuneCollapsedChoices": str(int(chosen.collapsed.sum())),
        "CollapsedPercent": f"{100 * COLLAPSED_FRACTION:.0f}",
        "TunePlateauBound": f"{1 / COLLAPSED_FRACTION:.2f}",
        "TuneEdgeCount": str(len(edges)),
        "TuneEdgeLowCount": str(int((chosen.lr_edge == "low").sum())),
        "TuneEdgeHighCount": str(int((chosen.lr_edge == "high").sum())),
        "TuneEdgeList": (
            "No choice sits on an end of its range."
            if not edges
            else f"The choices on an end of their range are: {word_list(edges)}."
        ),
        "TuneAuxEdgeList": aux_edge_sentence(chosen),
        **nested_macros(tune, chosen),
    }


def nested_macros(tune: dict, chosen: pd.DataFrame) -> dict[str, str]:
    """Nested tuning (docs/design.md#nested-tuning): its grids, how many cells used it and its budget against the
    base's."""
    nested = chosen[chosen.nested_in.astype(bool)] if "nested_in" in chosen else chosen.iloc[:0]
    ratio = nested.budget_ratio.astype(float) if "budget_ratio" in nested else pd.Series(dtype=float)
    low, high = (ratio.min(), ratio.max()) if len(ratio) else (math.nan, math.nan)
    return {
        "NestedLambdas": word_list([plain_number(v) for v in tune["nested"]["cov_lambda"]]),
        "NestedAuxWeights": word_list([plain_number(v) for v in tune["nested"]["aux_weight"]]),
        "NestedCells": str(len(nested)),
        "NestedBudgetRatio": (
            "--" if not len(ratio) else f"{low:.2f}" if math.isclose(low, high) else f"{low:.2f}--{high:.2f}"
        ),
        "InclusionTolerancePercent": f"{100 * INCLUSION_TOLERANCE:.0f}",
    }
