"""The Mechanism section's macros (docs/design.md#mechanism, "Mechanism"): the numbers of covbench.analysis.mechanism at
the grid's deepest depth, and the sentences made of them. Split from the former flat mechanism.py: the words, in the
report layer, beside the numbers' analysis below it.

    macros = mechanism_macros(config, run_summary, layer_summary, probe_summary, comparisons)
"""

import numpy as np
import pandas as pd

from covbench.analysis.aggregate import CELL_KEYS
from covbench.analysis.compare import decided_best_remedy
from covbench.analysis.mechanism import cell_values
from covbench.config import base_method, covariance_methods, method_spec
from covbench.report.labels import dataset_label, method_label
from covbench.report.prose import macro_name, plain, signed, word_list

MOMENTS = {"init": "at initialization", "last": "over the last epoch"}


# --- words ------------------------------------------------------------------------------------------


def magnitude(value: float) -> str:
    """A positive size in LaTeX with two significant digits: $0.42$, $3.1$, $2.0 \\times 10^{-3}$; n/a if not finite."""
    if not np.isfinite(value):
        return "n/a"
    if value == 0:
        return "$0$"
    exponent = int(np.floor(np.log10(abs(value))))
    if -2 <= exponent <= 2:
        return f"${value:.{max(1 - exponent, 0)}f}$"
    mantissa = round(value / 10.0**exponent, 1)
    if abs(mantissa) >= 10:  # 9.96e-4 rounds to 10.0e-4
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"${mantissa:.1f} \\times 10^{{{exponent}}}$"


def percent(fraction: float, decimals: int = 0) -> str:
    return f"${100 * fraction:.{decimals}f}\\%$" if np.isfinite(fraction) else "n/a"


def where_words(dataset: str, depth: int) -> str:
    return f"at depth {depth} on {dataset_label(dataset)}"


def _capital(text: str) -> str:
    """First letter upper case, the rest as it is (str.capitalize would write 'Mnist')."""
    return text[:1].upper() + text[1:]


def force_sentence(dataset: str, variants: list[str], depth: int, cells: dict[str, dict]) -> str:
    """'At depth D on DATA, over the last epoch, the median cosine ... at (layer 1, layer D) is (c1, cD) for X, ...;
    the median ratio ... is (r1, rD) for X, ...', then a sentence for each variant not run or without a value."""
    where = where_words(dataset, depth)
    if not variants:
        return f"No covariance variant was run {where}."
    finite = {
        v: cells[v]["runs"]
        and np.isfinite([cells[v][f"{s}_{layer}"] for s in ("ratio", "cosine") for layer in ("layer1", "layerL")]).any()
        for v in variants
    }
    measured = [v for v in variants if finite[v]]

    def pairs(short, text):
        return word_list(
            [
                f"({text(cells[v][f'{short}_layer1'])}, {text(cells[v][f'{short}_layerL'])}) for {method_label(v)}"
                for v in measured
            ]
        )

    sentences = (
        [
            (
                f"{_capital(where)}, {MOMENTS['last']}, the median cosine between the force and the gradient it "
                f"joins at (layer 1, layer {depth}) is {pairs('cosine', lambda v: plain(v, 2))}; the median ratio "
                f"of their norms is {pairs('ratio', magnitude)}."
            )
        ]
        if measured
        else []
    )
    sentences += [
        f"{method_label(v)} was not run {where}."
        if not cells[v]["runs"]
        else f"{method_label(v)} has no finite force statistic {MOMENTS['last']} {where}."
        for v in variants
        if not finite[v]
    ]
    return " ".join(sentences)


def active_sentence(dataset: str, variants: list[str], depth: int, cells: dict[str, dict]) -> str:
    """'On DATA at depth D the force is active on a median of p% of logged steps for X, q% for Y.'"""
    where = where_words(dataset, depth)
    if not variants:
        return f"No covariance variant was run {where}."
    parts = [
        f"{percent(cells[v]['active_step_fraction'])} for {method_label(v)}"
        if cells[v]["runs"]
        else f"not measured for {method_label(v)}, which was not run"
        for v in variants
    ]
    return (
        f"{_capital(where)}, the median share of logged steps on which the force is active (a group of the "
        f"batch has at least two correct and one wrong example) is {word_list(parts)}."
    )


def probe_sentence(
    dataset: str,
    variants: list[str],
    bases: dict[str, str | None],
    remedy: str | None,
    depth: int,
    cells: dict[str, dict],
) -> str:
    """Layer 1's probe gain (init -> after the last epoch) of the variants against their base, and of the best
    remedy: one clause per base, so a base shared by variants is named once."""

    def gain(method):
        if not cells[method]["runs"]:
            return "not run"
        value, cell = cells[method]["probe_gain_layer1"], cells[method]
        if not np.isfinite(value):
            return "n/a (no finite probe)"
        levels = (
            f" (from {percent(cell['probe_layer1_init'], 1)} to {percent(cell['probe_layer1_final'], 1)})"
            if np.isfinite([cell["probe_layer1_init"], cell["probe_layer1_final"]]).all()
            else ""
        )
        return f"{signed(100 * value, 1)}{levels}"

    def gains(methods):
        return word_list([f"{gain(m)} for {method_label(m)}" for m in methods])

    clauses = []
    for base in dict.fromkeys(bases.get(v) for v in variants):
        group = [v for v in variants if bases.get(v) == base]
        clauses.append(
            f"{gains(group)}, against {gain(base)} for {'its' if len(group) == 1 else 'their'} base "
            f"{method_label(base)}"
            if base
            else f"{gains(group)} ({'its' if len(group) == 1 else 'their'} base is not in the grid)"
        )
    if remedy is not None:
        clauses.append(f"{gain(remedy)} for the best remedy on validation, {method_label(remedy)}")
    if not clauses:
        return f"No covariance variant or standard remedy was probed {_capital(where_words(dataset, depth))}."
    if len(clauses) > 1:
        clauses[-1] = "and " + clauses[-1]
    return (
        f"{_capital(where_words(dataset, depth))}, the validation accuracy of the first layer's linear probe "
        f"changes from initialization to after the last epoch by a median of, in percentage points (its median "
        f"accuracy at both ends in parentheses): {'; '.join(clauses)}."
    )


def probed_seeds_text(seeds: list[int], probed: list[int] | None) -> str:
    """Which runs the probes read: every seed's, or a subset (config probes.seeds)."""
    kept = [s for s in seeds if probed is None or s in probed]
    if len(kept) == len(seeds):
        return "of every run"
    return (
        f"of the runs of seeds {word_list(kept)} ({len(kept)} of the {len(seeds)}: the probes are descriptive, "
        "no verdict reads them)"
    )


def mechanism_macros(
    config: dict,
    run_summary: pd.DataFrame,
    layer_summary: pd.DataFrame | None,
    probe_summary: pd.DataFrame | None,
    comparisons: pd.DataFrame,
) -> dict[str, str]:
    """The Mechanism section's numbers and sentences at the deepest depth of the grid, per dataset and covariance
    variant (and each variant's base and the best remedy the verdicts used, from `comparisons`, for the probes);
    None tables: nothing was measured."""
    from covbench.training.probes import MAX_ITER

    grid, probes = config["grid"], config["probes"]
    specs = {m: method_spec(config, m) for m in grid["methods"]}
    variants = covariance_methods(specs)
    bases = {v: base_method(v, specs) for v in variants}
    depth = max(grid["depths"])
    if layer_summary is None:
        layer_summary = pd.DataFrame(columns=CELL_KEYS + ["layer", "epoch", "statistic", "median"])
    number_of = {
        "cosine_layer1": lambda v: plain(v, 2),
        "cosine_layerL": lambda v: plain(v, 2),
        "ratio_layer1": magnitude,
        "ratio_layerL": magnitude,
        "active_step_fraction": percent,
    }
    name_of = {
        "cosine_layer1": "cosine first",
        "cosine_layerL": "cosine last",
        "ratio_layer1": "ratio first",
        "ratio_layerL": "ratio last",
        "active_step_fraction": "active",
    }
    extra_epochs = sorted(probes["epochs"])
    macros = {
        "MechanismDepth": str(depth),
        "ProbeTrainSize": str(probes["train_size"]),
        "ProbeValSize": str(probes["val_size"]),
        "ProbeMaxIter": str(MAX_ITER),
        "ProbeSeeds": probed_seeds_text(grid["seeds"], probes.get("seeds")),
        "ProbeEpochs": (
            "at initialization and after the last epoch"
            if not extra_epochs
            else f"at initialization, after epoch{'s' if len(extra_epochs) > 1 else ''} "
            f"{', '.join(map(str, extra_epochs))} and after the last epoch"
        ),
    }
    sentences = {"Force": [], "Active": [], "Probes": []}
    for dataset in grid["datasets"]:
        remedy = decided_best_remedy(comparisons, dataset, depth)
        shown = list(dict.fromkeys([*variants, *(b for b in bases.values() if b), *([remedy] if remedy else [])]))
        cells = {m: cell_values(run_summary, layer_summary, dataset, m, depth, "last", probe_summary) for m in shown}
        for variant in variants:
            for column, text in number_of.items():
                macros[macro_name("mechanism", name_of[column], dataset, variant)] = text(cells[variant][column])
        for method in shown:
            gain = cells[method]["probe_gain_layer1"]
            macros[macro_name("mechanism probe gain", dataset, method)] = signed(100 * gain, 1)
        macros[macro_name("mechanism best remedy", dataset)] = method_label(remedy) if remedy else "none"
        by_dataset = {
            "Force": force_sentence(dataset, variants, depth, cells),
            "Active": active_sentence(dataset, variants, depth, cells),
            "Probes": probe_sentence(dataset, variants, bases, remedy, depth, cells),
        }
        for kind, sentence in by_dataset.items():
            macros[macro_name("mechanism", kind, dataset)] = sentence
            sentences[kind].append(sentence)
    for kind, items in sentences.items():
        macros[macro_name("mechanism", kind, "sentences")] = " ".join(items)
    return macros
