"""A (dataset, method) job in one process: the tuning record it writes is the one its training used, trials are
equal in number for every method, an interrupted job resumes without tuning again, and a kept record or a kept
depth is reused only under the same settings and data."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from covbench.data import datasets as data
from covbench.training import job, tune
from covbench.training.settings import JobSettings

TUNE = {
    "trials": 3,
    "seed": 1000,
    "eta": 2,
    "lr": {"sgd": [0.01, 1.0], "adam": [0.001, 0.1]},
    "cov_lambda": [0.1, 10.0],
    "aux_weight": [0.03, 3.0],
    "rung_epochs": [1, 2],
}


def _job(splits, spec, hp, tmp_path, seeds=(0, 1)):
    """A job of one depth (2) -> its tuning record and its runs' run.json."""
    data = tmp_path / "data.pt"
    torch.save(splits, data)
    tune_path = tmp_path / "tune" / "depth2.json"
    out_dirs = [str(tmp_path / "runs" / f"seed{s}") for s in seeds]
    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=(2,), seeds=tuple(seeds))
    job.run_job(settings, job.JobFiles(str(data), [str(tune_path)], [out_dirs]))
    return json.loads(tune_path.read_text()), [json.loads((Path(d) / "run.json").read_text()) for d in out_dirs]


def test_training_uses_the_tuned_choice(spec, hp, splits, tmp_path):
    spec["aux"] = "covariance"
    record, runs = _job(splits, spec, hp, tmp_path)
    assert len(record["trials"]) == TUNE["trials"] and record["budget"] == TUNE["trials"]
    assert record["chosen"] in [{"lr": t["lr"], "cov_lambda": t["cov_lambda"]} for t in record["trials"]]
    assert record["selected_on"] == "best_val_loss"
    finalists = [t for t in record["trials"] if t["rung"] == 2 and not t["diverged"]]
    assert len(finalists) == 2 and record["val_loss"] == min(t["val_loss"] for t in finalists)
    for run in runs:
        assert run["hyperparameters"]["lr"] == record["chosen"]["lr"]
        assert run["method_spec"]["cov_lambda"] == record["chosen"]["cov_lambda"]
    assert not (tmp_path / "runs" / "seed0" / "tune.json").exists()  # the kept copy goes when the depth is done


def test_every_method_gets_the_same_learning_rates(spec):
    plain = tune.trial_grid(spec, TUNE)
    with_lambda = tune.trial_grid({**spec, "aux": "covariance"}, TUNE)
    assert [t["lr"] for t in plain] == [t["lr"] for t in with_lambda] == pytest.approx([0.01, 0.1, 1.0])
    assert sorted(t["cov_lambda"] for t in with_lambda) == pytest.approx([0.1, 1.0, 10.0])
    assert tune.trial_grid({**spec, "aux": "covariance", "cov_lambda": 2.0}, TUNE) == plain  # fixed, not tuned


def test_interrupted_job_does_not_tune_again(spec, hp, splits, tmp_path, monkeypatch):
    real_train_seeds = job.train_seeds

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(job, "train_seeds", killed)
    with pytest.raises(KeyboardInterrupt):
        _job(splits, spec, hp, tmp_path)
    assert (tmp_path / "runs" / "seed0" / "tune.json").exists()

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again")

    monkeypatch.setattr(job, "train_seeds", real_train_seeds)
    monkeypatch.setattr(job.tune, "select", no_tuning)
    record, runs = _job(splits, spec, hp, tmp_path)
    assert all(run["hyperparameters"]["lr"] == record["chosen"]["lr"] for run in runs)


def test_a_job_interrupted_at_a_later_depth_keeps_the_depths_it_finished(spec, hp, splits, tmp_path, monkeypatch):
    data = tmp_path / "data.pt"
    torch.save(splits, data)
    depths, seeds = [1, 2], [0, 1]
    tune_paths = [str(tmp_path / "tune" / f"depth{d}.json") for d in depths]
    out_dirs = [[str(tmp_path / "runs" / f"depth{d}" / f"seed{s}") for s in seeds] for d in depths]

    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=tuple(depths), seeds=tuple(seeds))

    def run_job():
        job.run_job(settings, job.JobFiles(str(data), tune_paths, out_dirs))

    real_run, calls = job.run_depth, []

    def killed_at_depth_2(*args, **kwargs):
        calls.append(args[1])
        if args[1] == 2:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(job, "run_depth", killed_at_depth_2)
    with pytest.raises(KeyboardInterrupt):
        run_job()
    finished = (Path(out_dirs[0][0]) / "run.json").read_text()
    for paths in (tune_paths[:1], [Path(d) / name for d in out_dirs[0] for name in job.RUN_FILES]):
        for path in paths:  # as Snakemake does with a failed job's outputs
            Path(path).unlink()
    calls.clear()
    monkeypatch.setattr(job, "run_depth", lambda *args, **kwargs: calls.append(args[1]) or real_run(*args, **kwargs))
    run_job()
    assert calls == [2]  # depth 1 was restored, not trained again
    assert (Path(out_dirs[0][0]) / "run.json").read_text() == finished
    assert all((Path(d) / name).exists() for dirs in out_dirs for d in dirs for name in job.RUN_FILES)
    assert not any((tmp_path / "runs" / f"depth{d}" / "kept").exists() for d in depths)  # gone once all are done


def test_a_kept_tuning_record_is_reused_only_on_the_same_tuning_splits(spec, hp, tmp_path, monkeypatch, mirror):
    """An interrupted cat/not-cat job keeps its tuning record; the rerun reuses it with the same split_seed, and
    tunes again when split_seed moved every tuning split (a stale record would choose on other data)."""
    path = data.prepare("catvnoncat", mirror, tmp_path / "cat.pt")
    tuning = {**TUNE, "trials": 2, "rung_epochs": [1], "splits": 2}
    out_dirs = [str(tmp_path / "runs" / "seed0")]
    real_select, tuned_on = job.tune.select, []

    def counted(*args, **kwargs):
        tuned_on.append([record["sha256"] for record in kwargs["split_records"]])
        return real_select(*args, **kwargs)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(job.tune, "select", counted)
    monkeypatch.setattr(job, "train_seeds", killed)
    for split_seed in (0, 0, 1):
        settings = JobSettings(
            "catvnoncat", "m", spec, hp, tuning, depths=(2,), seeds=(0,), split="per_seed", split_seed=split_seed
        )
        with pytest.raises(KeyboardInterrupt):
            job.run_job(settings, job.JobFiles(str(path), [str(tmp_path / "tune.json")], [out_dirs]))
        assert (Path(out_dirs[0]) / "tune.json").exists()
    assert len(tuned_on) == 2 and not set(tuned_on[0]) & set(tuned_on[1])
    assert json.loads((tmp_path / "tune.json").read_text())["tuning_splits"][0]["sha256"] == tuned_on[1][0]


# What a depth's key holds: every setting that changes what is computed, and only those.
CHANGES_WHAT_IS_COMPUTED = {
    "dataset": "other",
    "method": "other",
    "spec": {"activation": "tanh"},
    "hp": {"lr": 0.5},
    "tune": {"trials": 4},
    "seeds": (0, 1, 2),
    "split": "per_seed",
    "split_seed": 1,
    "track": "recurrent",
    "sequence_seed": 3,
    "probes": {"seeds": [0]},
}
CHANGES_ONLY_HOW_FAST = {"threads": 2, "device": "cuda", "checkpoint_every_s": 0.0}


def test_every_setting_that_changes_the_data_or_the_model_changes_the_key(spec, hp):
    """So a kept tuning record, a kept depth and a checkpoint are never reused after such a change; threads, device
    and the checkpoint interval are not in it, so a rerun with more threads resumes."""
    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=(2,), seeds=(0, 1))
    key = settings.key(2, None, [[{"sha256": "a"}], [{"sha256": "b"}]])
    for name, value in CHANGES_WHAT_IS_COMPUTED.items():
        changed = dataclasses.replace(settings, **{name: value})
        assert changed.key(2, None, [[{"sha256": "a"}], [{"sha256": "b"}]]) != key, name
    for name, value in CHANGES_ONLY_HOW_FAST.items():
        same = dataclasses.replace(settings, **{name: value})
        assert same.key(2, None, [[{"sha256": "a"}], [{"sha256": "b"}]]) == key, name
    assert settings.key(4, None, [[{"sha256": "a"}], [{"sha256": "b"}]]) != key
    assert settings.key(2, {"trials": [{"lr": 0.1}]}, [[{"sha256": "a"}], [{"sha256": "b"}]]) != key
    assert settings.key(2, None, [[{"sha256": "c"}], [{"sha256": "b"}]]) != key
    assert set(CHANGES_WHAT_IS_COMPUTED) | set(CHANGES_ONLY_HOW_FAST) == {
        field.name for field in dataclasses.fields(JobSettings)
    } - {"depths"}  # the key names its own depth


def test_the_settings_are_read_from_the_config_as_the_rules_read_it(config):
    """The MLP job of cat/not-cat and the recurrent track's job of the same method, from the default config."""
    mlp = JobSettings.from_config(config, "catvnoncat", "relu_he")
    assert mlp.depths == tuple(config["grid"]["depths"]) and mlp.seeds == tuple(config["grid"]["seeds"])
    assert mlp.split == config["datasets"]["catvnoncat"]["split"] and mlp.sequence_seed is None
    assert mlp.probes == config["probes"] and mlp.tune["rung_epochs"] == config["datasets"]["catvnoncat"]["tune_epochs"]
    recurrent = JobSettings.from_config(
        config, config["recurrent"]["datasets"][0], config["recurrent"]["methods"][0], "recurrent"
    )
    assert recurrent.depths == tuple(config["recurrent"]["lengths"]) and recurrent.probes is None
    assert recurrent.split == "official" and recurrent.sequence_seed == config["data"]["split_seed"]
    assert (mlp.track, recurrent.track) == ("mlp", "recurrent")
    with pytest.raises(ValueError, match="unknown track"):
        JobSettings.from_config(config, "mnist", "relu_he", "cnn")
