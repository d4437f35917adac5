"""Why the covariance force helps or not (docs/design.md#mechanism, "Mechanism"): its diagnostics and the linear probes
as numbers, and their medians per dataset, method and depth. The sentences the paper makes of them are in
covbench.report.macros.mechanism (split from this module so analysis imports nothing of the report).

Three questions per covariance variant at a (dataset, depth): is the force there at all (the fraction of logged
steps with an active group), is it large enough to matter at the early layers (force_grad_ratio at layer 1 and
layer L), does it point downhill (force_grad_cosine); and did the first layer's representation learn (the gain of
its linear probe from init to after the last epoch), against the variant's base and the best remedy.

Ratio and cosine are read from layer_summary at the cell's last epoch (median over seeds of each seed's mean over
the steps logged in that epoch); a step without an active group counts as ratio 0 and has no cosine (NaN: the cosine is the mean over the steps
where the force acts). The active
fraction and the probe gain are per-run columns of run_summary, summarized by the median over seeds.

    print(note_table(run_summary, layer_summary, specs).to_string())
"""

import numpy as np
import pandas as pd

from covbench.analysis.aggregate import CELL_KEYS
from covbench.analysis.compare import remedies_of_cell
from covbench.config import covariance_methods

VALUE_COLUMNS = [
    "ratio_layer1",
    "ratio_layerL",
    "cosine_layer1",
    "cosine_layerL",
    "active_step_fraction",
    "probe_gain_layer1",
    "probe_layer1_init",
    "probe_layer1_final",
]
NOTE_DEPTHS = (8, 32)
NOTE_METHODS = ("baseline", "covariance", "covariance_pooled")


# --- numbers ----------------------------------------------------------------------------------------


def at_moment(layer_summary: pd.DataFrame, moment: str) -> pd.DataFrame:
    """The rows of layer_summary at init (epoch 0) or at each (dataset, method, depth)'s last epoch."""
    if moment == "init":
        return layer_summary[layer_summary.epoch == 0]
    last = layer_summary.groupby(CELL_KEYS)["epoch"].transform("max")
    return layer_summary[(layer_summary.epoch == last) & (last > 0)]


def layer_median(
    layer_summary: pd.DataFrame, dataset: str, method: str, depth: int, statistic: str, layer: int, moment: str = "last"
) -> float:
    """Median over seeds of `statistic` at one layer and moment (NaN when absent)."""
    rows = layer_summary[
        (layer_summary.dataset == dataset)
        & (layer_summary.method == method)
        & (layer_summary.depth == depth)
        & (layer_summary.statistic == statistic)
    ]
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


def probe_median(
    probe_summary: pd.DataFrame | None, dataset: str, method: str, depth: int, layer: int, moment: str
) -> float:
    """Median probe accuracy over seeds of one layer at init or after the cell's last probed epoch (NaN when absent)."""
    if probe_summary is None:
        return np.nan
    rows = probe_summary[
        (probe_summary.dataset == dataset)
        & (probe_summary.method == method)
        & (probe_summary.depth == depth)
        & (probe_summary.layer == layer)
    ]
    rows = rows[rows.epoch == (0 if moment == "init" else rows.epoch.max())]
    return float(rows["median"].iloc[0]) if len(rows) and (moment == "init" or rows.epoch.iloc[0] > 0) else np.nan


def cell_values(
    run_summary: pd.DataFrame,
    layer_summary: pd.DataFrame,
    dataset: str,
    method: str,
    depth: int,
    moment: str = "last",
    probe_summary: pd.DataFrame | None = None,
) -> dict:
    """The mechanism's numbers of one (dataset, method, depth): force ratio and cosine at layer 1 and layer L (median
    over seeds at `moment`), active-step fraction and layer 1's probe gain (medians over seeds of the runs' values),
    layer 1's median probe accuracy at init and after the last epoch (probe_summary), and the run count."""
    runs = run_summary[(run_summary.dataset == dataset) & (run_summary.method == method) & (run_summary.depth == depth)]
    values = {"runs": len(runs)}
    for moment_name, probe_moment in (("init", "init"), ("final", "last")):
        values[f"probe_layer1_{moment_name}"] = probe_median(probe_summary, dataset, method, depth, 1, probe_moment)
    for short, statistic in (("ratio", "force_grad_ratio"), ("cosine", "force_grad_cosine")):
        for name, layer in (("layer1", 1), ("layerL", depth)):
            values[f"{short}_{name}"] = layer_median(layer_summary, dataset, method, depth, statistic, layer, moment)
    for column in ("active_step_fraction", "probe_gain_layer1"):
        values[column] = run_median(run_summary, dataset, method, depth, column)
    return values


def note_table(
    run_summary: pd.DataFrame,
    layer_summary: pd.DataFrame,
    specs: dict[str, dict],
    depths=NOTE_DEPTHS,
    methods=NOTE_METHODS,
    moment: str = "last",
    probe_summary: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per dataset and depth (those of `depths` that were run), for each of `methods` and the best remedy there
    (covbench.analysis.compare.remedies_of_cell, at the verdicts' `alpha`): median ratio and
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
            best = remedies_of_cell(cell, variants, alpha).query("best").method
            remedy = best.iloc[0] if len(best) else None
            for method, role in [*((m, m) for m in methods), (remedy, "best remedy")]:
                values = (
                    cell_values(run_summary, layer_summary, dataset, method, depth, moment, probe_summary)
                    if method
                    else dict.fromkeys(VALUE_COLUMNS, np.nan) | {"runs": 0}
                )
                rows.append({"dataset": dataset, "depth": depth, "role": role, "method": method, **values})
    return pd.DataFrame(rows, columns=["dataset", "depth", "role", "method", *VALUE_COLUMNS, "runs"])
