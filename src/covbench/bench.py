"""Throughput of our instrumented training against plain PyTorch loops on the same machine.

    python -m covbench.bench                # 1 torch thread, as a Snakemake train job runs
    python -m covbench.bench --threads 2
    python -m covbench.bench --profile      # also torch.profiler tables of our training at the deepest depth

Every variant trains one epoch of MNIST (width-100 sigmoid MLP, N(0, 1) init, batch 64, SGD with
momentum) and evaluates validation and test accuracy at its end, as our training does; the median wall
time of 3 repetitions gives samples/s (training examples times models trained at once, per second).
The bare loop is what our loop would be without statistics, hooks and the model dimension; the
DataLoader loop is the same model written the way users usually write it. Results go to
results/bench/throughput_threads{N}.json (and profile_*.txt); see BENCHMARKS.md.
"""
import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from covbench import data
from covbench.config import hyperparameters, method_spec, validate
from covbench.train import train

# settings
DEPTHS = (2, 8, 32)
METHODS = ("baseline", "covariance")  # method specs from the config
BATCHED_SEEDS = [0, 1, 2, 3, 4]
LR, COV_LAMBDA = 0.1, 1.0  # fixed here: the grid tunes them, and speed does not depend on them
N_TRAIN, N_EVAL = 10_000, 2_000  # one epoch; validation and test each, as 50k : 10k in the full grid
REPETITIONS = 3
WARMUP_EXAMPLES = 640  # ten steps of every variant before its timed repetitions
MATMUL_SIZE, MATMUL_REPEATS = 2048, 5
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
            return {k: v[:sizes[k.split("_")[1]]] for k, v in splits.items()}
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


def bare_mlp(in_dim: int, width: int, depth: int, classes: int, seed: int) -> nn.Sequential:
    """torch.nn layers with the baseline's sigmoid and N(0, 1) weights and biases, so the numbers it meets match ours."""
    gen = torch.Generator().manual_seed(2 * seed)
    dims = [in_dim] + [width] * depth
    layers = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.Sigmoid()]
    layers.append(nn.Linear(width, classes))
    with torch.no_grad():
        for p in (p for layer in layers for p in layer.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen))
    return nn.Sequential(*layers)


@torch.no_grad()
def bare_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(-1) == y).float().mean().item()


def bare_train(splits: dict, hp: dict, depth: int, use_dataloader: bool) -> None:
    """One epoch of the plain loop, then validation and test accuracy: our training minus the instrumentation."""
    x, y = splits["x_train"], splits["y_train"]
    model = bare_mlp(x.shape[1], hp["width"], depth, 10, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"])
    gen = torch.Generator().manual_seed(1)
    if use_dataloader:
        batches = DataLoader(TensorDataset(x, y), batch_size=hp["batch_size"], shuffle=True, generator=gen)
    else:
        perm = torch.randperm(len(y), generator=gen)
        batches = ((x[idx], y[idx]) for idx in perm.split(hp["batch_size"]))
    for xb, yb in batches:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    bare_accuracy(model, splits["x_val"], splits["y_val"])
    bare_accuracy(model, splits["x_test"], splits["y_test"])


def bench_method(config: dict, method: str) -> tuple[dict, dict]:
    """(spec, hp) of one epoch of MNIST with the fixed learning rate and lambda (tuning picks them in the grid)."""
    spec = method_spec(config, method)
    if spec["aux"].startswith("covariance"):
        spec = {"cov_lambda": COV_LAMBDA, **spec}
    return spec, {**hyperparameters(config, "mnist"), "epochs": 1, "lr": LR}


def variants(config: dict) -> dict:
    """name -> (models trained at once, fn(splits, depth) training one epoch)."""
    hp = bench_method(config, "baseline")[1]
    out = {
        "bare": (1, lambda splits, depth: bare_train(splits, hp, depth, use_dataloader=False)),
        "dataloader": (1, lambda splits, depth: bare_train(splits, hp, depth, use_dataloader=True)),
    }
    for method in METHODS:
        spec, method_hp = bench_method(config, method)
        for suffix, seeds in (("", [0]), ("_5seeds", BATCHED_SEEDS)):
            out[f"ours_{method}{suffix}"] = (
                len(seeds), lambda splits, depth, spec=spec, hp=method_hp, seeds=seeds: train(splits, spec, hp, depth, seeds))
    return out


def _slice(splits: dict, n: int) -> dict:
    return {k: v[:n] for k, v in splits.items()}


def measure(splits: dict, config: dict) -> list[dict]:
    """Median wall time of REPETITIONS epochs per (depth, variant); repetitions interleave the variants."""
    in_dim, width = splits["x_train"].shape[1], config["train"]["width"]
    rows = []
    for depth in DEPTHS:
        runs = variants(config)
        for _, fn in runs.values():
            fn(_slice(splits, WARMUP_EXAMPLES), depth)
        walls = {name: [] for name in runs}
        for _ in range(REPETITIONS):
            for name, (_, fn) in runs.items():
                started = time.perf_counter()
                fn(splits, depth)
                walls[name].append(time.perf_counter() - started)
        flops = flops_per_example(in_dim, width, depth, 10) * N_TRAIN
        for name, (models, _) in runs.items():
            wall_s = statistics.median(walls[name])
            rows.append({"depth": depth, "variant": name, "models": models, "wall_s": wall_s, "wall_s_all": walls[name],
                         "samples_per_s": models * N_TRAIN / wall_s, "gflops": models * flops / wall_s / 1e9})
    return rows


def check_targets(rows: list[dict]) -> list[dict]:
    by = {(r["depth"], r["variant"]): r["samples_per_s"] for r in rows}
    return [{"depth": depth, "variant": variant, "reference": reference, "target": target,
             "ratio": by[depth, variant] / by[depth, reference], "pass": by[depth, variant] / by[depth, reference] >= target}
            for variant, reference, target in TARGETS for depth in DEPTHS]


def profile(splits: dict, config: dict, out_dir: Path, depth: int = max(DEPTHS), top: int = 25) -> list[Path]:
    """torch.profiler operator tables (self CPU time) of one epoch of our training per method."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    paths = []
    for method in METHODS:
        spec, hp = bench_method(config, method)
        train(_slice(splits, WARMUP_EXAMPLES), spec, hp, depth, [0])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            train(splits, spec, hp, depth, [0])
        path = out_dir / f"profile_{method}_depth{depth}_threads{torch.get_num_threads()}.txt"
        path.write_text(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
        paths.append(path)
    return paths


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return {"cpu": models[0] if models else platform.processor(), "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def table(rows: list[dict], targets: list[dict], peak: float) -> str:
    lines = [f"{'depth':>5}  {'variant':<24}{'models':>6}{'samples/s':>12}{'GFLOP/s':>9}{'% peak':>8}"]
    for r in rows:
        lines.append(f"{r['depth']:>5}  {r['variant']:<24}{r['models']:>6}{r['samples_per_s']:>12.0f}"
                     f"{r['gflops']:>9.2f}{100 * r['gflops'] / peak:>7.1f}%")
    lines += ["", f"peak: {MATMUL_SIZE}x{MATMUL_SIZE} float32 matmul {peak:.1f} GFLOP/s", ""]
    for t in targets:
        lines.append(f"{t['variant'] + ' / ' + t['reference']:<36} depth {t['depth']:>2}: {t['ratio']:5.2f}x "
                     f"(target >= {t['target']:.2f}x) {'PASS' if t['pass'] else 'FAIL'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (Snakemake train jobs use 1)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--data", default="results/data/mnist.pt", help="prepared MNIST, used when it holds enough examples")
    parser.add_argument("--raw-dir", default="results/data/raw")
    parser.add_argument("--mirror", default=None, help="directory of verified raw files (e.g. ../shared/data)")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--profile", action="store_true", help="also write torch.profiler tables")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    mirror = args.mirror or config["data"]["mirror"]
    splits = bench_splits(Path(args.data), Path(args.raw_dir), mirror)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    peak = peak_matmul_gflops()
    rows = measure(splits, config)
    targets = check_targets(rows)
    result = {"machine": machine(), "n_train": N_TRAIN, "n_eval": N_EVAL, "repetitions": REPETITIONS,
              "batch_size": config["datasets"]["mnist"]["batch_size"], "width": config["train"]["width"],
              "peak_matmul_gflops": peak, "rows": rows, "targets": targets}
    path = out_dir / f"throughput_threads{args.threads}.json"
    path.write_text(json.dumps(result, indent=2))
    print(table(rows, targets, peak))
    print(f"\nwrote {path}")
    if args.profile:
        for p in profile(splits, config, out_dir):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
