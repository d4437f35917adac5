"""Methods as rules (docs/methods.md "Methods as rules"): the run-file contract, scikit-learn's MLPClassifier as a method, and
the rule that provides it taking the place of the generic `train` through the DAG."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import merge
from test_workflow import ROOT, project_copy, snakemake

from covbench.analysis import aggregate
from covbench.config import ConfigError, validate
from covbench.data.splits import seed_data
from covbench.training import contract, sklearn_mlp
from covbench.training.stats import STAT_NAMES

KIND_VALUES = {"str": "x", "int": 1, "float": 0.5, "bool": False}


def contract_run(folder, ids=None):
    """A run folder whose four files hold exactly the contract's columns and keys (two rows each)."""
    ids = ids or {"dataset": "mnist", "method": "x", "depth": 2, "seed": 0}
    folder.mkdir(parents=True, exist_ok=True)
    for name, columns in contract.PARQUET.items():
        pd.DataFrame([{c: ids.get(c, KIND_VALUES[kind]) for c, kind in columns.items()}] * 2).to_parquet(
            folder / name, index=False
        )
    (folder / "run.json").write_text(
        json.dumps({k: ids.get(k, KIND_VALUES[kind]) for k, kind in contract.RUN_JSON.items()})
    )
    return {name.split(".")[0]: [str(folder / name)] for name in ("run.json", *contract.PARQUET)}


def test_contract_accepts_its_own_columns_and_names_a_missing_one(tmp_path):
    files = contract_run(tmp_path / "run")
    contract.check_runs(files["run"], files["epochs"], files["layer_stats"], files["probes"])
    epochs = pd.read_parquet(files["epochs"][0]).drop(columns="val_loss")
    epochs.to_parquet(files["epochs"][0], index=False)
    with pytest.raises(contract.ContractError) as error:
        contract.check_runs(files["run"], files["epochs"], files["layer_stats"], files["probes"])
    assert str(error.value) == f"contract error in {files['epochs'][0]}: column 'val_loss' is missing"


def test_contract_names_a_wrong_type_and_a_missing_key(tmp_path):
    files = contract_run(tmp_path / "run")
    stats = pd.read_parquet(files["layer_stats"][0]).astype({"layer": "float64"})
    stats.to_parquet(files["layer_stats"][0], index=False)
    with pytest.raises(
        contract.ContractError,
        match=r"layer_stats.parquet: column 'layer' is double, the contract "
        r"says int$",
    ):
        contract.check_parquet(files["layer_stats"][0], contract.LAYER_STATS)
    record = json.loads(open(files["run"][0]).read())
    del record["final_val_loss"]
    open(files["run"][0], "w").write(json.dumps(record))
    with pytest.raises(contract.ContractError, match=r"run.json: key 'final_val_loss' is missing$"):
        contract.check_run_json(files["run"][0])


def documented_run_json_keys() -> set[str]:
    """The run.json keys docs/methods.md's contract table names (before 'further keys')."""
    row = next(
        line for line in (ROOT / "docs" / "methods.md").read_text().splitlines() if line.startswith("| `run.json`")
    )
    return set(re.findall(r"`(\w+)`", row.split("further keys")[0].split("|")[3]))


def test_a_run_with_exactly_the_documented_keys_aggregates(tmp_path):
    """The contract is what aggregation reads: the keys docs/methods.md lists are the contract's, and a run written
    with exactly those is aggregated (no KeyError of a key only aggregation knew)."""
    assert documented_run_json_keys() == set(contract.RUN_JSON)
    files = contract_run(tmp_path / "run")
    for name, column in (("epochs", "epoch"), ("layer_stats", "step"), ("probes", "epoch")):  # two distinct rows
        frame = pd.read_parquet(files[name][0])
        frame.assign(**{column: [0, 1] if column == "step" or name == "probes" else [1, 2]}).to_parquet(files[name][0])
    outputs = {name: str(tmp_path / f"{name}.parquet") for name in aggregate.TABLES}
    aggregate.write_tables(
        files["run"], files["epochs"], files["layer_stats"], files["probes"], {"mnist": 0.9}, outputs
    )
    assert len(pd.read_parquet(outputs["run_summary"])) == 1


def test_a_per_seed_run_names_its_split(tmp_path, splits):
    """Where each seed draws its own split, run.json carries seed_data's keys (the split record and the majority
    rates): a run without them, or on the official split, stops with one line; runs of one seed on two splits too."""
    tensors, fields = seed_data(splits, "per_seed", 0, 3)
    assert fields["split"]["protocol"] == "per_seed" and fields["split"]["seed"] == 3
    assert fields["val_majority_rate"] == float(torch.bincount(tensors["y_val"]).max()) / len(tensors["y_val"])
    ids = {"dataset": "catvnoncat", "method": "x", "depth": 2, "seed": 3}
    files = contract_run(tmp_path / "run", ids)
    record = json.loads(open(files["run"][0]).read())
    with pytest.raises(
        contract.ContractError, match=r"run.json: its dataset is split per seed but the run's 'split' is None"
    ):
        contract.check_runs(*files.values(), per_seed_datasets=("catvnoncat",))
    _, official = seed_data(splits, "official", 0, 3)
    open(files["run"][0], "w").write(json.dumps({**record, **official}))
    with pytest.raises(contract.ContractError, match=r"the run's 'split' is 'official': draw the seed's split"):
        contract.check_runs(*files.values(), per_seed_datasets=("catvnoncat",))
    open(files["run"][0], "w").write(json.dumps({**record, **fields}))
    contract.check_runs(*files.values(), per_seed_datasets=("catvnoncat",))
    other = contract_run(tmp_path / "other", {**ids, "method": "y"})
    _, elsewhere = seed_data(splits, "per_seed", 1, 3)  # another split_seed: another split for seed 3
    other_record = json.loads(Path(other["run"][0]).read_text())
    Path(other["run"][0]).write_text(json.dumps({**other_record, **elsewhere}))
    runs = aggregate.runs_frame([json.loads(Path(f["run"][0]).read_text()) for f in (files, other)])
    with pytest.raises(
        contract.ContractError,
        match=r"^results/runs/catvnoncat/x/depth2/seed3 and .*/y/depth2/seed3 ran seed 3 on different splits",
    ):
        aggregate.check_shared_splits(runs, ("catvnoncat",))


def test_contract_lets_a_run_without_probes_write_an_empty_untyped_file(tmp_path):
    files = contract_run(tmp_path / "run")
    pd.DataFrame(columns=list(contract.PROBES)).to_parquet(files["probes"][0], index=False)  # as train.py writes it
    contract.check_parquet(files["probes"][0], contract.PROBES)


def test_initial_weights_are_the_ones_sklearn_starts_from():
    x = np.random.default_rng(0).random((40, 12), dtype=np.float32)
    y = np.arange(40) % 3
    model = sklearn_mlp.classifier(8, 2, 40, seed=5, options={"learning_rate_init": 1e-12})
    model.partial_fit(x, y, classes=np.arange(3))  # one Adam step of about 1e-12 from the initial weights
    weights, biases = sklearn_mlp.initial_parameters(5, [12, 8, 8, 3])
    for mine, theirs in zip(weights + biases, model.coefs_ + model.intercepts_):
        np.testing.assert_allclose(mine, theirs, atol=1e-9)


def test_a_diverging_sklearn_mlp_stops_where_it_diverged(splits):
    """A step size of 1e12 overflows the activations in the first epoch: the run stops there, recorded as diverged,
    and is evaluated as it was at the epoch's start (as the generic loop records a diverged run)."""
    splits = {k: v.numpy() for k, v in splits.items()}
    hp = {"width": 16, "epochs": 3, "batch_size": 32, "log_every": 3}
    result = sklearn_mlp.train_seed(splits, 4, hp, {"learning_rate_init": 1e12}, 0, torch.Generator().manual_seed(1))
    epochs = result["epochs"]
    assert result["diverged"] and epochs.epoch.tolist() == [1] and epochs.diverged.tolist() == [True]
    assert epochs.train_loss.iloc[0] == np.inf and np.isfinite(epochs.val_loss.iloc[0])
    assert 0 <= result["test_accuracy"] <= 1


def test_sklearn_mlp_learns_and_writes_the_contract(tmp_path, splits):
    splits = {k: v.numpy() for k, v in splits.items()}
    hp = {"width": 16, "epochs": 3, "batch_size": 32, "log_every": 3}
    result = sklearn_mlp.train_seed(splits, 2, hp, {"learning_rate_init": 0.01}, 0, torch.Generator().manual_seed(1))
    epochs, stats = result["epochs"], result["layer_stats"]
    assert epochs.epoch.tolist() == [1, 2, 3] and not epochs.diverged.any()
    assert epochs.train_loss.iloc[-1] < epochs.train_loss.iloc[0] and result["test_accuracy"] > 0.6
    steps_per_epoch = 7  # 200 examples in batches of 32
    assert sorted(stats.step.unique()) == list(range(0, 3 * steps_per_epoch, 3))
    assert (stats[stats.step == 0].weight_drift == 0).all() and (stats.update_ratio > 0).all()
    assert stats[[s for s in STAT_NAMES if s not in ("weight_drift", "update_ratio")]].isna().all().all()
    ids = {"dataset": "mnist", "method": "sklearn_mlp", "depth": 2, "seed": 0}
    tensors = {k: torch.from_numpy(v) for k, v in splits.items()}
    sklearn_mlp.write_run(str(tmp_path), ids, result, hp, seed_data(tensors, "official", 0, 0)[1])
    contract.check_runs(
        [str(tmp_path / "run.json")],
        [str(tmp_path / "epochs.parquet")],
        [str(tmp_path / "layer_stats.parquet")],
        [str(tmp_path / "probes.parquet")],
    )
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["method_spec"]["hidden_layer_sizes"] == [16, 16] and record["method_spec"]["solver"] == "adam"


def test_config_declares_a_method_by_its_rule(config):
    extra = yaml.safe_load((ROOT / "config" / "sklearn_mlp.yaml").read_text())
    validate(merge(config, extra))
    mixed = merge(
        config, {**extra, "methods": {"sklearn_mlp": {**extra["methods"]["sklearn_mlp"], "activation": "relu"}}}
    )
    with pytest.raises(ConfigError, match=r"^config error at 'methods.sklearn_mlp'"):  # a rule or components, not both
        validate(mixed)


def test_a_method_naming_a_rule_that_does_not_exist_stops_with_one_line(tmp_path):
    project = project_copy(tmp_path)
    (project / "config" / "ghost.yaml").write_text(
        yaml.safe_dump(
            {
                "methods": {"ghost": {"rule": "no_such_rule"}},
                "grid": {"methods": ["baseline", "ghost"]},
                "lambda_sweep": {"variants": [], "depths": []},
            }
        )
    )
    done = snakemake(project, "-n", "--cores", "1", "--configfile", "config/ghost.yaml")
    assert done.returncode != 0
    assert "config error at 'methods.ghost.rule': no rule 'no_such_rule' in workflow/rules/methods/" in done.stderr


def test_sklearn_mlp_rule_replaces_train_through_the_dag(tmp_path, mirror):
    """A tiny grid: the generic `train` makes baseline's runs, rule `sklearn_mlp` makes sklearn_mlp's (and no tuning
    record), and aggregate checks both against the contract; then a run file missing a column stops aggregate with
    one line naming the file and the column."""
    project = project_copy(tmp_path)
    (project / "config" / "tiny.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {"mirror": str(mirror)},
                "datasets": {
                    "catvnoncat": {
                        "train_size": 40,
                        "val_size": 20,
                        "test_size": 20,
                        "epochs": 2,
                        "tune_epochs": [1],
                        "batch_size": 20,
                        "val_threshold": 0.7,
                    }
                },
                "tune": {"trials": 2},
                "grid": {
                    "datasets": ["catvnoncat"],
                    "methods": ["baseline", "sklearn_mlp"],
                    "depths": [1, 3],
                    "seeds": [0, 1],
                },
                "lambda_sweep": {"variants": [], "depths": []},
                "recurrent": {"datasets": []},
            }
        )
    )
    configs = ["--configfile", "config/sklearn_mlp.yaml", "config/tiny.yaml"]
    targets = ["results/aggregate/run_summary.parquet", "results/tune/chosen.parquet"]
    done = snakemake(project, "--cores", "2", *configs, "--", *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (project / "results/logs/sklearn_mlp/catvnoncat/sklearn_mlp.log").exists()
    assert not (project / "results/logs/train/catvnoncat/sklearn_mlp.log").exists()
    summary = pd.read_parquet(project / "results/aggregate/run_summary.parquet")
    assert sorted(set(zip(summary.method, summary.depth, summary.seed))) == [
        (m, d, s) for m in ("baseline", "sklearn_mlp") for d in (1, 3) for s in (0, 1)
    ]
    assert summary[summary.method == "sklearn_mlp"].test_accuracy.between(0, 1).all()
    assert pd.read_parquet(project / "results/tune/chosen.parquet").method.unique().tolist() == ["baseline"]
    digests = summary.pivot_table(index=["depth", "seed"], columns="method", values="split_sha256", aggfunc="first")
    assert (digests.sklearn_mlp == digests.baseline).all()  # each seed's own split, the generic rule's
    assert digests.baseline.nunique() == 2  # one split per seed, the same at every depth

    official = project / "results/runs/catvnoncat/sklearn_mlp/depth1/seed0/run.json"
    record = json.loads(official.read_text())
    official.write_text(json.dumps({**record, "split": {"protocol": "official", "seed": 0}}))
    run_files = sorted(p for p in (project / "results/runs").rglob("*") if p.is_file())
    again = snakemake(project, "--cores", "2", *configs, "--", targets[0])
    assert again.returncode != 0 and "Traceback" not in again.stderr
    lines = [line for line in again.stderr.splitlines() if "contract error" in line]
    assert len(lines) == 1 and lines[0].startswith(
        "error in rule aggregate: contract error in results/runs/catvnoncat/sklearn_mlp/depth1/seed0/run.json: its "
        "dataset is split per seed but the run's 'split' is 'official'"
    )
    assert sorted(p for p in (project / "results/runs").rglob("*") if p.is_file()) == run_files  # nothing removed
    official.write_text(json.dumps(record))

    broken = "results/runs/catvnoncat/sklearn_mlp/depth3/seed1/epochs.parquet"
    pd.read_parquet(project / broken).drop(columns="val_accuracy").to_parquet(project / broken, index=False)
    again = snakemake(project, "--cores", "2", *configs, "--", targets[0])
    assert again.returncode != 0
    lines = [line for line in again.stderr.splitlines() if "contract error" in line]
    assert lines == [
        f"error in rule aggregate: contract error in {broken}: column 'val_accuracy' is missing "
        "(log: results/logs/aggregate/aggregate.log)"
    ]


def test_lint_reports_only_the_conda_and_container_lint():
    """`snakemake --lint` (its CLI prints text even when asked for JSON): every finding is the per-rule
    'Specify a conda environment or container' lint; no conda registry is reachable here to test environments."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    titles = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.startswith("    * ")]
    assert titles, done.stderr[-2000:]
    assert set(titles) == {"* Specify a conda environment or container for each rule.:"}, titles
