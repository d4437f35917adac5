"""The SLURM profile: Snakemake parses it and plans the quick grid as cluster jobs (a dry run submits nothing,
so no sbatch is needed), with each rule's resources as the profile sets them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
import yte

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow" / "profiles" / "slurm"


def project_copy(tmp_path: Path) -> Path:
    """The sources without results/, so the dry run plans every job and never touches the checkout."""
    dest = tmp_path / "project"
    shutil.copytree(
        ROOT,
        dest,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "results", ".snakemake", "__pycache__", ".pytest_cache", "*.egg-info"
        ),
    )
    return dest


def planned_resources(stdout: str) -> dict[str, list[dict[str, str]]]:
    """rule -> the resources of each of its planned jobs, from the dry run's job listing."""
    jobs: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in stdout.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):", line):
            rule = match.group(1)
        elif rule and line.strip().startswith("resources:"):
            pairs = (item.split("=", 1) for item in line.split(":", 1)[1].split(", "))
            jobs.setdefault(rule, []).append({k.strip(): v.strip() for k, v in pairs})
            rule = None
    return jobs


def quick_config() -> dict:
    """config.yaml with quick.yaml merged over it, one level deep where both hold a mapping (as Snakemake does)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((ROOT / "config" / "quick.yaml").read_text()).items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    return config


def test_dry_run_plans_the_quick_grid_as_slurm_jobs(tmp_path):
    env = {**os.environ, "COVBENCH_SLURM_PARTITION": "short", "COVBENCH_SLURM_ACCOUNT": "proj42"}
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--profile",
            "workflow/profiles/slurm",
            "--configfile",
            "config/quick.yaml",
        ],
        cwd=project_copy(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = planned_resources(dry.stdout)
    grid = quick_config()["grid"]
    assert len(jobs["train"]) == len(grid["datasets"]) * len(grid["methods"])  # one job per (dataset, method)
    for rule, resources in jobs.items():
        for job in resources:
            assert job["slurm_partition"] == "short" and job["slurm_account"] == "proj42", rule
            assert job["cpus_per_task"] == "1", rule  # the rules' threads (train.threads: 1)
    assert {(j["mem_mb"], j["runtime"]) for j in jobs["train"]} == {("4000", "180")}
    assert {(j["mem_mb"], j["runtime"]) for j in jobs["paper"]} == {("2000", "20")}
    assert {(j["mem_mb"], j["runtime"]) for j in jobs["aggregate"]} == {("2000", "30")}


def test_partition_and_account_are_left_to_the_cluster_when_unset(monkeypatch):
    monkeypatch.delenv("COVBENCH_SLURM_PARTITION", raising=False)
    monkeypatch.delenv("COVBENCH_SLURM_ACCOUNT", raising=False)
    with open(PROFILE / "config.yaml") as f:
        profile = yte.process_yaml(f, require_use_yte=True)
    assert profile["executor"] == "slurm"
    assert "slurm_partition" not in profile["default-resources"]
    assert "slurm_account" not in profile["default-resources"]
    assert profile["retries"] >= 1 and profile["rerun-incomplete"] is True


def test_dry_run_plans_the_full_scale_config_as_slurm_jobs(tmp_path):
    """config/full.yaml (all 50k MNIST images, 30 epochs, 10 seeds) plans through the SLURM profile: one train job
    per (dataset, method), every run of every seed, with a longer time limit given on the command line."""
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--profile",
            "workflow/profiles/slurm",
            "--configfile",
            "config/full.yaml",
            "--set-resources",
            "train:runtime=1440",
        ],
        cwd=project_copy(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = planned_resources(dry.stdout)
    config = quick_config()  # only for the method lists, which full.yaml keeps
    full = yaml.safe_load((ROOT / "config" / "full.yaml").read_text())
    assert len(jobs["train"]) == len(config["grid"]["datasets"]) * len(config["grid"]["methods"])
    assert len(jobs["train_recurrent"]) == len(config["recurrent"]["methods"])
    assert {j["runtime"] for j in jobs["train"]} == {"1440"}
    seeds = full["grid"]["seeds"]
    assert len(seeds) == 10 and f"seed{seeds[-1]}/run.json" in dry.stdout
