"""Throughput of our instrumented training against plain PyTorch loops on the same machine.

    python -m covbench.tools.bench                # 1 torch thread, as a Snakemake train job runs
    python -m covbench.tools.bench --threads 2
    python -m covbench.tools.bench --profile      # also torch.profiler tables of our training at the deepest depth

A second table times the cells where subnormal floats arise (the baseline's sigmoid + N(0, 1) net on cat/not-cat's
12,288 standardized pixels), with subnormals flushed to zero as every training process runs them
(covbench.training.process.configure_process) and with IEEE gradual underflow, the variants interleaved.

Every variant trains MNIST (the baseline's sigmoid MLP with N(0, 1) init, batch 64, SGD with momentum) and
evaluates validation and test accuracy after each epoch, as our training does: one epoch at depth 32, more at
shallower depths so that every measurement does about the same arithmetic. The median wall time of 5
repetitions gives samples/s (training examples times models trained at once, per second).
The bare loop is what our loop would be without statistics, auxiliary forces and the model dimension; the
DataLoader loop is the same model written the way users usually write it. Results go to
results/bench/throughput_threads{N}.json and .md (and profile_*.txt); see BENCHMARKS.md.
"""

import argparse
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from covbench import atomic
from covbench.config import validate
from covbench.data import datasets as data
from covbench.models import build_mlp
from covbench.training.batches import data_generators
from covbench.training.process import configure_process
from covbench.training.settings import JobSettings
from covbench.training.train import train

# settings
DEPTHS = (2, 8, 32)
METHODS = ("baseline", "covariance")  # method specs from the config
BATCHED_SEEDS = [0, 1, 2, 3, 4]
LR, COV_LAMBDA = 0.1, 1.0  # fixed here: the grid tunes them, and speed does not depend on them
N_TRAIN, N_EVAL = 10_000, 2_000  # one epoch; validation and test each (kept small: every loop evaluates alike)
REPETITIONS = 5
WARMUP_EXAMPLES = 640  # ten steps of every variant before its timed repetitions
MATMUL_SIZE, MATMUL_REPEATS = 2048, 5
# The subnormal table: cat/not-cat (168 training images, batch 32: 6 steps an epoch), one model, lr as above
SUBNORMAL_DEPTHS = (2, 8, 32)
SUBNORMAL_EPOCHS = 10
# Pass/fail: (variant, reference, minimum ratio of samples/s).
TARGETS = (
    ("ours_baseline", "bare", 0.90),
    ("ours_covariance", "bare", 0.75),
    ("ours_baseline_5seeds", "dataloader", 2.0),
    ("ours_covariance_5seeds", "dataloader", 2.0),
)


def bench_splits(data_path: Path, raw_dir: Path, mirror: str | None) -> dict[str, torch.Tensor]:
    """N_TRAIN / N_EVAL / N_EVAL real MNIST examples: the prepared file when it is big enough, else the raw files."""
    if data_path.exists():
        splits = data.load_splits(data_path)
        if len(splits["y_train"]) >= N_TRAIN and len(splits["y_val"]) >= N_EVAL and len(splits["y_test"]) >= N_EVAL:
            sizes = {"train": N_TRAIN, "val": N_EVAL, "test": N_EVAL}
            return {k: v[: sizes[k.split("_")[1]]] for k, v in splits.items()}
    data.download("mnist", raw_dir, mirror)
    with tempfile.TemporaryDirectory() as tmp:
        path = data.prepare("mnist", raw_dir, Path(tmp) / "mnist.pt", N_TRAIN, N_EVAL, N_EVAL)
        return data.load_splits(path)


def flops_per_example(in_dim: int, width: int, depth: int, classes: int) -> int:
    """Training FLOPs of one example: 2 per multiply-add forward, 4 backward (input and weight gradients)."""
    dims = [in_dim] + [width] * depth + [classes]
    return 6 * sum(fan_in * fan_out for fan_in, fan_out in zip(dims[:-1], dims[1:]))


def peak_matmul_gflops() -> float:
    """Best of MATMUL_REPEATS float32 square matmuls: what this machine's BLAS reaches at these threads."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(MATMUL_REPEATS):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * MATMUL_SIZE**3 / best / 1e9


def bare_mlp(spec: dict, in_dim: int, width: int, depth: int, classes: int, seed: int) -> nn.Sequential:
    """torch.nn layers holding the very initial weights of our seed-`seed` model, so both loops meet the same
    numbers (saturated sigmoids produce subnormal floats, which cost CPU time)."""
    ours = build_mlp(spec, in_dim, width, depth, classes, [seed])
    layers = []
    for w, b in zip(ours.weights, ours.biases):
        linear = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            linear.weight.copy_(w[0].T)
            linear.bias.copy_(b[0])
        layers += [linear, nn.Sigmoid()]
    return nn.Sequential(*layers[:-1])


@torch.no_grad()
def bare_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(-1) == y).float().mean().item()


def bare_train(splits: dict, spec: dict, hp: dict, depth: int, use_dataloader: bool) -> tuple[float, float]:
    """The plain loop, validation and test accuracy after each epoch: our seed-0 training minus the instrumentation
    (same initial weights, and with the index permutation the same data order). -> the last epoch's accuracies."""
    x, y = splits["x_train"], splits["y_train"]
    classes = int(max(splits[k].max() for k in ("y_train", "y_val", "y_test"))) + 1
    model = bare_mlp(spec, x.shape[1], hp["width"], depth, classes, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"])
    gen = data_generators([0])[0]
    loader = DataLoader(TensorDataset(x, y), batch_size=hp["batch_size"], shuffle=True, generator=gen)
    for _ in range(hp["epochs"]):
        if use_dataloader:
            batches = loader
        else:
            perm = torch.randperm(len(y), generator=gen)
            batches = ((x[idx], y[idx]) for idx in perm.split(hp["batch_size"]))
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        accuracies = (
            bare_accuracy(model, splits["x_val"], splits["y_val"]),
            bare_accuracy(model, splits["x_test"], splits["y_test"]),
        )
    return accuracies


def epochs_at(depth: int, in_dim: int, width: int) -> int:
    """Epochs per measurement: enough that every depth does about the arithmetic of one epoch at the deepest,
    so that shallow measurements last long enough to time."""
    return math.ceil(flops_per_example(in_dim, width, max(DEPTHS), 10) / flops_per_example(in_dim, width, depth, 10))


def bench_method(config: dict, method: str, epochs: int) -> tuple[dict, dict]:
    """(spec, hp) of the method's MNIST job (JobSettings) with the fixed learning rate and lambda (tuning picks them in
    the grid)."""
    settings = JobSettings.from_config(config, "mnist", method)
    spec = settings.spec
    if spec["aux"].startswith("covariance"):
        spec = {"cov_lambda": COV_LAMBDA, **spec}
    return spec, {**settings.hp, "epochs": epochs, "lr": LR}


def variants(config: dict, epochs: int) -> dict:
    """name -> (models trained at once, fn(splits, depth) training `epochs` epochs)."""
    spec, hp = bench_method(config, "baseline", epochs)
    out = {
        "bare": (1, lambda splits, depth: bare_train(splits, spec, hp, depth, use_dataloader=False)),
        "dataloader": (1, lambda splits, depth: bare_train(splits, spec, hp, depth, use_dataloader=True)),
    }
    for method in METHODS:
        spec, method_hp = bench_method(config, method, epochs)
        for suffix, seeds in (("", [0]), ("_5seeds", BATCHED_SEEDS)):
            out[f"ours_{method}{suffix}"] = (
                len(seeds),
                lambda splits, depth, spec=spec, hp=method_hp, seeds=seeds: train(splits, spec, hp, depth, seeds),
            )
    return out


def _slice(splits: dict, n: int) -> dict:
    return {k: v[:n] for k, v in splits.items()}


def measure(splits: dict, config: dict) -> list[dict]:
    """Median wall and process CPU time of REPETITIONS measurements per (depth, variant), the variants interleaved.

    CPU time is what a busy machine distorts least: other processes lengthen the wall time, not our CPU time.
    """
    in_dim, width = splits["x_train"].shape[1], config["train"]["width"]
    rows = []
    for depth in DEPTHS:
        epochs = epochs_at(depth, in_dim, width)
        runs = variants(config, epochs)
        for _, fn in runs.values():
            fn(_slice(splits, WARMUP_EXAMPLES), depth)
        walls, cpus = {name: [] for name in runs}, {name: [] for name in runs}
        for _ in range(REPETITIONS):
            for name, (_, fn) in runs.items():
                wall_started, cpu_started = time.perf_counter(), time.process_time()
                fn(splits, depth)
                walls[name].append(time.perf_counter() - wall_started)
                cpus[name].append(time.process_time() - cpu_started)
        examples = epochs * N_TRAIN
        flops = flops_per_example(in_dim, width, depth, 10) * examples
        for name, (models, _) in runs.items():
            wall_s, cpu_s = statistics.median(walls[name]), statistics.median(cpus[name])
            rows.append(
                {
                    "depth": depth,
                    "variant": name,
                    "models": models,
                    "epochs": epochs,
                    "wall_s": wall_s,
                    "cpu_s": cpu_s,
                    "wall_s_all": walls[name],
                    "cpu_s_all": cpus[name],
                    "samples_per_s": models * examples / wall_s,
                    "samples_per_cpu_s": models * examples / cpu_s,
                    "gflops": models * flops / wall_s / 1e9,
                }
            )
    return rows


def cat_splits(raw_dir: Path, mirror: str | None) -> dict[str, torch.Tensor]:
    """All of cat/not-cat, as the grid prepares it."""
    with tempfile.TemporaryDirectory() as tmp:
        return data.load_splits(data.prepare("catvnoncat", raw_dir, Path(tmp) / "catvnoncat.pt", mirror=mirror))


def measure_subnormals(splits: dict, config: dict) -> list[dict]:
    """Median wall time of REPETITIONS trainings of the baseline on cat/not-cat per depth, flushed and not."""
    settings = JobSettings.from_config(config, "catvnoncat", "baseline")
    spec, hp = settings.spec, {**settings.hp, "epochs": SUBNORMAL_EPOCHS, "lr": LR}
    examples = SUBNORMAL_EPOCHS * len(splits["y_train"])
    rows = []
    for depth in SUBNORMAL_DEPTHS:
        walls = {"flushed": [], "gradual_underflow": []}
        train(_slice(splits, 64), spec, {**hp, "epochs": 1}, depth, [0])  # warm-up
        for _ in range(REPETITIONS):
            for name in walls:
                torch.set_flush_denormal(name == "flushed")
                started = time.perf_counter()
                train(splits, spec, hp, depth, [0])
                walls[name].append(time.perf_counter() - started)
        torch.set_flush_denormal(True)
        for name, times in walls.items():
            rows.append(
                {
                    "depth": depth,
                    "variant": f"baseline_catvnoncat_{name}",
                    "epochs": SUBNORMAL_EPOCHS,
                    "wall_s": statistics.median(times),
                    "wall_s_all": times,
                    "samples_per_s": examples / statistics.median(times),
                }
            )
        rows[-2]["speedup"] = statistics.median(u / f for f, u in zip(walls["flushed"], walls["gradual_underflow"]))
    return rows


def paired_ratio(ours: dict, ref: dict, key: str) -> float:
    """Median over repetitions of ours' samples/s over the reference's in the same repetition.

    The variants of a repetition run back to back, within seconds; this machine's speed drifts over minutes
    (the bare loop's depth-2 epochs took 0.52 to 0.88 s within one run), so a ratio of two medians can pair a
    fast phase with a slow one, and a median of paired ratios does not.
    """
    return statistics.median(ours["models"] * r / (ref["models"] * o) for o, r in zip(ours[key], ref[key]))


def check_targets(rows: list[dict]) -> list[dict]:
    """Pass/fail on wall-clock samples/s, paired by repetition; the CPU-time ratio alongside."""
    by = {(r["depth"], r["variant"]): r for r in rows}
    out = []
    for variant, reference, target in TARGETS:
        for depth in DEPTHS:
            ours, ref = by[depth, variant], by[depth, reference]
            ratio = paired_ratio(ours, ref, "wall_s_all")
            out.append(
                {
                    "depth": depth,
                    "variant": variant,
                    "reference": reference,
                    "target": target,
                    "ratio": ratio,
                    "cpu_ratio": paired_ratio(ours, ref, "cpu_s_all"),
                    "pass": ratio >= target,
                }
            )
    return out


def batching_split(rows: list[dict]) -> list[dict]:
    """Per method and depth, CPU time per epoch = fixed + models * per_model, from the 1- and 5-model runs.

    fixed is what batching shares (per-step Python, dispatch, data, statistics, over the epoch); per_model what
    each model adds (mostly its matmuls). dataloader / per_model is the ceiling of batched samples/s over the DataLoader
    loop as the number of models grows: no batching beats it without cheaper per-model arithmetic.
    """
    by = {(r["depth"], r["variant"]): r for r in rows}
    out = []
    for method in METHODS:
        for depth in DEPTHS:
            one, many = by[depth, f"ours_{method}"], by[depth, f"ours_{method}_5seeds"]
            epochs = one["epochs"]
            per_model = (many["cpu_s"] - one["cpu_s"]) / (many["models"] - one["models"]) / epochs
            out.append(
                {
                    "depth": depth,
                    "method": method,
                    "fixed_cpu_s": one["cpu_s"] / epochs - per_model,
                    "per_model_cpu_s": per_model,
                    "ceiling_vs_dataloader": by[depth, "dataloader"]["cpu_s"] / epochs / per_model,
                }
            )
    return out


def profile(splits: dict, config: dict, out_dir: Path, depth: int = max(DEPTHS), top: int = 25) -> list[Path]:
    """torch.profiler operator tables (self CPU time) of one epoch of our training per method."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    paths = []
    for method in METHODS:
        spec, hp = bench_method(config, method, epochs=1)
        train(_slice(splits, WARMUP_EXAMPLES), spec, hp, depth, [0])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            train(splits, spec, hp, depth, [0])
        path = out_dir / f"profile_{method}_depth{depth}_threads{torch.get_num_threads()}.txt"
        atomic.write_text(path, prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
        paths.append(path)
    return paths


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    models = (
        [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": models[0] if models else platform.processor(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "load_average_1min": os.getloadavg()[0],
    }


def table(rows: list[dict], targets: list[dict], split: list[dict], peak: float, machine_info: dict) -> str:
    """Markdown, as pasted into BENCHMARKS.md."""
    lines = [
        f"Commit {machine_info['commit']}, {machine_info['torch_threads']} torch thread(s), {machine_info['cpu']}, "
        f"load average {machine_info['load_average_1min']:.1f} before; peak {MATMUL_SIZE}x{MATMUL_SIZE} float32 "
        f"matmul {peak:.1f} GFLOP/s.",
        "",
        "| depth | variant | models | samples/s | samples/CPU-s | GFLOP/s | % peak |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['depth']} | {r['variant']} | {r['models']} | {r['samples_per_s']:.0f} | "
            f"{r['samples_per_cpu_s']:.0f} | {r['gflops']:.2f} | {100 * r['gflops'] / peak:.1f} |"
        )
    lines += [
        "",
        "| samples/s ratio, median of the repetitions' ratios | target | "
        + " | ".join(f"depth {d}" for d in DEPTHS)
        + " |",
        "| --- | ---: |" + " --- |" * len(DEPTHS),
    ]
    for variant, reference, target in TARGETS:
        cells = [t for t in targets if t["variant"] == variant and t["reference"] == reference]
        lines.append(
            f"| {variant} / {reference} | >= {target:.2f} | "
            + " | ".join(
                f"{t['ratio']:.2f} (CPU {t['cpu_ratio']:.2f}) {'PASS' if t['pass'] else 'FAIL'}" for t in cells
            )
            + " |"
        )
    lines += [
        "",
        "| method | depth | fixed CPU-s/epoch | per-model CPU-s/epoch | ceiling vs DataLoader |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in split:
        lines.append(
            f"| {s['method']} | {s['depth']} | {s['fixed_cpu_s']:.2f} | {s['per_model_cpu_s']:.2f} | "
            f"{s['ceiling_vs_dataloader']:.2f}x |"
        )
    return "\n".join(lines)


def subnormal_table(rows: list[dict]) -> str:
    lines = [
        "| depth | cat/not-cat baseline, subnormals | samples/s | wall s (median) "
        "| speed-up of flushing (median of paired) |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        speedup = f"{r['speedup']:.1f}x" if "speedup" in r else ""
        lines.append(
            f"| {r['depth']} | {r['variant'].removeprefix('baseline_catvnoncat_')} | "
            f"{r['samples_per_s']:.0f} | {r['wall_s']:.2f} | {speedup} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (Snakemake train jobs use 1)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument(
        "--data", default="results/data/mnist.pt", help="prepared MNIST, used when it holds enough examples"
    )
    parser.add_argument("--raw-dir", default="results/data/raw")
    parser.add_argument("--mirror", default=None, help="directory of verified raw files (e.g. ../shared/data)")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--profile", action="store_true", help="also write torch.profiler tables")
    args = parser.parse_args()

    process = configure_process(args.threads)
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    mirror = args.mirror or config["data"]["mirror"]
    splits = bench_splits(Path(args.data), Path(args.raw_dir), mirror)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    peak = peak_matmul_gflops()
    started = machine()
    rows = measure(splits, config)
    subnormal_rows = measure_subnormals(cat_splits(Path(args.raw_dir), mirror), config)
    targets, split = check_targets(rows), batching_split(rows)
    result = {
        "machine": started,
        "load_average_1min_after": os.getloadavg()[0],
        "n_train": N_TRAIN,
        "n_eval": N_EVAL,
        "repetitions": REPETITIONS,
        "batch_size": config["datasets"]["mnist"]["batch_size"],
        "width": config["train"]["width"],
        "peak_matmul_gflops": peak,
        "rows": rows,
        "targets": targets,
        "batching_split": split,
        "subnormal_rows": subnormal_rows,
        "process": process,
    }
    path = out_dir / f"throughput_threads{args.threads}.json"
    atomic.write_json(path, result)
    markdown = table(rows, targets, split, peak, started) + "\n\n" + subnormal_table(subnormal_rows)
    atomic.write_text(path.with_suffix(".md"), markdown + "\n")
    print(markdown)
    print(f"\nwrote {path} and {path.with_suffix('.md')}")
    if args.profile:
        for p in profile(splits, config, out_dir):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
