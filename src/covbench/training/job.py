"""One (dataset, method) job: every depth in one process, each tuned, then trained for every seed with its choice.

One process per (dataset, method) pays Python's, torch's and scikit-learn's start-up and the data load (about
4 s, BENCHMARKS.md) once for all depths instead of once per depth: 32 processes instead of 160 in the default
grid. An interrupted job loses little: a depth's tuning record is kept beside its training checkpoint until the
depth is done, and a finished depth is kept (hard links under its run folder's `kept/`) until every depth is,
because Snakemake removes a failed job's outputs; the rerun restores the finished depths, resumes the
interrupted one from its checkpoint without tuning again, and trains the rest. All three are reused only under
the depth's key (JobSettings.key), so a changed setting, or other data, is tuned and trained again.
"""

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from covbench import atomic
from covbench.config import tuning_seeds
from covbench.data import datasets as data
from covbench.data import sequences
from covbench.data import splits as resplit
from covbench.training import tune
from covbench.training.process import configure_process
from covbench.training.runs import RUN_JSON_KEYS, train_seeds
from covbench.training.settings import JobSettings

RUN_FILES = ("run.json", "epochs.parquet", "layer_stats.parquet", "probes.parquet")


@dataclass(frozen=True)
class JobFiles:
    """A job's files, depth by depth in the settings' order: the prepared data it reads, each depth's tuning record
    and its seeds' run folders, and the base's tuning record at each depth where the method tunes nested in it."""

    data: str
    tuned: list[str]
    run_dirs: list[list[str]]
    base_tuned: list[str] = ()


@dataclass(frozen=True)
class JobData:
    """What a depth tunes and trains on: the tuning splits (one split, or K per-model ones), the seeds' splits
    (None: the tuning's), and the records naming each (covbench.data.splits)."""

    tuning: dict[str, torch.Tensor]
    seeds: dict[str, torch.Tensor] | None
    tuning_records: list[dict]
    split_records: list[dict]

    def at(self, settings: JobSettings, depth: int) -> "JobData":
        """The recurrent track's data at one sequence length: the dataset's noise-padded rows (covbench.data.sequences),
        the same for tuning and the seeds; an MLP's data is the same at every depth."""
        if settings.track != "recurrent":
            return self
        return dataclasses.replace(
            self, tuning=sequences.padded_rows(self.tuning, depth, settings.sequence_seed), seeds=None
        )


def run_job(settings: JobSettings, files: JobFiles, remake_data: Callable[[], object] | None = None) -> None:
    """Every depth of the job in turn, keeping finished depths until all are done. `remake_data` makes files.data
    again when it fails verification (covbench.data.datasets.load_splits)."""
    configure_process(settings.threads)
    prepared = data.load_splits(files.data, remake_data)
    if settings.track == "recurrent" and settings.split != "official":
        raise ValueError(
            f"split {settings.split!r}: a sequence dataset keeps its official split; set its split to official"
        )
    tuning, tuning_records, seed_splits, split_records = resplit.job_splits(
        prepared, settings.split, settings.split_seed, list(settings.seeds), tuning_seeds(settings.tune, settings.split)
    )
    job_data = JobData(tuning, seed_splits, tuning_records, split_records)
    kept_dirs = [Path(dirs[0]).parent / "kept" for dirs in files.run_dirs]
    bases = [atomic.read_json(path, required=("method", "chosen", "trials")) for path in files.base_tuned]
    for depth, tune_path, dirs, kept_dir, base in zip(
        settings.depths, files.tuned, files.run_dirs, kept_dirs, bases or [None] * len(settings.depths)
    ):
        outputs = _depth_files(tune_path, dirs)
        key = settings.key(depth, base, [job_data.tuning_records, job_data.split_records])
        if _restore(outputs, kept_dir, key):
            continue
        run_depth(settings, depth, job_data.at(settings, depth), tune_path, dirs, base, key)
        _keep(outputs, kept_dir, key)
    for kept_dir in kept_dirs:
        shutil.rmtree(kept_dir, ignore_errors=True)


def run_depth(
    settings: JobSettings,
    depth: int,
    job_data: JobData,
    tune_path: str,
    run_dirs: list[str],
    base: dict | None,
    key: str,
) -> None:
    """Write the depth's tuning record to tune_path, then each seed's run files to its run folder
    (docs/design.md#the-files). With `base` (the tuning record of the method's base at this depth) the method is tuned
    nested in it. The tuning record is kept beside the checkpoint under `key` until the depth is done."""
    kept = Path(run_dirs[0]) / "tune.json"
    record = _kept_record(kept, key)
    if record is None:
        record = {
            "dataset": settings.dataset,
            "method": settings.method,
            "depth": depth,
            **tune.select(
                job_data.tuning,
                settings.spec,
                settings.hp,
                depth,
                settings.tune,
                settings.device,
                base=base,
                split_records=job_data.tuning_records,
            ),
        }
        atomic.write_json(kept, {"key": key, "record": record}, indent=None)
    atomic.write_json(tune_path, record)
    spec, hp = tune.apply_choice(settings.spec, settings.hp, record["chosen"])
    chosen = dataclasses.replace(settings, spec=spec, hp=hp)
    seed_splits = job_data.seeds if job_data.seeds is not None else job_data.tuning
    train_seeds(chosen, depth, seed_splits, run_dirs, job_data.split_records, key)
    kept.unlink()


def _depth_files(tune_path: str, out_dirs: list[str]) -> dict[Path, str]:
    """A depth's outputs -> their names under its `kept/` folder."""
    files = {Path(tune_path): "tune_record.json"}
    for out_dir in out_dirs:
        files.update({Path(out_dir) / name: f"{Path(out_dir).name}/{name}" for name in RUN_FILES})
    return files


def _kept_record(kept: Path, key: str) -> dict | None:
    """The tuning record kept beside a depth's checkpoint, when it was made with this key and reads back whole."""
    if not kept.exists():
        return None
    try:
        saved = atomic.read_json(kept, required=("key", "record"))
    except atomic.Corrupt as error:
        atomic.warn(f"kept tuning record {kept} failed verification ({error.reason}): removed, tuning again")
        return None
    return saved["record"] if saved["key"] == key else None


def _keep(files: dict[Path, str], kept_dir: Path, key: str) -> None:
    """Hard-link a finished depth's outputs under kept_dir; key.json, written last, marks the copy complete."""
    shutil.rmtree(kept_dir, ignore_errors=True)
    for path, name in files.items():
        (kept_dir / name).parent.mkdir(parents=True, exist_ok=True)
        os.link(path, kept_dir / name)
    atomic.write_text(kept_dir / "key.json", key)


def _verify(path: Path) -> None:
    """Read a kept file back as its reader will (atomic.Corrupt, the file removed, when it fails)."""
    if path.suffix == ".parquet":
        atomic.read_parquet(path)
    elif path.name == "run.json":
        atomic.read_json(path, required=RUN_JSON_KEYS)
    else:
        atomic.read_json(path, required=("chosen",))


def _restore(files: dict[Path, str], kept_dir: Path, key: str) -> bool:
    """Put a finished depth's kept outputs back, when they were made with this key (the same config) and every one
    reads back whole; otherwise the depth is trained again."""
    marker = kept_dir / "key.json"
    if not marker.exists() or marker.read_text() != key:
        return False
    try:
        for name in files.values():
            _verify(kept_dir / name)
    except (atomic.Corrupt, FileNotFoundError) as error:
        atomic.warn(f"a kept file of {kept_dir} failed verification ({error}); training that depth again")
        shutil.rmtree(kept_dir, ignore_errors=True)
        return False
    for path, name in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        os.link(kept_dir / name, path)
    return True
