"""How much a per-seed-split dataset's result depends on which splits the grid drew.

    python -m covbench.tools.split_draws --methods relu_he elu_he relu_resnet --depths 2 4 --draws 400

On cat/not-cat each grid seed draws its own split (docs/design.md#per-seed-splits), so a cell's median test accuracy
over the grid's J seeds is one draw of J splits and J initialisations. This tool trains each named (method, depth) of a
grid that ran, at the learning rate (and auxiliary value) its tuning chose, on `draws` fresh seeds outside the grid's,
each with its own split, exactly as the grid's seeds train (covbench.training.train). From those test accuracies it
gives the method's median over splits, and by resampling J of them at a time the spread of a J-seed median and how
often it lies above the constant predictor's test rate. It reads the grid's results (tuning records, run.json) and
changes nothing there; no verdict uses it. Results go to results/split_draws/<dataset>.json and .md.
"""

import argparse
from pathlib import Path

import numpy as np

from covbench import atomic
from covbench.data import datasets as data
from covbench.data import splits as resplit
from covbench.tools.cost import load_config
from covbench.training import tune
from covbench.training.process import configure_process
from covbench.training.settings import JobSettings
from covbench.training.train import train

ROOT = Path(__file__).resolve().parents[3]  # src/covbench/tools/split_draws.py -> the repository
FIRST_DRAW = 2000  # fresh seeds start here, far from the grid's seeds and the tuning seeds (tune.seed onwards)
BATCH = 50  # seeds trained together (memory: a depth-32 net on 12,288 inputs per seed)
RESAMPLES = 20_000
ABOVE = 1e-4  # test accuracies are float32 multiples of 1/50: "above" means by more than rounding


def median_spread(accuracies: np.ndarray, seeds: int, constant: float, resamples: int = RESAMPLES) -> dict:
    """The distribution of a `seeds`-seed median test accuracy, by drawing `seeds` of `accuracies` with replacement:
    its 5 % and 95 % quantiles, and the share of draws whose median is above `constant`."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(accuracies, size=(resamples, seeds)), axis=1)
    return {
        "median_q05": float(np.quantile(medians, 0.05)),
        "median_q95": float(np.quantile(medians, 0.95)),
        "share_above_constant": float((medians > constant + ABOVE).mean()),
    }


def mean_percentile(accuracies: np.ndarray, grid_accuracies: np.ndarray, resamples: int = RESAMPLES) -> float:
    """The share of `len(grid_accuracies)`-seed means of `accuracies` (drawn with replacement) below the grid's mean:
    near 0, the grid drew splits harder than most; near 1, easier."""
    rng = np.random.default_rng(1)
    means = rng.choice(accuracies, size=(resamples, len(grid_accuracies))).mean(axis=1)
    return float((means < grid_accuracies.mean()).mean())


def fresh_accuracies(pool, spec, hp, depth, seeds, split_seed, device) -> tuple[np.ndarray, np.ndarray]:
    """Test accuracy at the best checkpoint and the constant predictor's test rate, one per seed, each seed on its
    own split (trained BATCH at a time, as the grid batches its seeds)."""
    accuracies, constants = [], []
    for start in range(0, len(seeds), BATCH):
        batch = seeds[start : start + BATCH]
        drawn = [resplit.seed_split(pool, seed, split_seed)[0] for seed in batch]
        result = train(resplit.stacked(drawn), spec, hp, depth, batch, device=device)
        accuracies += [float(a) for a in result.test_accuracy]
        constants += [resplit.majority_rates(d["y_train"], d["y_val"], d["y_test"])[1] for d in drawn]
    return np.array(accuracies), np.array(constants)


def cell_row(config, results: Path, dataset: str, method: str, depth: int, draws: int, device: str) -> dict:
    """One (method, depth): the grid's seeds as they ran, and `draws` fresh seeds at the grid's tuned choice."""
    record = atomic.read_json(results / "tune" / dataset / method / f"depth{depth}.json", required=("chosen",))
    settings = JobSettings.from_config(config, dataset, method)
    spec, hp = tune.apply_choice(settings.spec, settings.hp, record["chosen"])
    grid_seeds = list(settings.seeds)
    runs = results / "runs" / dataset / method / f"depth{depth}"
    grid_accuracies = np.array([atomic.read_json(runs / f"seed{s}" / "run.json")["test_accuracy"] for s in grid_seeds])
    pool = resplit.pooled(data.load_splits(str(results / "data" / f"{dataset}.pt")))
    seeds = list(range(FIRST_DRAW, FIRST_DRAW + draws))
    accuracies, constants = fresh_accuracies(pool, spec, hp, depth, seeds, settings.split_seed, device)
    constant = float(np.median(constants))
    return {
        "method": method,
        "depth": depth,
        "chosen": record["chosen"],
        "constant_test_rate": constant,
        "grid_seeds": len(grid_seeds),
        "grid_median": float(np.median(grid_accuracies)),
        "grid_mean": float(grid_accuracies.mean()),
        "draws": draws,
        "draws_median": float(np.median(accuracies)),
        "draws_mean": float(accuracies.mean()),
        "draws_sd": float(accuracies.std(ddof=1)),
        "grid_mean_percentile": mean_percentile(accuracies, grid_accuracies),
        **median_spread(accuracies, len(grid_seeds), constant),
        "test_accuracies": [round(a, 4) for a in accuracies.tolist()],
    }


def markdown(dataset: str, rows: list[dict]) -> str:
    head = (
        f"# {dataset}: the grid's seeds against {rows[0]['draws']} fresh split draws\n\n"
        "| method | depth | lr | constant | grid median | draws median (mean, sd) | J-seed median q05-q95 "
        "| share of J-seed medians above constant | grid mean's percentile |\n"
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |\n"
    )
    lines = [
        f"| {r['method']} | {r['depth']} | {r['chosen']['lr']:.2g} | {r['constant_test_rate']:.2f} | {r['grid_median']:.2f} "
        f"| {r['draws_median']:.2f} ({r['draws_mean']:.3f}, {r['draws_sd']:.3f}) | {r['median_q05']:.2f}-{r['median_q95']:.2f} "
        f"| {r['share_above_constant']:.2f} | {r['grid_mean_percentile']:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", default=[], help="merged over config/config.yaml, as Snakemake does")
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--dataset", default="catvnoncat")
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--depths", nargs="+", type=int, required=True)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = load_config(args.configfile)
    if config["datasets"][args.dataset].get("split", "official") != "per_seed":
        raise SystemExit(f"{args.dataset} keeps one split for every seed; set datasets.{args.dataset}.split: per_seed")
    configure_process(args.threads)
    results = Path(args.results)
    rows = [
        cell_row(config, results, args.dataset, method, depth, args.draws, args.device)
        for method in args.methods
        for depth in args.depths
    ]
    table = markdown(args.dataset, rows)
    atomic.write_json(results / "split_draws" / f"{args.dataset}.json", rows)
    atomic.write_text(results / "split_draws" / f"{args.dataset}.md", table)
    print(table)


if __name__ == "__main__":
    main()
