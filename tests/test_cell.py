"""A grid cell in one process: the tuning record it writes is the one its training used, trials are equal in
number for every method, and an interrupted cell resumes without tuning again."""

import json
from pathlib import Path

import pytest
import torch

from covbench.data import datasets as data
from covbench.training import cell, tune

TUNE = {
    "trials": 3,
    "seed": 1000,
    "eta": 2,
    "lr": {"sgd": [0.01, 1.0], "adam": [0.001, 0.1]},
    "cov_lambda": [0.1, 10.0],
    "aux_weight": [0.03, 3.0],
    "rung_epochs": [1, 2],
}


def _cell(splits, spec, hp, tmp_path, seeds=(0, 1)):
    data = tmp_path / "data.pt"
    torch.save(splits, data)
    tune_path = tmp_path / "tune" / "depth2.json"
    out_dirs = [str(tmp_path / "runs" / f"seed{s}") for s in seeds]
    cell.run(str(data), str(tune_path), out_dirs, "toy", "m", spec, hp, 2, TUNE, list(seeds))
    return json.loads(tune_path.read_text()), [json.loads((Path(d) / "run.json").read_text()) for d in out_dirs]


def test_training_uses_the_tuned_choice(spec, hp, splits, tmp_path):
    spec["aux"] = "covariance"
    record, runs = _cell(splits, spec, hp, tmp_path)
    assert len(record["trials"]) == TUNE["trials"] and record["budget"] == TUNE["trials"]
    assert record["chosen"] in [{"lr": t["lr"], "cov_lambda": t["cov_lambda"]} for t in record["trials"]]
    assert record["selected_on"] == "best_val_loss"
    finalists = [t for t in record["trials"] if t["rung"] == 2 and not t["diverged"]]
    assert len(finalists) == 2 and record["val_loss"] == min(t["val_loss"] for t in finalists)
    for run in runs:
        assert run["hyperparameters"]["lr"] == record["chosen"]["lr"]
        assert run["method_spec"]["cov_lambda"] == record["chosen"]["cov_lambda"]
    assert not (tmp_path / "runs" / "seed0" / "tune.json").exists()  # the kept copy goes when the cell is done


def test_every_method_gets_the_same_learning_rates(spec):
    plain = tune.trial_grid(spec, TUNE)
    with_lambda = tune.trial_grid({**spec, "aux": "covariance"}, TUNE)
    assert [t["lr"] for t in plain] == [t["lr"] for t in with_lambda] == pytest.approx([0.01, 0.1, 1.0])
    assert sorted(t["cov_lambda"] for t in with_lambda) == pytest.approx([0.1, 1.0, 10.0])
    assert tune.trial_grid({**spec, "aux": "covariance", "cov_lambda": 2.0}, TUNE) == plain  # fixed, not tuned


def test_interrupted_cell_does_not_tune_again(spec, hp, splits, tmp_path, monkeypatch):
    real_train_run = cell.train.run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cell.train, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        _cell(splits, spec, hp, tmp_path)
    assert (tmp_path / "runs" / "seed0" / "tune.json").exists()

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again")

    monkeypatch.setattr(cell.train, "run", real_train_run)
    monkeypatch.setattr(cell.tune, "select", no_tuning)
    record, runs = _cell(splits, spec, hp, tmp_path)
    assert all(run["hyperparameters"]["lr"] == record["chosen"]["lr"] for run in runs)


def test_a_job_interrupted_at_a_later_depth_keeps_the_depths_it_finished(spec, hp, splits, tmp_path, monkeypatch):
    data = tmp_path / "data.pt"
    torch.save(splits, data)
    depths, seeds = [1, 2], [0, 1]
    tune_paths = [str(tmp_path / "tune" / f"depth{d}.json") for d in depths]
    out_dirs = [[str(tmp_path / "runs" / f"depth{d}" / f"seed{s}") for s in seeds] for d in depths]

    def job():
        cell.run_depths(str(data), tune_paths, out_dirs, "toy", "m", spec, hp, depths, TUNE, seeds)

    real_run, calls = cell.run, []

    def killed_at_depth_2(*args, **kwargs):
        calls.append(args[7])
        if args[7] == 2:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(cell, "run", killed_at_depth_2)
    with pytest.raises(KeyboardInterrupt):
        job()
    finished = (Path(out_dirs[0][0]) / "run.json").read_text()
    for paths in (tune_paths[:1], [Path(d) / name for d in out_dirs[0] for name in cell.RUN_FILES]):
        for path in paths:  # as Snakemake does with a failed job's outputs
            Path(path).unlink()
    calls.clear()
    monkeypatch.setattr(cell, "run", lambda *args, **kwargs: calls.append(args[7]) or real_run(*args, **kwargs))
    job()
    assert calls == [2]  # depth 1 was restored, not trained again
    assert (Path(out_dirs[0][0]) / "run.json").read_text() == finished
    assert all((Path(d) / name).exists() for dirs in out_dirs for d in dirs for name in cell.RUN_FILES)
    assert not any((tmp_path / "runs" / f"depth{d}" / "kept").exists() for d in depths)  # gone once all are done


def test_a_kept_tuning_record_is_reused_only_on_the_same_tuning_splits(spec, hp, tmp_path, monkeypatch, mirror):
    """An interrupted cat/not-cat cell keeps its tuning record; the rerun reuses it with the same split_seed, and
    tunes again when split_seed moved every tuning split (a stale record would choose on other data)."""
    path = data.prepare("catvnoncat", mirror, tmp_path / "cat.pt")
    settings = {**TUNE, "trials": 2, "rung_epochs": [1], "splits": 2}
    out_dirs = [str(tmp_path / "runs" / "seed0")]
    real_select, tuned_on = cell.tune.select, []

    def counted(*args, **kwargs):
        tuned_on.append([record["sha256"] for record in kwargs["split_records"]])
        return real_select(*args, **kwargs)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cell.tune, "select", counted)
    monkeypatch.setattr(cell.train, "run", killed)
    for split_seed in (0, 0, 1):
        with pytest.raises(KeyboardInterrupt):
            cell.run_depths(
                str(path),
                [str(tmp_path / "tune.json")],
                [out_dirs],
                "catvnoncat",
                "m",
                spec,
                hp,
                [2],
                settings,
                [0],
                split="per_seed",
                split_seed=split_seed,
            )
        assert (Path(out_dirs[0]) / "tune.json").exists()
    assert len(tuned_on) == 2 and not set(tuned_on[0]) & set(tuned_on[1])
    assert json.loads((tmp_path / "tune.json").read_text())["tuning_splits"][0]["sha256"] == tuned_on[1][0]
