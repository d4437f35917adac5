"""Throughput of our batched recurrent training against a bare single-model nn.LSTM loop (the recurrent row of BENCHMARKS.md).

    python -m covbench.tools.bench_recurrent             # 1 torch thread, as a Snakemake train job runs

Both train an LSTM on noise-padded row MNIST at the recurrent track's longest sequence length for one epoch of
N_TRAIN sequences (batch and width from the config, SGD with momentum) and then evaluate N_EVAL validation
sequences. Ours is covbench.training.train.train with the track's `lstm` method and its seeds batched as one model (the
whole sequence as one autograd node, components.lstm_sequence, and the explicit cell loop at logging steps, whose
per-time-step statistics read every dL/dh_t); the bare loop is torch.nn.LSTM (PyTorch's C++ implementation) +
nn.Linear for one seed. samples/s counts every model: sequences x models / wall seconds. The median
of REPETITIONS fresh runs each; results go to results/bench/recurrent_threads{N}.json and .md (BENCHMARKS.md).
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from covbench import atomic
from covbench.config import hyperparameters, method_spec, validate
from covbench.data import datasets as data
from covbench.data import sequences
from covbench.tools.bench import machine
from covbench.training.process import configure_process
from covbench.training.train import train

N_TRAIN, N_EVAL = 2_000, 1_000
SEEDS = [0, 1, 2, 3, 4]
LR = 0.5  # fixed here: the grid tunes it, and speed does not depend on it
REPETITIONS = 3
TARGET = 1.5  # ours (all seeds) over the bare loop, samples/s


def bare_lstm_epoch(splits: dict, hp: dict, seed: int) -> float:
    """One epoch of a single nn.LSTM, then validation: wall seconds."""
    torch.manual_seed(seed)
    lstm, head = nn.LSTM(splits["x_train"].shape[-1], hp["width"], batch_first=True), nn.Linear(hp["width"], 10)
    optimizer = torch.optim.SGD([*lstm.parameters(), *head.parameters()], lr=LR, momentum=hp["momentum"])
    x, y = splits["x_train"], splits["y_train"]
    started = time.perf_counter()
    for idx in torch.randperm(len(y)).split(hp["batch_size"]):
        out, _ = lstm(x[idx])
        loss = F.cross_entropy(head(out[:, -1]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        for chunk in splits["x_val"].split(1000):
            head(lstm(chunk)[0][:, -1]).argmax(-1)
    return time.perf_counter() - started


def measure(config: dict, splits: dict) -> dict:
    track = config["recurrent"]
    length = max(track["lengths"])
    dataset = track["datasets"][0]
    hp = {**hyperparameters(config, dataset), "epochs": 1, "lr": LR}
    padded = sequences.padded_rows({k: v for k, v in splits.items() if "test" not in k}, length, seed=0)
    ours = [train(padded, method_spec(config, "lstm"), hp, length, SEEDS).wall_s for _ in range(REPETITIONS)]
    bare = [bare_lstm_epoch(padded, hp, seed=0) for _ in range(REPETITIONS)]
    ours_rate = N_TRAIN * len(SEEDS) / statistics.median(ours)
    bare_rate = N_TRAIN / statistics.median(bare)
    return {
        "length": length,
        "width": hp["width"],
        "batch_size": hp["batch_size"],
        "n_train": N_TRAIN,
        "n_eval": N_EVAL,
        "models": len(SEEDS),
        "ours_wall_s": ours,
        "bare_wall_s": bare,
        "ours_samples_per_s": ours_rate,
        "bare_samples_per_s": bare_rate,
        "ratio": ours_rate / bare_rate,
        "target": TARGET,
        "passed": ours_rate / bare_rate >= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--data", default="results/data/smnist.pt", help="prepared smnist (or mnist) images")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()
    configure_process(args.threads)
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    full = data.load_splits(args.data)
    splits = {
        "x_train": full["x_train"][:N_TRAIN],
        "y_train": full["y_train"][:N_TRAIN],
        "x_val": full["x_val"][:N_EVAL],
        "y_val": full["y_val"][:N_EVAL],
    }
    result = {"machine": machine(), "threads": args.threads, **measure(config, splits)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"recurrent_threads{args.threads}.json"
    atomic.write_json(path, result)
    line = (
        f"| LSTM, T = {result['length']}, width {result['width']}, batch {result['batch_size']} | "
        f"{result['ours_samples_per_s']:.0f} ({result['models']} seeds) | {result['bare_samples_per_s']:.0f} | "
        f"{result['ratio']:.2f}x | {TARGET}x: {'met' if result['passed'] else 'not met'} |"
    )
    markdown = (
        "| workload | ours, samples/s | bare nn.LSTM, samples/s | ratio | target |\n"
        "| --- | ---: | ---: | ---: | --- |\n" + line
    )
    atomic.write_text(path.with_suffix(".md"), markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
