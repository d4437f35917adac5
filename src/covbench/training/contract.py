"""The run-file contract (docs/methods.md, "Methods as rules"): what every producer of a run writes, checked by `aggregate`.

A run is (dataset, method, depth, seed) and lives in results/runs/{dataset}/{method}/depth{D}/seed{S}/ as four
files. Any rule may produce them (the generic `train` rule, or a rule of workflow/rules/methods/): the
statistics a producer cannot compute are NaN, never missing. A file that breaks the contract stops `aggregate`
with one line naming the file and the column (or key):

    contract error in results/runs/mnist/x/depth2/seed0/epochs.parquet: column 'val_loss' is missing

Types are kinds, not exact widths: "int" is any integer, "float" any floating point, "str" a string, "bool" a
boolean. probes.parquet may have no rows (a producer without linear probes); then its columns may be untyped.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from covbench.training.stats import STAT_NAMES

RUN_KEYS = ["dataset", "method", "depth", "seed"]  # a run's identity, the key of every per-run table
IDS = {"dataset": "str", "method": "str", "depth": "int", "seed": "int"}
EPOCHS = {
    **IDS,
    "epoch": "int",
    "train_loss": "float",
    "train_accuracy": "float",
    "val_loss": "float",
    "val_accuracy": "float",
    "wall_s": "float",
    "diverged": "bool",
}
LAYER_STATS = {**IDS, "step": "int", "epoch": "int", "layer": "int", **{name: "float" for name in STAT_NAMES}}
PROBES = {**IDS, "epoch": "int", "layer": "int", "probe_accuracy": "float"}
PARQUET = {"epochs.parquet": EPOCHS, "layer_stats.parquet": LAYER_STATS, "probes.parquet": PROBES}
RUN_JSON = {
    **IDS,
    "diverged": "bool",
    "collapsed": "bool",
    "test_accuracy": "float",
    "last_test_accuracy": "float",
    "best_epoch": "int",
    "best_val_loss": "float",
    "best_val_accuracy": "float",
    "final_val_accuracy": "float",
    "final_val_loss": "float",
    "wall_s": "float",
}

# Where a dataset draws a split per seed (config datasets.<name>.split: per_seed), run.json names the split the run
# trained on, so aggregation can check that paired runs share it, and gives the constant predictor's rates on it.
PER_SEED_RUN_JSON = {"val_majority_rate": "float", "test_majority_rate": "float"}
SPLIT_RECORD = {"protocol": "str", "seed": "int", "n_train": "int", "n_val": "int", "n_test": "int", "sha256": "str"}

_ARROW_KINDS = {
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "bool": pa.types.is_boolean,
    "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
}
_JSON_KINDS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "float": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
    "str": lambda v: isinstance(v, str),
}


class ContractError(ValueError):
    pass


def check_parquet(path: str | Path, columns: dict[str, str]) -> None:
    """Every column of `columns` present with its kind; an empty file's untyped (null) columns pass."""
    parquet = pq.ParquetFile(path)
    schema, empty = parquet.schema_arrow, parquet.metadata.num_rows == 0
    for column, kind in columns.items():
        if column not in schema.names:
            raise ContractError(f"contract error in {path}: column '{column}' is missing")
        arrow_type = schema.field(column).type
        if not (_ARROW_KINDS[kind](arrow_type) or (empty and pa.types.is_null(arrow_type))):
            raise ContractError(
                f"contract error in {path}: column '{column}' is {arrow_type}, the contract says {kind}"
            )


def check_run_json(path: str | Path) -> None:
    """Every key of RUN_JSON present with its kind (a float may be null or NaN: no value)."""
    record = json.loads(Path(path).read_text())
    for key, kind in RUN_JSON.items():
        if key not in record:
            raise ContractError(f"contract error in {path}: key '{key}' is missing")
        value = record[key]
        if not _JSON_KINDS[kind](value):
            raise ContractError(
                f"contract error in {path}: key '{key}' is {type(value).__name__} {value!r}, the contract says {kind}"
            )


def check_split(path: str | Path, record: dict) -> None:
    """A per-seed dataset's run: its `split` record (protocol per_seed, seed, sizes, sha256) and finite majority
    rates, as covbench.data.splits.seed_data gives them."""
    split = record.get("split")
    if not isinstance(split, dict) or split.get("protocol") != "per_seed":
        found = split.get("protocol") if isinstance(split, dict) else split
        raise ContractError(
            f"contract error in {path}: its dataset is split per seed but the run's 'split' is {found!r}: draw the "
            "seed's split with covbench.data.splits.seed_data and write its keys"
        )
    for key, kind in SPLIT_RECORD.items():
        if not _JSON_KINDS[kind](split.get(key)) or split.get(key) is None:
            raise ContractError(f"contract error in {path}: key 'split.{key}' is missing or not {kind}")
    for key in PER_SEED_RUN_JSON:
        value = record.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            raise ContractError(f"contract error in {path}: key '{key}' is {value!r}, the contract says a number")


def check_runs(
    run_jsons: list[str],
    epochs_files: list[str],
    layer_stats_files: list[str],
    probes_files: list[str],
    per_seed_datasets: tuple[str, ...] = (),
) -> None:
    """Check every run's four files (and, for `per_seed_datasets`, its split record); the first breach raises
    ContractError (one line)."""
    for path in run_jsons:
        check_run_json(path)
        record = json.loads(Path(path).read_text())
        if record["dataset"] in per_seed_datasets:
            check_split(path, record)
    for paths, columns in ((epochs_files, EPOCHS), (layer_stats_files, LAYER_STATS), (probes_files, PROBES)):
        for path in paths:
            check_parquet(path, columns)
