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
    "final_val_accuracy": "float",
    "final_val_loss": "float",
    "wall_s": "float",
}

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


def check_runs(
    run_jsons: list[str], epochs_files: list[str], layer_stats_files: list[str], probes_files: list[str]
) -> None:
    """Check every run's four files; the first breach raises ContractError (one line)."""
    for path in run_jsons:
        check_run_json(path)
    for paths, columns in ((epochs_files, EPOCHS), (layer_stats_files, LAYER_STATS), (probes_files, PROBES)):
        for path in paths:
            check_parquet(path, columns)
