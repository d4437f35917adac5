"""Summaries across seeds (docs/design.md#per-layer-statistics): the tables every figure, table and sentence is drawn
from.

    write_tables(run_jsons, epochs_files, layer_stats_files, probes_files, {"mnist": 0.98, "catvnoncat": 0.70},
                 {"run_summary": ..., "layer_summary": ..., "method_summary": ..., "epoch_curves": ...,
                  "probe_summary": ...})

Intervals are percentile bootstraps over seeds (95%, 2000 resamples, a fixed-seed generator). A run that
diverged is kept: its rows stop where it diverged and its final outcomes are those it had when it stopped.
"""

import numpy as np
import pandas as pd

from covbench import atomic
from covbench.training import contract
from covbench.training.contract import RUN_KEYS
from covbench.training.stats import STAT_NAMES
from covbench.training.vanishing import vanishing_index

RESAMPLES = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
CELL_KEYS = ["dataset", "method", "depth"]
METRICS = (
    "test_accuracy",
    "best_val_accuracy",
    "vanishing_index_init",
    "vanishing_index_epoch1",
    "epochs_to_threshold",
    "diverged_fraction",
    "val_majority_rate",
    "test_majority_rate",
)
# The constant predictor of each run's split (docs/design.md#the-best-remedy): the share of the most common class of its
# validation set, and the test accuracy of answering the training set's majority class. NaN in records older than issue
# 31.
MAJORITY_RATES = ["val_majority_rate", "test_majority_rate"]
# Each run's split record, flattened: "per_seed" or "official", its sizes (n_test / n_train: the corrected test) and the
# digest that names a per-seed split (pairs must share it).
SPLIT_COLUMNS = ["split_protocol", "n_train", "n_val", "n_test", "split_sha256"]
TABLES = ("run_summary", "layer_summary", "method_summary", "epoch_curves", "probe_summary")


# --- bootstrap over seeds ------------------------------------------------------------------------


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, n): how often each of n seeds is drawn in each resample; shared by every group of n seeds."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)


def _median_atoms(ordered: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap medians of each row of `ordered` (sorted seeds) as (values (G, P), weights (P,)).

    A resample's median is the mean of its two middle values, and which of the sorted seeds those are
    depends only on the counts; resamples with the same pair share one median, so 2000 resamples of
    5 seeds reduce to at most 15 weighted values per group.
    """
    n = counts.shape[1]
    cumulative = counts.cumsum(axis=1)
    lower = (cumulative >= (n + 1) // 2).argmax(axis=1)
    upper = (cumulative >= n // 2 + 1).argmax(axis=1)
    pairs, weights = np.unique(np.stack([lower, upper], axis=1), axis=0, return_counts=True)
    return (ordered[:, pairs[:, 0]] + ordered[:, pairs[:, 1]]) / 2, weights


def _mean_atoms(ordered: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap means as (values (G, resamples), unit weights); an infinite seed drawn makes the mean infinite."""
    finite = np.where(np.isinf(ordered), 0.0, ordered) @ counts.T / counts.shape[1]
    draws_pos_inf = (ordered == np.inf).astype(float) @ counts.T > 0
    draws_neg_inf = (ordered == -np.inf).astype(float) @ counts.T > 0
    means = np.where(draws_pos_inf, np.inf, np.where(draws_neg_inf, -np.inf, finite))
    means[draws_pos_inf & draws_neg_inf] = np.nan
    return means, np.ones(len(counts), dtype=int)


def _quantiles(atoms: np.ndarray, weights: np.ndarray, probabilities: list[float]) -> np.ndarray:
    """(G, len(probabilities)) inverted-CDF quantiles of the distribution with `weights` on each row's atoms.

    Equals numpy's quantile(method="inverted_cdf") of the resamples spelled out one by one.
    """
    order = np.argsort(atoms, axis=1)
    ordered = np.take_along_axis(atoms, order, axis=1)
    cumulative = weights[order].cumsum(axis=1)
    # q * total may land a hair above an integer in floating point
    needed = np.maximum(np.ceil(np.asarray(probabilities) * weights.sum() - 1e-9), 1)
    positions = (cumulative[:, None, :] >= needed[None, :, None]).argmax(axis=2)
    return np.take_along_axis(ordered, positions, axis=1)


STATISTICS = {"median": (np.median, _median_atoms), "mean": (np.mean, _mean_atoms)}


def bootstrap(
    samples: np.ndarray,
    statistic: str = "median",
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Per row of `samples` (groups x seeds, NaN = no value, +-inf allowed): statistic, interval, n_seeds.

    Rows with one seed get an interval that collapses to the value; rows with none get NaN.
    """
    point_of, atoms_of = STATISTICS[statistic]
    samples = np.asarray(samples, dtype=float)
    n_seeds = (~np.isnan(samples)).sum(axis=1)
    ordered = np.sort(samples, axis=1)  # NaN sorts last, so a row's seeds are its first n_seeds columns
    result = np.full((len(samples), 3), np.nan)
    for n in np.unique(n_seeds[n_seeds > 0]):
        rows = n_seeds == n
        values = ordered[rows, :n]
        atoms, weights = atoms_of(values, resample_counts(n, resamples, seed))
        result[rows, 0] = point_of(values, axis=1)
        result[rows, 1:] = _quantiles(atoms, weights, [(1 - level) / 2, (1 + level) / 2])
    return pd.DataFrame({statistic: result[:, 0], "ci_low": result[:, 1], "ci_high": result[:, 2], "n_seeds": n_seeds})


def _by_seed(long: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """`long.value` as (one row of keys per group, groups x seeds array with NaN where a seed has no value)."""
    wide = long.set_index(keys + ["seed"])["value"].unstack("seed")
    return wide.index.to_frame(index=False), wide.to_numpy(dtype=float)


# --- per-run outcomes ----------------------------------------------------------------------------


def read_runs(run_jsons: list[str]) -> pd.DataFrame:
    """One row per run from its run.json: identity, diverged, collapsed, final outcomes, wall time."""
    return runs_frame([atomic.read_json(path) for path in run_jsons])  # a corrupt one: removed, rerun to remake it


def _number(value) -> float:
    return np.nan if value is None else float(value)


def split_fields(record: dict) -> dict:
    """A run's majority rates and `split` record as MAJORITY_RATES + SPLIT_COLUMNS (None / NaN where a record written
    before runs carried their split has none)."""
    split = record.get("split") or {}
    sizes = {f"n_{part}": _number(split.get(f"n_{part}")) for part in ("train", "val", "test")}
    rates = {rate: _number(record.get(rate)) for rate in MAJORITY_RATES}
    return {**rates, "split_protocol": split.get("protocol"), **sizes, "split_sha256": split.get("sha256")}


def runs_frame(records: list[dict]) -> pd.DataFrame:
    columns = RUN_KEYS + [
        "diverged",
        "collapsed",
        "test_accuracy",
        "last_test_accuracy",
        "best_epoch",
        "best_val_accuracy",
        "best_val_loss",
        "final_val_accuracy",
        "final_val_loss",
        "wall_s",
    ]
    return pd.DataFrame(
        [{key: record[key] for key in columns} | split_fields(record) for record in records],
        columns=columns + MAJORITY_RATES + SPLIT_COLUMNS,
    )


def read_frames(paths: list[str]) -> pd.DataFrame:
    """The parquet files, verified (a corrupt one is removed and atomic.Corrupt says to rerun), concatenated."""
    return pd.concat([atomic.read_parquet(path) for path in paths], ignore_index=True)


def epochs_to_threshold(epochs: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """Per run: the first epoch whose validation accuracy reaches the dataset's threshold (NaN if none).

    Accuracies are float32 ratios, so the threshold is compared in float32: 0.98 is reached by 980/1000.
    """
    threshold = epochs.dataset.map(thresholds).to_numpy(dtype=np.float32)
    reached = epochs.val_accuracy.to_numpy(dtype=np.float32) >= threshold
    first = epochs[reached].groupby(RUN_KEYS)["epoch"].min().astype(float)
    runs = epochs.groupby(RUN_KEYS).size().index
    result = first.reindex(runs).rename("epochs_to_threshold").reset_index()
    return result.assign(reached_threshold=result.epochs_to_threshold.notna())


def active_step_fraction(layer_stats: pd.DataFrame) -> pd.DataFrame:
    """Per run: the fraction of its logged steps (step 0 included) on which the aux force had an active group
    (active_groups > 0, read from layer 1: the groups are the batch's, shared by every layer). NaN without a force
    (active_groups NaN at every step); a step with a NaN value does not count."""
    first = layer_stats.loc[layer_stats.layer == 1, RUN_KEYS + ["active_groups"]]
    active = first.active_groups.astype(float)
    fraction = (
        first.assign(active=(active > 0).astype(float).where(active.notna())).groupby(RUN_KEYS)["active"].mean()
    )  # mean skips NaN: all NaN gives NaN
    return fraction.rename("active_step_fraction").reset_index()


def probe_gain(probes: pd.DataFrame, layer: int = 1) -> pd.DataFrame:
    """Per run: probe accuracy of `layer` after the run's last probed epoch minus at init (epoch 0); NaN when either
    is missing or NaN (a diverged run's final probe)."""
    rows = probes[probes.layer == layer]
    at_init = rows[rows.epoch == 0].set_index(RUN_KEYS)["probe_accuracy"]
    last = rows.sort_values("epoch").drop_duplicates(RUN_KEYS, keep="last").set_index(RUN_KEYS)  # NaN kept
    gain = (last.probe_accuracy - at_init.reindex(last.index)).where(last.epoch > 0)
    return gain.astype(float).rename(f"probe_gain_layer{layer}").reset_index()


def run_summary(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    layer_stats: pd.DataFrame,
    thresholds: dict[str, float],
    probes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per run: outcomes, epochs to threshold, vanishing indices, how often the aux force was active, and
    the gain of layer 1's linear probe (`probes`: the runs' probes.parquet rows; None: no probe was taken)."""
    final_train_loss = (
        epochs.sort_values("epoch").groupby(RUN_KEYS)["train_loss"].last().rename("final_train_loss").reset_index()
    )
    summary = (
        runs.merge(final_train_loss, on=RUN_KEYS, how="left")
        .merge(epochs_to_threshold(epochs, thresholds), on=RUN_KEYS, how="left")
        .merge(vanishing_index(layer_stats), on=RUN_KEYS, how="left")
        .merge(active_step_fraction(layer_stats), on=RUN_KEYS, how="left")
    )
    summary = summary.assign(**{c: np.nan for c in MAJORITY_RATES + SPLIT_COLUMNS if c not in summary})
    summary = (
        summary.assign(probe_gain_layer1=np.nan)
        if probes is None or probes.empty
        else summary.merge(probe_gain(probes), on=RUN_KEYS, how="left")
    )
    columns = RUN_KEYS + [
        "diverged",
        "collapsed",
        "test_accuracy",
        "last_test_accuracy",
        "best_epoch",
        "best_val_accuracy",
        "best_val_loss",
        "final_val_accuracy",
        "final_val_loss",
        "final_train_loss",
        "epochs_to_threshold",
        "reached_threshold",
        "vanishing_index_init",
        "vanishing_index_epoch1",
        "active_step_fraction",
        "probe_gain_layer1",
        *MAJORITY_RATES,
        *SPLIT_COLUMNS,
        "wall_s",
    ]
    return summary[columns].sort_values(RUN_KEYS, ignore_index=True)


# --- summaries across seeds ----------------------------------------------------------------------


def layer_epoch_means(layer_stats: pd.DataFrame) -> pd.DataFrame:
    """Per run, layer and epoch: epoch 0 = the step-0 values, epoch e >= 1 = mean over the steps logged in
    epoch e (step 0, the first step of epoch 1, counts there too: with one log per epoch it is epoch 1's only one)."""
    statistics = layer_stats[RUN_KEYS + ["step", "epoch", "layer"]].join(layer_stats[list(STAT_NAMES)].astype(float))
    at_init = statistics[statistics.step == 0].assign(epoch=0)
    during = (
        statistics.assign(epoch=statistics.epoch + 1)
        .groupby(RUN_KEYS + ["layer", "epoch"], as_index=False)[list(STAT_NAMES)]
        .mean()
    )
    return pd.concat([at_init.drop(columns="step"), during], ignore_index=True)


def layer_summary(layer_stats: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, depth, layer, epoch, statistic): median over seeds with its bootstrap interval."""
    keys = CELL_KEYS + ["layer", "epoch"]
    long = layer_epoch_means(layer_stats).melt(
        id_vars=keys + ["seed"], value_vars=list(STAT_NAMES), var_name="statistic"
    )
    groups, samples = _by_seed(long, keys + ["statistic"])
    summary = pd.concat([groups, bootstrap(samples, "median")], axis=1)
    return summary.sort_values(keys + ["statistic"], ignore_index=True)


def probe_summary(probes: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, depth, layer, epoch): median probe accuracy over seeds with its bootstrap interval
    (epoch 0 = at init, E = after the last epoch E; a diverged run's NaN probes do not count)."""
    keys = CELL_KEYS + ["layer", "epoch"]
    if probes.empty:
        return pd.DataFrame(columns=keys + ["median", "ci_low", "ci_high", "n_seeds"])
    groups, samples = _by_seed(probes.rename(columns={"probe_accuracy": "value"}), keys)
    return pd.concat([groups, bootstrap(samples, "median")], axis=1).sort_values(keys, ignore_index=True)


def method_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, depth, metric): median and mean over seeds, each with its bootstrap interval.

    ci_low/ci_high bound the median, mean_ci_low/mean_ci_high the mean. A run that never reached the
    threshold counts as infinitely slow, so an epochs_to_threshold statistic or bound may be +inf.
    """
    samples = runs.assign(
        epochs_to_threshold=runs.epochs_to_threshold.fillna(np.inf),
        diverged_fraction=runs.diverged.astype(float),
        **{
            rate: np.nan for rate in MAJORITY_RATES if rate not in runs
        },  # a record from before runs carried their split
    )
    long = samples.melt(id_vars=RUN_KEYS, value_vars=list(METRICS), var_name="metric")
    groups, values = _by_seed(long, CELL_KEYS + ["metric"])
    median, mean = bootstrap(values, "median"), bootstrap(values, "mean")
    summary = pd.concat([groups, median, mean[["mean"]], mean[["ci_low", "ci_high"]].add_prefix("mean_")], axis=1)
    order = CELL_KEYS + ["metric", "median", "mean", "ci_low", "ci_high", "mean_ci_low", "mean_ci_high", "n_seeds"]
    return summary[order].sort_values(CELL_KEYS + ["metric"], ignore_index=True)


def diverged_counts(method_summary: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, depth): how many of its n_seeds runs diverged (from the diverged_fraction rows). The
    tables, figures and sentences that show a cell say this count: its diverged runs are in every statistic."""
    rows = method_summary[method_summary.metric == "diverged_fraction"]
    counts = (rows["mean"] * rows.n_seeds).round().astype(int)
    return rows.assign(n_diverged=counts)[CELL_KEYS + ["n_diverged", "n_seeds"]].reset_index(drop=True)


def constant_predictor(method_summary: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, depth): the test accuracy of the constant predictor that answers the training set's majority
    class, `median` over the cell's methods of their median test_majority_rate over seeds (every method of a cell
    runs the same seeds, so the same splits); cells without a recorded rate are left out."""
    rows = method_summary[(method_summary.metric == "test_majority_rate") & np.isfinite(method_summary["median"])]
    return rows.groupby(["dataset", "depth"], as_index=False)["median"].median()


def performance_profile(method_summary: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """Per method and tau: the fraction of (dataset, depth) workloads on which its median epochs to threshold
    is within a factor tau of the fastest method's (a Dolan-More profile, as AlgoPerf scores training speed).

    Never reaching the threshold is infinitely slow: a workload no method solves counts against every method.
    """
    times = (
        method_summary[method_summary.metric == "epochs_to_threshold"]
        .pivot(index=["dataset", "depth"], columns="method", values="median")
        .fillna(np.inf)
    )
    with np.errstate(invalid="ignore"):  # inf / inf on unsolved workloads: NaN, never within tau
        ratios = times.to_numpy() / times.min(axis=1).to_numpy()[:, None]
    fractions = (ratios[None, :, :] <= np.asarray(taus)[:, None, None]).mean(axis=1)  # (taus, methods)
    return pd.DataFrame(
        {
            "method": np.tile(times.columns.to_numpy(), len(taus)),
            "tau": np.repeat(taus, times.shape[1]),
            "fraction": fractions.ravel(),
            "workloads": len(times),
        }
    )


def check_shared_splits(runs: pd.DataFrame, per_seed_datasets: tuple[str, ...]) -> None:
    """Every run of seed s of a per-seed dataset trained on the same split (docs/design.md#pairs-share-their-data):
    else one line naming two runs of that seed on different splits."""
    for (dataset, seed), rows in runs[runs.dataset.isin(per_seed_datasets)].groupby(["dataset", "seed"]):
        digests = rows.split_sha256.unique()
        if len(digests) > 1:
            first, other = (rows[rows.split_sha256 == digest].iloc[0] for digest in digests[:2])
            names = [f"results/runs/{dataset}/{r.method}/depth{r.depth}/seed{seed}" for r in (first, other)]
            raise contract.ContractError(
                f"{names[0]} and {names[1]} ran seed {seed} on different splits ({digests[0][:12]} vs "
                f"{digests[1][:12]}): pairs must share their data; retrain the one whose producer does not draw the "
                "seed's split through covbench.data.splits.seed_data"
            )


def write_tables(
    run_jsons: list[str],
    epochs_files: list[str],
    layer_stats_files: list[str],
    probes_files: list[str],
    thresholds: dict[str, float],
    outputs: dict[str, str],
    per_seed_datasets: tuple[str, ...] = (),
) -> None:
    """Check every run's files against the run-file contract (covbench.training.contract: one line naming the file and
    column of the first breach; for `per_seed_datasets` each run's split record, and that the runs of a seed share
    their split), read them and write the tables named in TABLES to the paths in `outputs`."""
    # read back verified first: a truncated or corrupt run file is removed and the rerun trains its job again
    records = [atomic.read_json(path) for path in run_jsons]
    epochs, layer_stats, probes = (read_frames(paths) for paths in (epochs_files, layer_stats_files, probes_files))
    contract.check_runs(run_jsons, epochs_files, layer_stats_files, probes_files, tuple(per_seed_datasets))
    runs = runs_frame(records)
    check_shared_splits(runs, tuple(per_seed_datasets))
    probes = probes[RUN_KEYS + ["epoch", "layer", "probe_accuracy"]].astype(
        {"epoch": int, "layer": int, "probe_accuracy": float}
    )  # a run without probes writes an untyped frame
    per_run = run_summary(runs, epochs, layer_stats, thresholds, probes)
    tables = {
        "run_summary": per_run,
        "layer_summary": layer_summary(layer_stats),
        "method_summary": method_summary(per_run),
        "epoch_curves": epochs.sort_values(RUN_KEYS + ["epoch"], ignore_index=True),
        "probe_summary": probe_summary(probes),
    }
    for name in TABLES:
        atomic.write_parquet(tables[name], outputs[name])
