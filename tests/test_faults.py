"""Fault injection: every file the pipeline reads back is damaged (truncated, a byte flipped), a write meets a full
disk, a training process is killed; the same command run again recovers, and the results equal an undisturbed run."""

import dataclasses
import errno
import json
import os
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_workflow import project_copy, snakemake

from covbench import atomic
from covbench.data import datasets as data
from covbench.training import job
from covbench.training import state as run_state
from covbench.training.settings import JobSettings
from covbench.training.state import Checkpoint
from covbench.training.train import train

TUNE = {
    "trials": 2,
    "seed": 1000,
    "eta": 2,
    "lr": {"sgd": [0.01, 1.0], "adam": [0.001, 0.1]},
    "cov_lambda": [0.1, 10.0],
    "aux_weight": [0.03, 3.0],
    "rung_epochs": [1],
}
RAW = "train_catvnoncat.h5"


def truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def flip_byte(path: Path, at: float = 0.5) -> None:
    content = bytearray(path.read_bytes())
    content[int(len(content) * at)] ^= 0xFF
    path.write_bytes(content)


def full_disk_for(monkeypatch, name_part: str) -> list[str]:
    """Writes of files whose name holds name_part fail as on a full disk; returns the temporary files tried."""
    real_write, tried = atomic._write, []

    def write(out, chunk):
        if name_part in Path(out.name).name:
            tried.append(out.name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(out, chunk)

    monkeypatch.setattr(atomic, "_write", write)
    return tried


def run_files(out_dirs) -> dict:
    """Everything a run wrote, minus the wall-clock times."""
    files = {}
    for out_dir in map(Path, out_dirs):
        for name in ("epochs", "layer_stats", "probes"):
            frame = pd.read_parquet(out_dir / f"{name}.parquet")
            files[out_dir.name, name] = frame.drop(columns=[c for c in ("wall_s",) if c in frame])
        record = json.loads((out_dir / "run.json").read_text())
        files[out_dir.name, "run.json"] = {k: v for k, v in record.items() if k not in ("wall_s", "probe_wall_s")}
    return files


def assert_same_runs(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], pd.DataFrame):
            pd.testing.assert_frame_equal(a[key], b[key], check_exact=True, obj=str(key))
        else:
            assert a[key] == b[key], key


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(f"*{atomic.PART_SUFFIX}"))


# --- raw files and prepared tensors ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [truncate, flip_byte])
def test_a_damaged_raw_file_is_fetched_again_by_prepare(tmp_path, damage, capsys, mirror):
    clean = data.prepare("catvnoncat", tmp_path / "clean_raw", tmp_path / "clean.pt", train_size=40, mirror=mirror)
    raw = tmp_path / "raw"
    data.download("catvnoncat", raw, mirror=mirror)
    damage(raw / RAW)
    made = data.prepare("catvnoncat", raw, tmp_path / "cat.pt", train_size=40, mirror=mirror)
    assert data.sha256_of(raw / RAW) == data.RAW_FILES[RAW].sha256
    expected, got = data.load_splits(clean), data.load_splits(made)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert f"{raw / RAW} fails its SHA256 check" in capsys.readouterr().err
    assert leftovers(raw) == []


@pytest.mark.parametrize("damage", [truncate, flip_byte])
def test_damaged_prepared_tensors_are_prepared_again_by_the_job_that_reads_them(tmp_path, config, damage, mirror):
    path = tmp_path / "data" / "catvnoncat.pt"
    config = {**config, "data": {**config["data"], "mirror": str(mirror)}}
    data.remake(config, "catvnoncat", path)
    expected = {k: v.clone() for k, v in data.load_splits(path).items()}
    modified = path.stat().st_mtime_ns
    damage(path)
    os.utime(path, ns=(modified, modified))
    with pytest.raises(atomic.Corrupt, match="rerun the same command") as caught:  # a reader that cannot remake it
        data.load_splits(path)
    assert "\n" not in str(caught.value) and not path.exists()
    data.remake(config, "catvnoncat", path)
    damage(path)
    os.utime(path, ns=(modified, modified))
    splits = data.load_splits(path, remake=partial(data.remake, config, "catvnoncat", path))  # the train job
    assert all(torch.equal(expected[k], splits[k]) for k in expected)
    assert path.stat().st_mtime_ns == modified  # the same tensors: the jobs they fed stay up to date


def test_a_local_disk_error_during_a_download_is_not_retried(tmp_path, monkeypatch):
    spec = data.RAW_FILES["t10k-labels-idx1-ubyte.gz"]
    sleeps, opened = [], []
    monkeypatch.setattr(data.time, "sleep", sleeps.append)
    monkeypatch.setattr(
        data.urllib.request,
        "urlopen",
        lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(AssertionError("retried against the internet")),
    )
    source = tmp_path / "mirror"
    source.mkdir()
    (source / spec.name).write_bytes(b"\0" * spec.size)
    tried = full_disk_for(monkeypatch, spec.name)
    with pytest.raises(atomic.DiskFull) as caught:
        data.fetch(spec.name, tmp_path / "raw", mirror=source)
    message = str(caught.value)
    assert tried and sleeps == [] and opened == []
    assert "\n" not in message and str((tmp_path / "raw").resolve()) in message
    assert f"needs {atomic.size_text(spec.size)}" in message
    assert leftovers(tmp_path / "raw") == []


def test_a_missing_mirror_directory_says_so(tmp_path, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.setitem(data.RAW_FILES, name, dataclasses.replace(data.RAW_FILES[name], urls=("http://127.0.0.1:9/x",)))
    monkeypatch.setattr(data.time, "sleep", lambda s: None)
    with pytest.raises(data.DataError) as caught:
        data.fetch(name, tmp_path / "raw", mirror=tmp_path / "no_such_mirror")
    assert str(caught.value).startswith(f"the data.mirror directory {tmp_path / 'no_such_mirror'} does not exist")


# --- checkpoints and tuning records -------------------------------------------------------------------------


def _killed_after_checkpoint(splits, spec, hp, checkpoint, monkeypatch):
    """Train with a checkpoint every epoch and die after the first is written, as a killed job would."""
    real_save = run_state.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_state, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0))
    monkeypatch.setattr(run_state, "save_checkpoint", real_save)


@pytest.mark.parametrize("damage", [truncate, flip_byte, lambda path: path.write_bytes(b"")])
def test_a_damaged_checkpoint_is_removed_and_training_starts_over(
    splits, spec, hp, tmp_path, monkeypatch, damage, capsys, one_thread
):
    undisturbed = train(splits, spec, hp, 2, [0, 1])
    checkpoint = tmp_path / "checkpoint.pt"
    _killed_after_checkpoint(splits, spec, hp, checkpoint, monkeypatch)
    damage(checkpoint)
    (tmp_path / f".checkpoint.pt.x1y2{atomic.PART_SUFFIX}").write_bytes(b"half a save")  # killed mid-save
    again = train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0))
    pd.testing.assert_frame_equal(again.epochs.drop(columns="wall_s"), undisturbed.epochs.drop(columns="wall_s"))
    pd.testing.assert_frame_equal(again.layer_stats, undisturbed.layer_stats)
    assert (again.test_accuracy == undisturbed.test_accuracy).all()
    assert f"checkpoint {checkpoint} failed verification" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_a_full_disk_during_a_checkpoint_save_is_a_warning_and_training_goes_on(
    splits, spec, hp, tmp_path, monkeypatch, capsys, one_thread
):
    undisturbed = train(splits, spec, hp, 2, [0, 1])
    tried = full_disk_for(monkeypatch, "checkpoint.pt")
    checkpoint = tmp_path / "checkpoint.pt"
    result = train(splits, spec, hp, 2, [0, 1], checkpoint=Checkpoint(checkpoint, every_s=0))
    assert tried and not checkpoint.exists() and leftovers(tmp_path) == []
    pd.testing.assert_frame_equal(result.epochs.drop(columns="wall_s"), undisturbed.epochs.drop(columns="wall_s"))
    warning = [line for line in capsys.readouterr().err.splitlines() if "checkpoint not saved" in line]
    assert warning and f"disk full: writing {checkpoint} needs" in warning[0]
    assert str(tmp_path.resolve()) in warning[0] and "free" in warning[0]


def _job(splits, spec, hp, root: Path, data_path: Path):
    """A job of one depth (2), checkpointing every epoch -> its runs' folders."""
    out_dirs = [str(root / "runs" / f"seed{s}") for s in (0, 1)]
    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=(2,), seeds=(0, 1), checkpoint_every_s=0)
    job.run_job(settings, job.JobFiles(str(data_path), [str(root / "tune" / "depth2.json")], [out_dirs]))
    return out_dirs


def test_a_truncated_tuning_record_kept_beside_the_checkpoint_is_tuned_again(splits, spec, hp, tmp_path, monkeypatch):
    data_path = tmp_path / "data.pt"
    torch.save(splits, data_path)
    undisturbed = run_files(_job(splits, spec, hp, tmp_path / "a", data_path))
    monkeypatch.setattr(job, "train_seeds", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # killed after tuning: its record is kept beside the checkpoint
        _job(splits, spec, hp, tmp_path / "b", data_path)
    monkeypatch.undo()
    kept = tmp_path / "b" / "runs" / "seed0" / "tune.json"
    truncate(kept)
    assert_same_runs(run_files(_job(splits, spec, hp, tmp_path / "b", data_path)), undisturbed)
    assert not kept.exists()


def test_a_full_disk_while_writing_run_files_is_one_line_and_the_rerun_completes(
    splits, spec, hp, tmp_path, monkeypatch
):
    data_path = tmp_path / "data.pt"
    torch.save(splits, data_path)
    undisturbed = run_files(_job(splits, spec, hp, tmp_path / "a", data_path))
    tried = full_disk_for(monkeypatch, "layer_stats.parquet")
    with pytest.raises(atomic.DiskFull) as caught:
        _job(splits, spec, hp, tmp_path / "b", data_path)
    message, folder = str(caught.value), (tmp_path / "b" / "runs" / "seed0").resolve()
    assert tried and "\n" not in message and message.startswith("disk full: writing")
    assert f"in {folder} (" in message and "rerun the same command" in message
    assert leftovers(tmp_path / "b") == []
    monkeypatch.undo()  # space freed
    assert_same_runs(run_files(_job(splits, spec, hp, tmp_path / "b", data_path)), undisturbed)


def test_damaged_kept_files_of_a_finished_depth_are_trained_again(splits, spec, hp, tmp_path, monkeypatch):
    data_path = tmp_path / "data.pt"
    torch.save(splits, data_path)
    depths, seeds = [1, 2], [0, 1]

    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=tuple(depths), seeds=tuple(seeds))

    def run_job(root):
        tune_paths = [str(root / "tune" / f"depth{d}.json") for d in depths]
        out_dirs = [[str(root / "runs" / f"depth{d}" / f"seed{s}") for s in seeds] for d in depths]
        job.run_job(settings, job.JobFiles(str(data_path), tune_paths, out_dirs))
        return [d for dirs in out_dirs for d in dirs]

    undisturbed = run_files(run_job(tmp_path / "a"))
    real_run = job.run_depth
    monkeypatch.setattr(
        job, "run_depth", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()) if a[1] == 2 else real_run(*a, **k)
    )
    with pytest.raises(KeyboardInterrupt):
        run_job(tmp_path / "b")
    monkeypatch.undo()
    flip_byte(tmp_path / "b" / "runs" / "depth1" / "kept" / "seed1" / "epochs.parquet")
    assert_same_runs(run_files(run_job(tmp_path / "b")), undisturbed)


# --- a killed training process ------------------------------------------------------------------------------

KILLED_JOB = """
import sys, time
from covbench.training import job, state
from covbench.training.settings import JobSettings
real_save = state.save_checkpoint
def save_then_hang(checkpoint, path):  # a long job: killed while it trains on
    real_save(checkpoint, path)
    print("saved", checkpoint["epoch"], flush=True)
    time.sleep(600)
state.save_checkpoint = save_then_hang
settings, files = eval(sys.argv[1])
job.run_job(JobSettings(**settings), job.JobFiles(**files))
"""


def test_a_training_process_killed_mid_run_resumes_on_the_rerun(splits, spec, hp, tmp_path, monkeypatch):
    data_path = tmp_path / "data.pt"
    torch.save(splits, data_path)
    hp = {**hp, "epochs": 3}

    settings = JobSettings("toy", "m", spec, hp, TUNE, depths=(2,), seeds=(0, 1), checkpoint_every_s=0)

    def files(root):
        run_dirs = [[str(root / "runs" / "depth2" / f"seed{s}") for s in (0, 1)]]
        return job.JobFiles(str(data_path), [str(root / "tune" / "depth2.json")], run_dirs)

    undisturbed = files(tmp_path / "a")
    job.run_job(settings, undisturbed)
    killed = files(tmp_path / "b")
    killed_args = (dataclasses.asdict(settings), dataclasses.asdict(killed))
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_JOB, repr(killed_args)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert process.stdout.readline().split() == ["saved", "1"]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    checkpoint = tmp_path / "b" / "runs" / "depth2" / "seed0" / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    resumed_at, real_load = [], atomic.load_torch

    def load(path, *args, **kwargs):
        state = real_load(path, *args, **kwargs)
        if Path(path) == checkpoint:
            resumed_at.append(state["epoch"])
        return state

    monkeypatch.setattr(atomic, "load_torch", load)
    monkeypatch.setattr(job.tune, "select", lambda *a, **k: pytest.fail("tuned again"))
    job.run_job(settings, killed)
    assert resumed_at == [1]
    assert_same_runs(run_files(killed.run_dirs[0]), run_files(undisturbed.run_dirs[0]))
    assert not checkpoint.exists()


# --- the same faults through Snakemake ----------------------------------------------------------------------


def test_snakemake_reruns_recover_from_a_corrupt_run_file_and_a_corrupt_raw_file(tmp_path, mirror):
    """A corrupt run file stops `aggregate` with one line on the terminal; the same command run again trains that
    job again and gives the same summary, fetching a damaged raw file again on the way (rule `prepare`)."""
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
                        "epochs": 1,
                        "tune_epochs": [1],
                        "batch_size": 20,
                        "val_threshold": 0.7,
                    }
                },
                "probes": {"train_size": 20, "val_size": 20},
                "tune": {"trials": 2},
                "grid": {"datasets": ["catvnoncat"], "methods": ["baseline"], "depths": [2], "seeds": [0, 1]},
                "lambda_sweep": {"variants": [], "depths": []},
                "recurrent": {"datasets": []},
            }
        )
    )
    summary = "results/aggregate/run_summary.parquet"

    def run(*targets):
        return snakemake(project, "--cores", "2", "--configfile", "config/tiny.yaml", "--", *targets, timeout=600)

    first = run(summary)
    assert first.returncode == 0, first.stderr[-3000:]
    expected = pd.read_parquet(project / summary).drop(columns="wall_s")

    damaged = project / "results/runs/catvnoncat/baseline/depth2/seed1/epochs.parquet"
    flip_byte(damaged, 0.3)
    stopped = run(summary)
    assert stopped.returncode != 0
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("error in rule aggregate:")]
    assert (
        len(lines) == 1
        and "results/runs/catvnoncat/baseline/depth2/seed1/epochs.parquet failed verification" in lines[0]
        and "rerun the same command" in lines[0]
    ), stopped.stderr[-3000:]
    assert not damaged.exists()

    prepared = project / "results/data/catvnoncat.pt"
    tensors = data.load_splits(prepared)
    truncate(project / "results/data/raw" / RAW)  # and a raw file damaged, its prepared tensors gone
    prepared.unlink()
    again = run(summary)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"results/data/raw/{RAW} fails its SHA256 check" in again.stderr  # fetched again by `prepare`
    assert all(torch.equal(tensors[k], data.load_splits(prepared)[k]) for k in tensors)
    pd.testing.assert_frame_equal(pd.read_parquet(project / summary).drop(columns="wall_s"), expected)


# A call that writes a file by path, other than through covbench.atomic. A line that hands the write to atomic
# (`atomic.write_with(path, lambda out: fig.savefig(out, ...))`) names atomic and is not one.
DIRECT_WRITE = re.compile(
    r"\.to_parquet\(|\.to_csv\(|\.savefig\(|\.write_text\(|\.write_bytes\(|json\.dump\(|torch\.save\(|"
    r"open\([^)]*[\"'](w|a|x)[b+]*[\"']"
)
# Writers that stay outside atomic, each with why: a job's log is appended as the job runs and read by a person; the
# bundle streams archives far larger than memory into a .part file it renames itself.
NOT_READ_BACK_OR_OWN_RENAME = {
    ("jobs.py", 'sys.stderr = open(snakemake.log[0], "w")'),
    ("bundle.py", 'with open(partial, "w+b") as out:'),
    ("bundle.py", 'with open(destination, "wb") as out:'),
}


def direct_writes(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if DIRECT_WRITE.search(line) and "atomic." not in line:
                if (path.name, line.strip()) not in NOT_READ_BACK_OR_OWN_RENAME:
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_every_file_the_package_writes_goes_through_atomic():
    assert direct_writes(Path(atomic.__file__).parent) == []


def test_a_direct_write_is_found(tmp_path):
    (tmp_path / "writer.py").write_text('frame.to_parquet("x.parquet")\nfig.savefig(path, dpi=200)\n')
    assert direct_writes(tmp_path) == [
        'writer.py:1: frame.to_parquet("x.parquet")',
        "writer.py:2: fig.savefig(path, dpi=200)",
    ]
