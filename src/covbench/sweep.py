"""Covariance's best shot (DESIGN section 7, rule `lambda_sweep`): was lambda just badly tuned?

For a covariance variant at one (dataset, depth), every lambda of the config's log grid (0 included) trains with
the learning rate tuned for the variant's base (the same network without the force), for every seed, as ONE
batched model: lambda = 0 is the base method itself, trained in the same batch. The best lambda is chosen on
validation (lowest mean final validation cross-entropy over seeds, diverged = +inf, ties to the smaller lambda,
as tuning chooses, DESIGN section 6) and its test accuracy is compared with lambda = 0's, paired by seed, with
the four verdicts of covbench.compare; Holm runs over the sweep's own family.

    run("results/data/mnist.pt", "results/tune/mnist/baseline/depth16.json",
        "results/sweep/mnist/covariance/depth16.parquet", "mnist", "covariance", "baseline", spec, hp, 16,
        [0, 0.01, 0.1, 1, 10, 100, 1000], [0, 1, 2, 3, 4])
    collect(cell_paths, "results/sweep/lambda_sweep.parquet", "results/sweep/summary.parquet", config["compare"])
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from covbench import atomic, compare, data, train
from covbench.aggregate import vanishing_index
from covbench.config import ConfigError, base_method, method_spec
from covbench.prose import macro_name, p_text, plain, signed, word_list
from covbench.tables import dataset_label, method_label, plain_number
from covbench.tune import apply_choice

CELL_KEYS = ["dataset", "variant", "depth"]
COLUMNS = CELL_KEYS[:2] + ["base", "depth", "lr", "cov_lambda", "seed", "diverged", "best_val_loss",
                           "best_val_accuracy", "test_accuracy", "vanishing_index_init",
                           "vanishing_index_epoch1"]
SUMMARY_COLUMNS = CELL_KEYS[:2] + ["base", "depth", "lr", "best_lambda", "best_val_loss", "n_lambdas", "n_diverged",
                                   "family", "difference", "ci_low", "ci_high", "margin", "n_method", "n_other",
                                   "n_pairs", "n_dropped", "test", "p_value", "p_equivalence", "reason", "p_holm",
                                   "p_equivalence_holm", "verdict"]
ZERO_CHOSEN = "lambda = 0 is chosen"  # the verdict when the best lambda on validation is 0 itself
METRIC = compare.METRICS["test_accuracy"]
FAMILY = "lambda_sweep"
COUNTED = {"beats": "beats", "beaten": "is beaten by", "equivalent": "is equivalent to",
           "inconclusive": "inconclusive", "zero chosen": ZERO_CHOSEN}  # macro name part -> verdict


# --- configuration ------------------------------------------------------------------------------------

def bases(config: dict) -> dict[str, str]:
    """Each swept variant -> its base method (the same composition with aux none), both grid methods."""
    specs = {m: method_spec(config, m) for m in config["grid"]["methods"]}
    return {variant: base_method(variant, specs) for variant in config["lambda_sweep"]["variants"]}


def validate(config: dict) -> dict:
    """The `lambda_sweep` block against the grid, after covbench.config.validate; one line naming the key."""
    sweep, grid = config["lambda_sweep"], config["grid"]
    specs = {m: method_spec(config, m) for m in grid["methods"]}
    for variant in sweep["variants"]:
        where = "config error at 'lambda_sweep.variants'"
        if variant not in specs:
            raise ConfigError(f"{where}: '{variant}' is not a method of the grid; grid.methods: {', '.join(specs)}")
        if variant not in compare.covariance_methods(specs):
            raise ConfigError(f"{where}: '{variant}' is not a covariance method "
                              f"(its aux is '{specs[variant]['aux']}')")
        if base_method(variant, specs) is None:
            raise ConfigError(f"{where}: the base of '{variant}' (the same composition with aux none) is not "
                              "in the grid")
    for depth in sweep["depths"]:
        if depth not in grid["depths"]:
            raise ConfigError(f"config error at 'lambda_sweep.depths': {depth} is not a grid depth; grid.depths: "
                              f"{', '.join(map(str, grid['depths']))}")
    if 0 not in sweep["lambdas"]:
        raise ConfigError("config error at 'lambda_sweep.lambdas': the grid must include 0 (the base method itself)")
    return config


# --- one cell: train and measure -----------------------------------------------------------------------

def train_cell(splits: dict[str, torch.Tensor], spec: dict, hp: dict, depth: int, lambdas: list[float],
               seeds: list[int], device: str = "cpu") -> pd.DataFrame:
    """Every lambda x seed as one batched model; one row per model with its outcomes and vanishing indices.

    `spec`, `hp`: the variant's composition and the base's tuned hyperparameters (lr included); each model is
    read at its best checkpoint (DESIGN section 6), as selection and the grid's runs are.
    """
    lambdas = sorted(float(v) for v in lambdas)
    models = pd.DataFrame([(v, s) for v in lambdas for s in seeds], columns=["cov_lambda", "seed"])
    spec = {**spec, "cov_lambda": models.cov_lambda.tolist()}
    result = train.train(splits, spec, hp, depth, models.seed.tolist(), device=device)
    at_best = result.epochs.set_index(["model", "epoch"]).val_accuracy  # each model at its best checkpoint
    index = vanishing_index(result.layer_stats.assign(dataset="", method=result.layer_stats.model, depth=depth))
    index = index.set_index("method")[["vanishing_index_init", "vanishing_index_epoch1"]]
    return models.assign(
        diverged=result.epochs.groupby("model").diverged.any().sort_index().to_numpy(),
        best_val_loss=result.best_val_loss.astype(float),
        best_val_accuracy=[float(at_best.get((m, int(e)), np.nan)) for m, e in enumerate(result.best_epoch)],
        test_accuracy=np.asarray(result.test_accuracy, dtype=float),
        **{column: index[column].reindex(models.index).to_numpy(float) for column in index})


def run(data_path: str, tune_path: str, out_path: str, dataset: str, variant: str, base: str, spec: dict, hp: dict,
        depth: int, lambdas: list[float], seeds: list[int], threads: int = 1, device: str = "cpu") -> None:
    """One (dataset, variant, depth): the variant's spec with the base's tuning choice -> a tidy parquet."""
    train.configure_process(threads)
    splits = data.load_splits(data_path)
    chosen = atomic.read_json(tune_path, required=("chosen",))["chosen"]
    spec, hp = apply_choice(spec, hp, chosen)
    table = train_cell(splits, spec, hp, depth, lambdas, seeds, device)
    table = table.assign(dataset=dataset, variant=variant, base=base, depth=depth, lr=hp["lr"])[COLUMNS]
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out_path, index=False)


# --- selection and verdicts ----------------------------------------------------------------------------

def best_lambdas(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, variant, depth): the lambda with the lowest mean best-checkpoint validation loss over seeds
    (diverged or non-finite = +inf, so a lambda with one diverged seed loses), ties to the smaller lambda."""
    loss = table.best_val_loss.astype(float)
    score = loss.where(~table.diverged.astype(bool) & np.isfinite(loss), np.inf)
    means = table.assign(score=score).groupby(CELL_KEYS + ["cov_lambda"], as_index=False).score.mean()
    best = means.sort_values(CELL_KEYS + ["score", "cov_lambda"], kind="stable").groupby(CELL_KEYS).head(1)
    return best.rename(columns={"cov_lambda": "best_lambda", "score": "best_val_loss"}).reset_index(drop=True)


def summarize(table: pd.DataFrame, settings: dict, seed: int = 0,
              n_bootstrap: int = compare.N_BOOTSTRAP) -> pd.DataFrame:
    """One row per (dataset, variant, depth): the best lambda on validation and its test accuracy against
    lambda = 0 by seed (difference, interval, t-test, TOST within the dataset's margin, Holm over the sweep's
    cells, verdict). `settings`: the config's compare block (alpha, equivalence_margin)."""
    rows = []
    for best in best_lambdas(table).itertuples():
        cell = table[(table.dataset == best.dataset) & (table.variant == best.variant) & (table.depth == best.depth)]
        by_lambda = {v: rows_.set_index("seed")[METRIC.column] for v, rows_ in cell.groupby("cov_lambda")}
        margin = METRIC.margin(settings, best.dataset)
        values = compare.compare_values(by_lambda[best.best_lambda], by_lambda[0.0], METRIC, margin, seed, n_bootstrap)
        if best.best_lambda == 0:  # nothing to test: the base itself is chosen
            values.update(difference=0.0, ci_low=0.0, ci_high=0.0, test="none", p_value=np.nan,
                          p_equivalence=np.nan, reason="lambda = 0 is chosen on validation")
        rows.append({"dataset": best.dataset, "variant": best.variant, "base": cell.base.iloc[0],
                     "depth": int(best.depth), "lr": float(cell.lr.iloc[0]), "best_lambda": best.best_lambda,
                     "best_val_loss": best.best_val_loss, "n_lambdas": cell.cov_lambda.nunique(),
                     "n_diverged": int(cell.diverged.sum()), "family": FAMILY, **values})
    summary = compare.adjust(pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-3]))
    summary["verdict"] = [
        ZERO_CHOSEN if v == 0 else compare.verdict(d, p, q, METRIC.higher_is_better, settings["alpha"])
        for v, d, p, q in zip(summary.best_lambda, summary.difference, summary.p_holm, summary.p_equivalence_holm)]
    return summary[SUMMARY_COLUMNS]


def collect(cell_paths: list[str], table_path: str, summary_path: str, settings: dict) -> None:
    """The cells as one tidy table, and its summary."""
    table = pd.concat([pd.read_parquet(path) for path in cell_paths] or [pd.DataFrame(columns=COLUMNS)],
                      ignore_index=True)
    for path, frame in ((table_path, table), (summary_path, summarize(table, settings))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)


# --- the paper's sentences -----------------------------------------------------------------------------

def cell_sentence(row) -> str:
    """'For X at depth D on DATA the best lambda on validation is V; ...: verdict.' from one summary row."""
    head = (f"For {method_label(row.variant)} at depth {row.depth} on {dataset_label(row.dataset)} the best "
            f"$\\lambda$ on validation is ${plain_number(row.best_lambda)}$")
    if row.verdict == ZERO_CHOSEN:
        return f"{head}, the base {method_label(row.base)} itself: $\\lambda = 0$ is chosen."
    difference = f"its test accuracy differs by {signed(100 * row.difference, 1)} percentage points"
    if row.reason:
        detail = f"no test: {row.reason}"
    else:
        detail = (f"{compare.CI_LEVEL * 100:.0f}\\% interval [{plain(100 * row.ci_low, 1)}, "
                  f"{plain(100 * row.ci_high, 1)}], margin $\\pm${plain(100 * row.margin, 1)}; Holm $p$ "
                  f"{p_text(row.p_holm)} for a difference, {p_text(row.p_equivalence_holm)} for equivalence")
    claim = ("the comparison is inconclusive" if row.verdict == "inconclusive" else
             f"$\\lambda = {plain_number(row.best_lambda)}$ {row.verdict} $\\lambda = 0$")
    return f"{head}; against $\\lambda = 0$ (the base {method_label(row.base)}) {difference} ({detail}): {claim}."


def force_ratio_layer1(layer_summary: pd.DataFrame | None, dataset: str, method: str, depth: int) -> float:
    """Median over seeds of force_grad_ratio at layer 1 (an RNN: time step 1) over the last epoch of the final runs:
    how large the chosen force was against the gradient it joins (NaN: no force, or no statistics)."""
    if layer_summary is None:
        return math.nan
    rows = layer_summary[(layer_summary.dataset == dataset) & (layer_summary.method == method)
                         & (layer_summary.depth == depth) & (layer_summary.statistic == "force_grad_ratio")
                         & (layer_summary.layer == 1)]
    return float(rows.loc[rows.epoch == rows.epoch.max(), "median"].iloc[0]) if len(rows) else math.nan


def profile_sentence(cell: pd.DataFrame, ratio: float) -> str:
    """Which value of the nested hyperparameter won in one (dataset, method, depth), against the base's choice."""
    chosen, first = cell[cell.chosen].iloc[0], cell.iloc[0]
    symbol = "$\\lambda$" if first.hyperparameter == "cov_lambda" else "the companion-loss weight"
    note = " (the base itself: no force)" if chosen.value == 0 else ""
    head = (f"{method_label(first.method)} at depth {first.depth} on {dataset_label(first.dataset)}: {symbol} "
            f"${plain_number(chosen.value)}$ won{note} at learning rate ${plain_number(chosen.lr)}$, validation loss {plain(chosen.val_loss, 3)} against "
            f"{plain(first.base_val_loss, 3)} for {method_label(first.base)}")
    force = ("" if not math.isfinite(ratio)
             else f"; the force was {plain(100 * ratio, 2)}\\,\\% of the gradient at layer 1")
    return head + force + "."


def profile_macros(profile: pd.DataFrame | None, layer_summary: pd.DataFrame | None) -> dict[str, str]:
    """One sentence per nested cell (profile_sentence) and their count, for the best-shot section."""
    profile = pd.DataFrame(columns=["dataset", "method", "depth", "chosen", "value"]) if profile is None else profile
    cells = profile.groupby(["dataset", "method", "depth"], sort=True)
    sentences = {macro_name("profile", dataset, method, "depth", depth):
                 profile_sentence(cell.sort_values("value"), force_ratio_layer1(layer_summary, dataset, method, depth))
                 for (dataset, method, depth), cell in cells}
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
    sentences = {macro_name("sweep", row.variant, row.dataset, "depth", row.depth): cell_sentence(row)
                 for row in summary.itertuples()}
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
        "SweepSummary": (f"Of the {len(summary)} cells, the best $\\lambda$ on validation is $\\lambda = 0$ in "
                         f"{counts['zero chosen']}; in the others it beats $\\lambda = 0$ in {counts['beats']}, is "
                         f"beaten by it in {counts['beaten']}, is equivalent to it in {counts['equivalent']} and is "
                         f"inconclusive in {counts['inconclusive']}:" if items else "No covariance variant was swept."),
        **sentences,
        "SweepSentences": "\n".join([r"\begin{itemize}\small", *items, r"\end{itemize}"]) if items else "",
    }
