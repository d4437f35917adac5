"""What a config's grid costs on this machine, measured before running it.

    python -m covbench.tools.cost --configfile config/full.yaml                  # every cell, this machine's device
    python -m covbench.tools.cost --configfile config/full.yaml --methods relu_he covariance --sizes 1000 2000

Per (dataset, method, depth) of the grid (and per (method, T) of the recurrent track), the batched final model
(all the grid's seeds) trains one epoch on two training subsets of `sizes` examples, validating on the config's
validation split as the pipeline does. A straight line through the two wall times gives the seconds an epoch
spends per training example and the fixed part (validation, the statistics at step 0). A cell then costs
    (fixed + per_example * train_size) * (seeds * epochs + tuning trial-epochs) / seeds,
since trials are batched as seeds are and an epoch costs about the same per batched model: the tuning budget is
trial-epochs (covbench.training.tune.budget_epochs), times K where a trial trains on K tuning splits (per-seed
splits, tune.splits). Probes, the lambda sweep and the Nielsen runs are left out (a few %
of the default grid, BENCHMARKS.md). The estimate is checked against a grid that ran: `--check
results/benchmarks` compares the default config's estimate with its per-job benchmark files.

A second estimate needs no new measurement: `--extrapolate results/benchmarks` scales the job seconds of a grid
that ran with the default config (Snakemake's per-job benchmark files) by the ratio of work between the two
configs: training examples x (seeds x epochs + tuning trial-epochs), times T for a recurrent cell, per
(dataset, method) job; lambda-sweep cells by examples x epochs x (lambdas x seeds) and by their number; Nielsen
runs as they are. It ignores the fixed part of an epoch (validation), so it overstates what more data costs.
Results go to results/cost/<config name>_<device>.csv and .md.
"""

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from covbench import atomic
from covbench.config import AUX_HYPERPARAMETER, base_method, method_spec, tuning_seeds, validate
from covbench.data import datasets as data
from covbench.data import sequences
from covbench.training.process import configure_process, resolve_device
from covbench.training.settings import JobSettings
from covbench.training.train import train
from covbench.training.tune import budget_epochs

ROOT = Path(__file__).resolve().parents[3]  # src/covbench/tools/cost.py -> the repository
TIMING_LR = 1e-3  # small enough that no model diverges in one epoch; speed does not depend on it
AUX_VALUES = {"cov_lambda": 1.0, "aux_weight": 0.3}  # likewise, for the auxiliary hyperparameter tuning sets


def load_config(paths: list[str]) -> dict:
    """config/config.yaml with each --configfile merged over it, as Snakemake merges them."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for path in paths:
        config = _merge(config, yaml.safe_load(Path(path).read_text()))
    return validate(config)


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def cells(config: dict, methods: list[str] | None) -> list[tuple[str, str, int]]:
    grid, recurrent = config["grid"], config.get("recurrent", {"datasets": []})
    found = [(d, m, depth) for d in grid["datasets"] for m in grid["methods"] for depth in grid["depths"]]
    found += [(d, m, t) for d in recurrent["datasets"] for m in recurrent["methods"] for t in recurrent["lengths"]]
    return [c for c in found if methods is None or c[1] in methods]


def epoch_seconds(splits: dict, spec: dict, hp: dict, depth: int, seeds: list[int], size: int, device) -> float:
    """Wall time of one epoch of the batched seeds on the first `size` training examples."""
    subset = {**splits, "x_train": splits["x_train"][:size], "y_train": splits["y_train"][:size]}
    subset.pop("x_test", None), subset.pop("y_test", None)
    start = time.perf_counter()
    train(subset, spec, {**hp, "epochs": 1}, depth, seeds, device=str(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(config: dict, methods: list[str] | None, sizes: tuple[int, int], device, out_csv: Path) -> pd.DataFrame:
    """One row per cell, written to out_csv as each is measured (a long measurement stopped early keeps its rows)."""
    rows, loaded = [], {}
    for dataset, method, depth in cells(config, methods):
        source = "mnist" if dataset == "smnist" else dataset
        if source not in loaded:
            loaded[source] = data.load_splits(ROOT / "results" / "data" / f"{source}.pt")
        splits = loaded[source]
        recurrent = dataset in config.get("recurrent", {"datasets": []})["datasets"]
        job = JobSettings.from_config(config, dataset, method, "recurrent" if recurrent else "mlp")
        spec, seeds = dict(job.spec), list(job.seeds)
        if spec["aux"] in AUX_HYPERPARAMETER:
            name = AUX_HYPERPARAMETER[spec["aux"]]
            spec.setdefault(name, AUX_VALUES[name])
        hp = {**job.hp, "lr": TIMING_LR}
        settings = config["datasets"][dataset]
        if recurrent:
            splits = sequences.padded_rows(_val_sized(splits, settings), depth, job.sequence_seed)
        else:
            splits = _val_sized(splits, settings)
        small, large = sizes
        if large > len(splits["y_train"]):  # a small dataset (cat/not-cat's 168 images): half of it, then all
            large = len(splits["y_train"])
            small = large // 2
        epoch_seconds(splits, spec, hp, depth, seeds, small, device)  # warm-up: allocator, kernels, caches
        t_small = epoch_seconds(splits, spec, hp, depth, seeds, small, device)
        t_large = epoch_seconds(splits, spec, hp, depth, seeds, large, device)
        per_example = max(t_large - t_small, 0.0) / (large - small)
        fixed = max(t_small - per_example * small, 0.0)
        train_size = settings["train_size"] or _full_train_size(dataset)
        tuning = len(tuning_seeds(job.tune, job.split)) * budget_epochs(
            tuning_trials(config, method, dataset), settings["tune_epochs"], config["tune"]["eta"]
        )
        epoch_s = fixed + per_example * train_size
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "depth": depth,
                "device": device.type,
                "seeds": len(seeds),
                "train_size": train_size,
                "epochs": settings["epochs"],
                "tuning_trial_epochs": tuning,
                "epoch_fixed_s": fixed,
                "epoch_per_example_s": per_example,
                "batched_epoch_s": epoch_s,
                "cell_s": epoch_s * (len(seeds) * settings["epochs"] + tuning) / len(seeds),
            }
        )
        atomic.write_text(out_csv, pd.DataFrame(rows).to_csv(index=False))
        print(
            f"{dataset} {method} depth {depth}: {epoch_s:.2f} s per batched epoch, cell {rows[-1]['cell_s']:.0f} s",
            flush=True,
        )
    return pd.DataFrame(rows)


def tuning_trials(config: dict, method: str, dataset: str) -> int:
    """The trials one cell of `method` tunes: a method nested in a base of its track (tune.nested_grid) tries the
    base's lr and its two neighbours times its hyperparameter's nested values (at most: one neighbour at an edge)."""
    recurrent = config.get("recurrent", {"datasets": []})
    track = recurrent["methods"] if dataset in recurrent["datasets"] else config["grid"]["methods"]
    specs = {m: method_spec(config, m) for m in track}
    name = AUX_HYPERPARAMETER.get(specs[method]["aux"])
    if name and name not in specs[method] and base_method(method, specs) is not None:
        return 3 * len(config["tune"]["nested"][name])
    return config["tune"]["trials"]


def tuning_splits(config: dict, dataset: str) -> int:
    """K, the splits every tuning trial trains on (covbench.config.tuning_seeds): one per tuning seed."""
    return len(tuning_seeds(config["tune"], config["datasets"][dataset].get("split", "official")))


def _val_sized(splits: dict, settings: dict) -> dict:
    """The validation split at the config's val_size (the pipeline validates on it every epoch)."""
    size = settings.get("val_size")
    return {**splits, "x_val": splits["x_val"][:size], "y_val": splits["y_val"][:size]} if size else splits


def _full_train_size(dataset: str) -> int:
    return {"mnist": 50_000, "smnist": 50_000, "catvnoncat": 168}[dataset]


def summary(cost: pd.DataFrame) -> str:
    by_dataset = cost.groupby("dataset").cell_s.sum()
    unit = "GPU-hours, one job at a time" if cost.device.iloc[0] == "cuda" else "core-hours, 1 thread per job"
    lines = [f"| dataset | cells | {unit} |", "|---|---:|---:|"]
    lines += [f"| {d} | {int((cost.dataset == d).sum())} | {s / 3600:.1f} |" for d, s in by_dataset.items()]
    lines.append(f"| all | {len(cost)} | {cost.cell_s.sum() / 3600:.1f} |")
    return "\n".join(lines)


def check(config: dict, cost: pd.DataFrame, benchmarks: Path) -> pd.DataFrame:
    """Estimated against measured job seconds (Snakemake's per-job benchmark files) of the train jobs."""
    rows = []
    for (dataset, method), group in cost.groupby(["dataset", "method"]):
        rule = "train_recurrent" if dataset == "smnist" else "train"
        tsv = benchmarks / rule / dataset / f"{method}.tsv"
        if tsv.exists():
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "estimated_s": group.cell_s.sum(),
                    "measured_s": float(pd.read_csv(tsv, sep="\t").s.iloc[0]),
                }
            )
    return pd.DataFrame(rows)


def _work(config: dict, dataset: str, length: int | None = None) -> float:
    """Examples x model-epochs (final seeds and tuning trials) of one cell, times T for a recurrent one."""
    settings = config["datasets"][dataset]
    size = settings["train_size"] or _full_train_size(dataset)
    model_epochs = len(config["grid"]["seeds"]) * settings["epochs"] + tuning_splits(config, dataset) * budget_epochs(
        config["tune"]["trials"], settings["tune_epochs"], config["tune"]["eta"]
    )
    return size * model_epochs * (length or 1)


def extrapolate(reference: dict, target: dict, benchmarks: Path) -> pd.DataFrame:
    """Job seconds of `target`'s grid, from the benchmark files of a run of `reference` (one row per job)."""
    rows = []
    for dataset in target["grid"]["datasets"]:
        for method in target["grid"]["methods"]:
            tsv = benchmarks / "train" / dataset / f"{method}.tsv"
            ratio = (
                len(target["grid"]["depths"])
                / len(reference["grid"]["depths"])
                * (_work(target, dataset) / _work(reference, dataset))
            )
            rows.append(("train", dataset, method, tsv, ratio))
    recurrent_t, recurrent_r = target.get("recurrent", {}), reference.get("recurrent", {})
    for dataset in recurrent_t.get("datasets", []):
        for method in recurrent_t["methods"]:
            tsv = benchmarks / "train_recurrent" / dataset / f"{method}.tsv"
            ratio = sum(_work(target, dataset, t) for t in recurrent_t["lengths"]) / sum(
                _work(reference, dataset, t) for t in recurrent_r["lengths"]
            )
            rows.append(("train_recurrent", dataset, method, tsv, ratio))
    sweep_t, sweep_r = target["lambda_sweep"], reference["lambda_sweep"]
    for dataset in target["grid"]["datasets"]:
        for variant in sweep_t["variants"]:
            measured = sorted((benchmarks / "lambda_sweep" / dataset / variant).glob("depth*.tsv"))
            if not measured:
                continue
            per_cell = [
                len(sweep_t["lambdas"])
                * len(sweep_t["seeds"])
                * target["datasets"][dataset]["epochs"]
                * (target["datasets"][dataset]["train_size"] or _full_train_size(dataset)),
                len(sweep_r["lambdas"])
                * len(sweep_r["seeds"])
                * reference["datasets"][dataset]["epochs"]
                * (reference["datasets"][dataset]["train_size"] or _full_train_size(dataset)),
            ]
            # the measured cells stand for the target's depths (a deeper cell costs more: a rough guide)
            ratio = len(sweep_t["depths"]) / len(measured) * per_cell[0] / per_cell[1]
            rows += [("lambda_sweep", dataset, variant, tsv, ratio) for tsv in measured]
    rows += [
        ("nielsen_train", "mnist", tsv.stem, tsv, 1.0) for tsv in sorted((benchmarks / "nielsen_train").glob("*.tsv"))
    ]
    out = []
    for rule, dataset, method, tsv, ratio in rows:
        if tsv.exists():
            seconds = float(pd.read_csv(tsv, sep="\t").s.iloc[0])
            out.append(
                {
                    "rule": rule,
                    "dataset": dataset,
                    "method": method,
                    "measured_s": seconds,
                    "work_ratio": ratio,
                    "estimated_s": seconds * ratio,
                }
            )
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", default=[])
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--sizes", nargs=2, type=int, default=[1000, 2000])
    parser.add_argument("--device", default=None, help="default: the config's train.device")
    parser.add_argument("--check", default=None, help="a results/benchmarks folder of a grid run with this config")
    parser.add_argument(
        "--extrapolate",
        default=None,
        help="a results/benchmarks folder of a default-config grid run: scale its job seconds instead",
    )
    args = parser.parse_args()
    config = load_config(args.configfile)
    if args.extrapolate:
        jobs = extrapolate(load_config([]), config, Path(args.extrapolate))
        name = "_".join(Path(p).stem for p in args.configfile) or "config"
        out = ROOT / "results" / "cost"
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out / f"{name}_extrapolated.csv", jobs.to_csv(index=False))
        by_rule = jobs.groupby("rule")[["measured_s", "estimated_s"]].sum() / 3600
        text = "| rule | measured core-hours (default grid) | estimated core-hours |\n|---|---:|---:|\n" + "\n".join(
            f"| {rule} | {row.measured_s:.2f} | {row.estimated_s:.2f} |" for rule, row in by_rule.iterrows()
        )
        text += f"\n| all | {jobs.measured_s.sum() / 3600:.2f} | {jobs.estimated_s.sum() / 3600:.2f} |"
        atomic.write_text(out / f"{name}_extrapolated.md", text + "\n")
        print(text)
        return
    configure_process(config["train"]["threads"])
    device = resolve_device(args.device or config["train"]["device"])
    name = "_".join(Path(p).stem for p in args.configfile) or "config"
    out = ROOT / "results" / "cost"
    out.mkdir(parents=True, exist_ok=True)
    cost = measure(config, args.methods, tuple(args.sizes), device, out / f"{name}_{device.type}.csv")
    text = summary(cost)
    if args.check:
        checked = check(config, cost, Path(args.check))
        atomic.write_text(out / f"{name}_{device.type}_check.csv", checked.to_csv(index=False))
        ratio = checked.estimated_s.sum() / checked.measured_s.sum()
        text += (
            f"\n\nAgainst the {len(checked)} train jobs in {args.check}: estimated "
            f"{checked.estimated_s.sum():.0f} s, measured {checked.measured_s.sum():.0f} s (ratio {ratio:.2f})."
        )
    atomic.write_text(out / f"{name}_{device.type}.md", text + "\n")
    print(text)
    print(json.dumps({"device": str(device), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
