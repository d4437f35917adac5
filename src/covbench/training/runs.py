"""A run's files (docs/design.md#the-files): the seeds of one (dataset, method, depth) trained with their tuned
settings, then each seed's layer statistics, epochs and probes tables and its run.json, written last.
"""

import math
import os
import time
from pathlib import Path

import pandas as pd
import torch

from covbench import atomic
from covbench.data.splits import is_per_model, majority_rates
from covbench.training import probes
from covbench.training.collapse import class_prior_entropy, collapsed
from covbench.training.process import configure_process, resolve_device, versions
from covbench.training.settings import JobSettings
from covbench.training.state import Checkpoint
from covbench.training.train import Probe, RunResult, train

PROBE_COLUMNS = ["model", "epoch", "layer", "probe_accuracy"]
RUN_JSON_KEYS = (
    "dataset",
    "method",
    "depth",
    "seed",
    "diverged",
    "test_accuracy",
    "last_test_accuracy",
    "best_epoch",
    "final_val_accuracy",
)


def train_seeds(
    settings: JobSettings,
    depth: int,
    splits: dict[str, torch.Tensor],
    out_dirs: list[str],
    split_records: list[dict] | None = None,
    key: str = "",
) -> None:
    """Train the seeds of one (dataset, method, depth) with `settings` (its tuned spec and hyperparameters) and write
    each seed's files to its out_dir, with linear probes of every hidden layer at init and after the last epoch when
    the settings ask for them.

    `splits` is shared by the seeds or holds one split per seed (covbench.data.splits); `split_records` (one per
    seed, covbench.data.splits.seed_split / official_record) go into each run.json. A checkpoint every
    settings.checkpoint_every_s seconds, under `key` (what the depth is made with, JobSettings.key), lets an
    interrupted job resume from its last saved epoch.
    """
    process = configure_process(settings.threads)
    seeds = list(settings.seeds)
    first = Path(out_dirs[0])
    first.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(first / "checkpoint.pt", settings.checkpoint_every_s, key)
    probe_clock = {"wall_s": 0.0}
    result = train(
        splits,
        settings.spec,
        settings.hp,
        depth,
        seeds,
        device=settings.device,
        checkpoint=checkpoint,
        probe=timed_probe(settings.probes, seeds, probe_clock),
    )
    recorded = {
        "method_spec": settings.spec,
        "hyperparameters": settings.hp,
        "device": str(resolve_device(settings.device)),
        "threads": settings.threads,
        "process": process,
        "seeds_trained_together": seeds,
    }
    ids = dict(dataset=settings.dataset, method=settings.method, depth=depth)
    for model, (seed, out_dir) in enumerate(zip(seeds, out_dirs)):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_frames(result, model, seed, ids, out)
        labels = {k: splits[k][model] if is_per_model(splits) else splits[k] for k in ("y_train", "y_val", "y_test")}
        split_record = split_records[model] if split_records else None
        record = run_record(result, model, seed, ids, recorded, probe_clock["wall_s"], labels, split_record)
        atomic.write_json(out / "run.json", record)  # last: a run.json means the run's files are complete
    checkpoint.path.unlink(missing_ok=True)


def timed_probe(probe_settings: dict | None, seeds: list[int], clock: dict) -> Probe | None:
    """train's `probe` for the config's probes block (None: no probes): linear probes of the seeds in its `seeds`
    (None: every seed), their time added to clock["wall_s"] (run.json's probe_wall_s)."""
    if not probe_settings:
        return None
    probed_seeds = probe_settings.get("seeds")  # config probes.seeds; None: every seed
    probed = None if probed_seeds is None else [m for m, seed in enumerate(seeds) if seed in probed_seeds]

    def probe(model, probe_splits, epoch):
        started = time.perf_counter()
        frame = probes.probe_frame(model, probe_splits, probe_settings, epoch, probed)
        clock["wall_s"] += time.perf_counter() - started
        return frame

    return Probe(probe, tuple(probe_settings.get("epochs", ())))


def write_frames(result: RunResult, model: int, seed: int, ids: dict, out: Path) -> None:
    """One seed's layer_stats, epochs and probes tables, each row led by the run's dataset, method and depth."""
    probe_rows = (result.probes if len(result.probes) else pd.DataFrame(columns=PROBE_COLUMNS)).assign(seed=seed)
    for name, frame in (("layer_stats", result.layer_stats), ("epochs", result.epochs), ("probes", probe_rows)):
        frame = frame[frame.model == model].drop(columns="model").reset_index(drop=True)
        for col, value in reversed(ids.items()):
            frame.insert(0, col, value)
        atomic.write_parquet(frame, out / f"{name}.parquet")


def run_record(
    result: RunResult,
    model: int,
    seed: int,
    ids: dict,
    settings: dict,
    probe_wall_s: float,
    labels: dict[str, torch.Tensor],
    split_record: dict | None,
) -> dict:
    """One seed's run.json: the run's settings, its outcome at the best checkpoint and at the last epoch, and what
    a network that learned nothing would score (the class prior's entropy, the majority class's rates)."""
    prior_entropy = class_prior_entropy(labels["y_train"])
    val_majority_rate, test_majority_rate = majority_rates(labels["y_train"], labels["y_val"], labels["y_test"])
    rows = result.epochs[result.epochs.model == model]
    last, best_epoch = rows.iloc[-1], int(result.best_epoch[model])
    best_val_accuracy = float(rows.val_accuracy[rows.epoch == best_epoch].iloc[0]) if best_epoch else math.nan
    return {
        **ids,
        "seed": seed,
        **settings,
        "wall_s": result.wall_s,
        "probe_wall_s": probe_wall_s,
        "diverged": bool(last.diverged),
        "test_accuracy": float(result.test_accuracy[model]),
        "best_epoch": best_epoch,
        "best_val_loss": float(result.best_val_loss[model]),
        "best_val_accuracy": best_val_accuracy,
        "last_test_accuracy": float(result.last_test_accuracy[model]),
        "final_val_accuracy": float(last.val_accuracy),
        "final_val_loss": float(last.val_loss),
        "final_train_loss": float(last.train_loss),
        "class_prior_entropy": prior_entropy,
        "collapsed": bool(collapsed(last.train_loss, prior_entropy)),
        "split": split_record,
        "val_majority_rate": val_majority_rate,
        "test_majority_rate": test_majority_rate,
        "versions": versions(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
