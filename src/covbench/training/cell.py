"""The cells of one (dataset, method), every depth, in one process: each tunes, then trains every seed with
its choice.

One process per (dataset, method) pays Python's, torch's and scikit-learn's start-up and the data load (about
4 s, BENCHMARKS.md) once for all depths instead of once per cell: 32 processes instead of 160 in the default
grid. An interrupted job loses little: a depth's tuning record is kept beside its training checkpoint until the
depth is done, and a finished depth is kept (hard links under its run folder's `kept/`) until every depth is,
because Snakemake removes a failed job's outputs; the rerun restores the finished depths, resumes the
interrupted one from its checkpoint without tuning again, and trains the rest.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from covbench import atomic
from covbench.config import tuning_seeds
from covbench.data import datasets as data
from covbench.data import sequences
from covbench.data import splits as resplit
from covbench.training import train, tune

RUN_FILES = ("run.json", "epochs.parquet", "layer_stats.parquet", "probes.parquet")


def run(
    data_path: str,
    tune_path: str,
    out_dirs: list[str],
    dataset: str,
    method: str,
    spec: dict,
    hp: dict,
    depth: int,
    tune_settings: dict,
    seeds: list[int],
    threads: int = 1,
    device: str = "cpu",
    checkpoint_every_s: float = 60.0,
    probe_settings: dict | None = None,
    splits: dict | None = None,
    base: dict | None = None,
    seed_splits: dict | None = None,
    split_records: list[dict] | None = None,
    tuning_records: list[dict] | None = None,
) -> None:
    """Write the tuning record to tune_path, then each seed's run files to its out_dir (docs/design.md#the-files). With
    `base` (the tuning record of the method's base at this depth) the method is tuned nested in it. Tuning reads
    `splits` (data_path's when not given; K per-model tuning splits named by `tuning_records`, tune.select), the
    seeds read `seed_splits` (one per seed, covbench.data.splits) where given, else the same."""
    train.configure_process(threads)
    splits = splits if splits is not None else data.load_splits(data_path)
    kept = Path(out_dirs[0]) / "tune.json"
    key = json.dumps([spec, hp, depth, tune_settings, base and base["trials"], tuning_records], sort_keys=True)
    record = _kept_record(kept, key)
    if record is None:
        record = {
            "dataset": dataset,
            "method": method,
            "depth": depth,
            **tune.select(splits, spec, hp, depth, tune_settings, device, base=base, split_records=tuning_records),
        }
        atomic.write_json(kept, {"key": key, "record": record}, indent=None)
    atomic.write_json(tune_path, record)
    spec, hp = tune.apply_choice(spec, hp, record["chosen"])
    train.run(
        seed_splits if seed_splits is not None else splits,
        out_dirs,
        dataset,
        method,
        spec,
        hp,
        depth,
        seeds,
        threads=threads,
        device=device,
        checkpoint_every_s=checkpoint_every_s,
        probe_settings=probe_settings,
        split_records=split_records,
    )
    kept.unlink()


def run_depths(
    data_path: str,
    tune_paths: list[str],
    out_dirs: list[list[str]],
    dataset: str,
    method: str,
    spec: dict,
    hp: dict,
    depths: list[int],
    tune_settings: dict,
    seeds: list[int],
    threads: int = 1,
    device: str = "cpu",
    checkpoint_every_s: float = 60.0,
    probe_settings: dict | None = None,
    sequence_seed: int | None = None,
    remake_data: Callable[[], object] | None = None,
    base_tune_paths: list[str] = (),
    split: str = "official",
    split_seed: int = 0,
) -> None:
    """`run` for every depth (tune_paths[i] and out_dirs[i] belong to depths[i]), keeping finished depths
    until all are done; with base_tune_paths (the base's tuning record at each depth) each depth is tuned nested
    in its base. With a sequence_seed the dataset is read as noise-padded rows (covbench.data.sequences) and
    the depths are sequence lengths; a recurrent network's time steps get no linear probes. `remake_data` makes
    data_path again when it fails verification (covbench.data.datasets.load_splits). `split` is the dataset's
    split protocol (covbench.data.splits: `per_seed` draws one split per seed and one per tuning seed, tune.splits of them)."""
    train.configure_process(threads)
    splits = data.load_splits(data_path, remake_data)
    if sequence_seed is not None and split != "official":
        raise ValueError(f"split {split!r}: a sequence dataset keeps its official split; set its split to official")
    tuning_splits, tuning_records, seed_splits, split_records = resplit.cell_splits(
        splits, split, split_seed, seeds, tuning_seeds(tune_settings, split)
    )
    kept_dirs = [Path(dirs[0]).parent / "kept" for dirs in out_dirs]
    bases = [atomic.read_json(path, required=("method", "chosen", "trials")) for path in base_tune_paths]
    for depth, tune_path, dirs, kept_dir, base in zip(
        depths, tune_paths, out_dirs, kept_dirs, bases or [None] * len(depths)
    ):
        files = _cell_files(tune_path, dirs)
        key = _depth_key(
            dataset,
            method,
            spec,
            hp,
            depth,
            tune_settings,
            seeds,
            probe_settings,
            sequence_seed,
            base,
            tuning_records,
            split_records,
        )
        if _restore(files, kept_dir, key):
            continue
        cell_splits, cell_seed_splits, cell_probes = _depth_data(
            splits, tuning_splits, seed_splits, probe_settings, depth, sequence_seed
        )
        run(
            data_path,
            tune_path,
            dirs,
            dataset,
            method,
            spec,
            hp,
            depth,
            tune_settings,
            seeds,
            threads=threads,
            device=device,
            checkpoint_every_s=checkpoint_every_s,
            probe_settings=cell_probes,
            splits=cell_splits,
            base=base,
            seed_splits=cell_seed_splits,
            split_records=split_records,
            tuning_records=tuning_records,
        )
        _keep(files, kept_dir, key)
    for kept_dir in kept_dirs:
        shutil.rmtree(kept_dir, ignore_errors=True)


def _depth_data(splits, tuning_splits, seed_splits, probe_settings, depth, sequence_seed):
    """-> a depth's (tuning splits, the seeds' splits, probe settings): with a sequence_seed, the dataset's
    noise-padded rows at that length for both (None: the seeds train on the tuning's), and no probes (a recurrent
    network's time steps get none)."""
    if sequence_seed is None:
        return tuning_splits, seed_splits, probe_settings
    return sequences.padded_rows(splits, depth, sequence_seed), None, None


def _depth_key(
    dataset,
    method,
    spec,
    hp,
    depth,
    tune_settings,
    seeds,
    probe_settings,
    sequence_seed,
    base,
    tuning_records,
    split_records,
) -> str:
    """What a depth's outputs were made with: kept outputs are restored only under the same key."""
    return json.dumps(
        [
            dataset,
            method,
            spec,
            hp,
            depth,
            tune_settings,
            seeds,
            probe_settings,
            sequence_seed,
            base and base["trials"],
            tuning_records,
            split_records,
        ],
        sort_keys=True,
    )


def _cell_files(tune_path: str, out_dirs: list[str]) -> dict[Path, str]:
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
        atomic.read_json(path, required=train.RUN_JSON_KEYS)
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
