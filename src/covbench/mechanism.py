"""Why the covariance force helps or not (DESIGN section 7, "Mechanism"): its diagnostics and the linear probes
as numbers, sentences for the paper and the table of issue 14's closing note.

Three questions per covariance variant at a (dataset, depth): is the force there at all (the fraction of logged
steps with an active group), is it large enough to matter at the early layers (force_grad_ratio at layer 1 and
layer L), does it point downhill (force_grad_cosine); and did the first layer's representation learn (the gain of
its linear probe from init to after the last epoch), against the variant's base and the best remedy.

Ratio and cosine are read from layer_summary at the cell's last epoch (median over seeds of each seed's mean over
the steps logged in that epoch); a step without an active group counts as ratio 0 and has no cosine (NaN: the cosine is the mean over the steps
where the force acts). The active
fraction and the probe gain are per-run columns of run_summary, summarized by the median over seeds.

    macros = mechanism_macros(config, run_summary, layer_summary, probe_summary, method_summary)
    print(note_table(run_summary, layer_summary, specs).to_string())
"""
import numpy as np
import pandas as pd

from covbench.aggregate import CELL_KEYS, best_remedy
from covbench.compare import best_remedy_of_cell, covariance_methods
from covbench.config import base_method, method_spec
from covbench.prose import macro_name, plain, signed, word_list
from covbench.tables import dataset_label, method_label

MOMENTS = {"init": "at initialization", "last": "over the last epoch"}
VALUE_COLUMNS = ["ratio_layer1", "ratio_layerL", "cosine_layer1", "cosine_layerL", "active_step_fraction",
                 "probe_gain_layer1", "probe_layer1_init", "probe_layer1_final"]
NOTE_DEPTHS = (8, 32)
NOTE_METHODS = ("baseline", "covariance", "covariance_pooled")


# --- numbers ----------------------------------------------------------------------------------------

def at_moment(layer_summary: pd.DataFrame, moment: str) -> pd.DataFrame:
    """The rows of layer_summary at init (epoch 0) or at each (dataset, method, depth)'s last epoch."""
    if moment == "init":
        return layer_summary[layer_summary.epoch == 0]
    last = layer_summary.groupby(CELL_KEYS)["epoch"].transform("max")
    return layer_summary[(layer_summary.epoch == last) & (last > 0)]


def layer_median(layer_summary: pd.DataFrame, dataset: str, method: str, depth: int, statistic: str, layer: int,
                 moment: str = "last") -> float:
    """Median over seeds of `statistic` at one layer and moment (NaN when absent)."""
    rows = layer_summary[(layer_summary.dataset == dataset) & (layer_summary.method == method)
                         & (layer_summary.depth == depth) & (layer_summary.statistic == statistic)]
    rows = at_moment(rows, moment)
    rows = rows[rows.layer == layer]
    return float(rows["median"].iloc[0]) if len(rows) else np.nan


def run_median(run_summary: pd.DataFrame, dataset: str, method: str, depth: int, column: str) -> float:
    """Median over the seeds with a finite value of a run_summary column (NaN when none has one)."""
    if column not in run_summary:
        return np.nan
    rows = run_summary[(run_summary.dataset == dataset) & (run_summary.method == method) & (run_summary.depth == depth)]
    values = rows[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else np.nan


def probe_median(probe_summary: pd.DataFrame | None, dataset: str, method: str, depth: int, layer: int,
                 moment: str) -> float:
    """Median probe accuracy over seeds of one layer at init or after the cell's last probed epoch (NaN when absent)."""
    if probe_summary is None:
        return np.nan
    rows = probe_summary[(probe_summary.dataset == dataset) & (probe_summary.method == method)
                         & (probe_summary.depth == depth) & (probe_summary.layer == layer)]
    rows = rows[rows.epoch == (0 if moment == "init" else rows.epoch.max())]
    return float(rows["median"].iloc[0]) if len(rows) and (moment == "init" or rows.epoch.iloc[0] > 0) else np.nan


def cell_values(run_summary: pd.DataFrame, layer_summary: pd.DataFrame, dataset: str, method: str, depth: int,
                moment: str = "last", probe_summary: pd.DataFrame | None = None) -> dict:
    """The mechanism's numbers of one (dataset, method, depth): force ratio and cosine at layer 1 and layer L (median
    over seeds at `moment`), active-step fraction and layer 1's probe gain (medians over seeds of the runs' values),
    layer 1's median probe accuracy at init and after the last epoch (probe_summary), and the run count."""
    runs = run_summary[(run_summary.dataset == dataset) & (run_summary.method == method)
                       & (run_summary.depth == depth)]
    values = {"runs": len(runs)}
    for moment_name, probe_moment in (("init", "init"), ("final", "last")):
        values[f"probe_layer1_{moment_name}"] = probe_median(probe_summary, dataset, method, depth, 1, probe_moment)
    for short, statistic in (("ratio", "force_grad_ratio"), ("cosine", "force_grad_cosine")):
        for name, layer in (("layer1", 1), ("layerL", depth)):
            values[f"{short}_{name}"] = layer_median(layer_summary, dataset, method, depth, statistic, layer, moment)
    for column in ("active_step_fraction", "probe_gain_layer1"):
        values[column] = run_median(run_summary, dataset, method, depth, column)
    return values


def note_table(run_summary: pd.DataFrame, layer_summary: pd.DataFrame, specs: dict[str, dict],
               depths=NOTE_DEPTHS, methods=NOTE_METHODS, moment: str = "last",
               probe_summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Issue 14's closing note: per dataset and depth (those of `depths` that were run), for each of `methods` and
    the best remedy there (highest mean validation accuracy among the non-covariance methods): median ratio and
    cosine at layer 1 and layer L (at `moment`), the fraction of logged steps with an active force, layer 1's probe
    gain (init -> after the last epoch), its median probe accuracy at both ends (with `probe_summary`) and the
    number of runs. NaN where a method has no force or did not run.

        note_table(pd.read_parquet("results/aggregate/run_summary.parquet"),
                   pd.read_parquet("results/aggregate/layer_summary.parquet"), specs,
                   probe_summary=pd.read_parquet("results/aggregate/probe_summary.parquet"))
    """
    variants = covariance_methods(specs)
    rows = []
    for dataset in sorted(run_summary.dataset.unique()):
        for depth in [d for d in depths if d in set(run_summary.depth)]:
            cell = run_summary[(run_summary.dataset == dataset) & (run_summary.depth == depth)]
            remedy = best_remedy_of_cell(cell, variants)
            for method, role in [*((m, m) for m in methods), (remedy, "best remedy")]:
                values = (cell_values(run_summary, layer_summary, dataset, method, depth, moment, probe_summary)
                          if method
                          else dict.fromkeys(VALUE_COLUMNS, np.nan) | {"runs": 0})
                rows.append({"dataset": dataset, "depth": depth, "role": role, "method": method, **values})
    return pd.DataFrame(rows, columns=["dataset", "depth", "role", "method", *VALUE_COLUMNS, "runs"])


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
    mantissa = round(value / 10.0 ** exponent, 1)
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
    finite = {v: cells[v]["runs"] and np.isfinite([cells[v][f"{s}_{layer}"] for s in ("ratio", "cosine")
                                                   for layer in ("layer1", "layerL")]).any() for v in variants}
    measured = [v for v in variants if finite[v]]

    def pairs(short, text):
        return word_list([f"({text(cells[v][f'{short}_layer1'])}, {text(cells[v][f'{short}_layerL'])}) for "
                          f"{method_label(v)}" for v in measured])

    sentences = [(f"{_capital(where)}, {MOMENTS['last']}, the median cosine between the force and the gradient it "
                  f"joins at (layer 1, layer {depth}) is {pairs('cosine', lambda v: plain(v, 2))}; the median ratio "
                  f"of their norms is {pairs('ratio', magnitude)}.")] if measured else []
    sentences += [f"{method_label(v)} was not run {where}." if not cells[v]["runs"] else
                  f"{method_label(v)} has no finite force statistic {MOMENTS['last']} {where}."
                  for v in variants if not finite[v]]
    return " ".join(sentences)


def active_sentence(dataset: str, variants: list[str], depth: int, cells: dict[str, dict]) -> str:
    """'On DATA at depth D the force is active on a median of p% of logged steps for X, q% for Y.'"""
    where = where_words(dataset, depth)
    if not variants:
        return f"No covariance variant was run {where}."
    parts = [f"{percent(cells[v]['active_step_fraction'])} for {method_label(v)}" if cells[v]["runs"]
             else f"not measured for {method_label(v)}, which was not run" for v in variants]
    return (f"{_capital(where)}, the median share of logged steps on which the force is active (a group of the "
            f"batch has at least two correct and one wrong example) is {word_list(parts)}.")


def probe_sentence(dataset: str, variants: list[str], bases: dict[str, str | None], remedy: str | None, depth: int,
                   cells: dict[str, dict]) -> str:
    """Layer 1's probe gain (init -> after the last epoch) of the variants against their base, and of the best
    remedy: one clause per base, so a base shared by variants is named once."""

    def gain(method):
        if not cells[method]["runs"]:
            return "not run"
        value, cell = cells[method]["probe_gain_layer1"], cells[method]
        if not np.isfinite(value):
            return "n/a (no finite probe)"
        levels = (f" (from {percent(cell['probe_layer1_init'], 1)} to {percent(cell['probe_layer1_final'], 1)})"
                  if np.isfinite([cell["probe_layer1_init"], cell["probe_layer1_final"]]).all() else "")
        return f"{signed(100 * value, 1)}{levels}"

    def gains(methods):
        return word_list([f"{gain(m)} for {method_label(m)}" for m in methods])

    clauses = []
    for base in dict.fromkeys(bases.get(v) for v in variants):
        group = [v for v in variants if bases.get(v) == base]
        clauses.append(f"{gains(group)}, against {gain(base)} for {'its' if len(group) == 1 else 'their'} base "
                       f"{method_label(base)}" if base else
                       f"{gains(group)} ({'its' if len(group) == 1 else 'their'} base is not in the grid)")
    if remedy is not None:
        clauses.append(f"{gain(remedy)} for the best remedy on validation, {method_label(remedy)}")
    if not clauses:
        return f"No covariance variant or standard remedy was probed {_capital(where_words(dataset, depth))}."
    if len(clauses) > 1:
        clauses[-1] = "and " + clauses[-1]
    return (f"{_capital(where_words(dataset, depth))}, the validation accuracy of the first layer's linear probe "
            f"changes from initialization to after the last epoch by a median of, in percentage points (its median "
            f"accuracy at both ends in parentheses): {'; '.join(clauses)}.")


def probed_seeds_text(seeds: list[int], probed: list[int] | None) -> str:
    """Which runs the probes read: every seed's, or a subset (config probes.seeds)."""
    kept = [s for s in seeds if probed is None or s in probed]
    if len(kept) == len(seeds):
        return "of every run"
    return (f"of the runs of seeds {word_list(kept)} ({len(kept)} of the {len(seeds)}: the probes are descriptive, "
            "no verdict reads them)")


def mechanism_macros(config: dict, run_summary: pd.DataFrame, layer_summary: pd.DataFrame | None,
                     probe_summary: pd.DataFrame | None, method_summary: pd.DataFrame) -> dict[str, str]:
    """The Mechanism section's numbers and sentences at the deepest depth of the grid, per dataset and covariance
    variant (and each variant's base and the best remedy for the probes); None tables: nothing was measured."""
    from covbench.probes import MAX_ITER
    grid, probes = config["grid"], config["probes"]
    specs = {m: method_spec(config, m) for m in grid["methods"]}
    variants = covariance_methods(specs)
    bases = {v: base_method(v, specs) for v in variants}
    depth = max(grid["depths"])
    if layer_summary is None:
        layer_summary = pd.DataFrame(columns=CELL_KEYS + ["layer", "epoch", "statistic", "median"])
    number_of = {"cosine_layer1": lambda v: plain(v, 2), "cosine_layerL": lambda v: plain(v, 2),
                 "ratio_layer1": magnitude, "ratio_layerL": magnitude, "active_step_fraction": percent}
    name_of = {"cosine_layer1": "cosine first", "cosine_layerL": "cosine last", "ratio_layer1": "ratio first",
               "ratio_layerL": "ratio last", "active_step_fraction": "active"}
    extra_epochs = sorted(probes["epochs"])
    macros = {
        "MechanismDepth": str(depth),
        "ProbeTrainSize": str(probes["train_size"]),
        "ProbeValSize": str(probes["val_size"]),
        "ProbeMaxIter": str(MAX_ITER),
        "ProbeSeeds": probed_seeds_text(grid["seeds"], probes.get("seeds")),
        "ProbeEpochs": ("at initialization and after the last epoch" if not extra_epochs else
                        f"at initialization, after epoch{'s' if len(extra_epochs) > 1 else ''} "
                        f"{', '.join(map(str, extra_epochs))} and after the last epoch"),
    }
    sentences = {"Force": [], "Active": [], "Probes": []}
    for dataset in grid["datasets"]:
        remedy = best_remedy(method_summary, dataset, depth, variants)
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
