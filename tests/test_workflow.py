"""The DAG: the default grid as a dry run, a method added through config alone, and the quick config end to end."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from covbench.report import legibility
from covbench.report.paper import latex_problems
from covbench.tools import bundle

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the sources (no results), so a test run never touches the checkout's results/."""
    dest = tmp_path / "project"
    shutil.copytree(
        ROOT,
        dest,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "results", ".snakemake", "__pycache__", ".pytest_cache", "*.egg-info"
        ),
    )
    return dest


def snakemake(cwd: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_dry_run_lists_every_run_of_the_default_grid(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    grid, sweep = config["grid"], config["lambda_sweep"]
    dry = snakemake(project_copy(tmp_path), "-n", "--cores", "2")
    assert dry.returncode == 0, dry.stderr[-2000:]
    for dataset in grid["datasets"]:  # covariance's best shot: one lambda_sweep job per (dataset, variant, depth)
        for variant in sweep["variants"]:
            for depth in sweep["depths"]:
                assert f"results/sweep/{dataset}/{variant}/depth{depth}.parquet" in dry.stdout
    for dataset in grid["datasets"]:
        for method in grid["methods"]:
            for depth in grid["depths"]:
                for seed in grid["seeds"]:
                    assert f"results/runs/{dataset}/{method}/depth{depth}/seed{seed}/run.json" in dry.stdout


def test_unknown_method_stops_with_one_line(tmp_path):
    done = snakemake(ROOT, "-n", "--cores", "1", "--config", 'grid={"methods": ["baseline", "bogus"]}')
    assert done.returncode != 0
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "config error" in line]
    assert errors == [
        "config error at 'grid.methods': unknown method 'bogus'; defined under 'methods': "
        + ", ".join(sorted(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["methods"]))
    ]


def test_new_method_through_config_alone(tmp_path, mirror):
    """A method composed of existing components is one config entry: it tunes and trains through the DAG."""
    project = project_copy(tmp_path)
    (project / "config" / "extra.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {"mirror": str(mirror)},
                "methods": {
                    "tanh_he_clip_covariance": {
                        "activation": "tanh",
                        "init": "he",
                        "grad_clip": 0.5,
                        "aux": "covariance",
                    }
                },
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
                    "methods": ["tanh_he_clip_covariance"],
                    "depths": [3],
                    "seeds": [0, 1],
                },
                "lambda_sweep": {"variants": [], "depths": []},  # its base is not in this grid: nothing to sweep
                "recurrent": {"datasets": []},  # no recurrent track
            }
        )
    )
    target = "results/runs/catvnoncat/tanh_he_clip_covariance/depth3/seed1/run.json"
    done = snakemake(
        project, "--cores", "2", "--configfile", "config/extra.yaml", "--", target, "results/tune/chosen.parquet"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((project / target).read_text())
    assert record["method_spec"]["activation"] == "tanh" and record["method_spec"]["grad_clip"] == 0.5
    chosen = pd.read_parquet(project / "results/tune/chosen.parquet")
    assert chosen.trials.tolist() == [2] and chosen.cov_lambda.notna().all()
    assert record["hyperparameters"]["lr"] == chosen.lr.iloc[0]
    assert record["method_spec"]["cov_lambda"] == chosen.cov_lambda.iloc[0]
    stats = pd.read_parquet(project / target.replace("run.json", "layer_stats.parquet"))
    assert sorted(stats.layer.unique()) == [1, 2, 3]


needs_latex = pytest.mark.skipif(
    shutil.which("latexmk") is None and os.environ.get("CI") != "true",
    reason="latexmk not installed (make latex, or see README); CI installs it and runs this test",
)


def quick(mirror: Path) -> list[str]:
    """The quick config's snakemake arguments, reading the raw files from the mirror."""
    return ["--cores", "2", "--configfile", "config/quick.yaml", "--config", f'data={{"mirror": "{mirror}"}}']


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory, mirror) -> Path:
    """The quick config built end to end once, in a copy of the sources; the tests below read it."""
    project = project_copy(tmp_path_factory.mktemp("quick"))
    done = snakemake(project, *quick(mirror))
    assert done.returncode == 0, done.stderr[-4000:]
    return project


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@needs_latex
def test_quick_config_builds_the_paper_and_report(quick_build, mirror):
    project = quick_build
    pdf = project / "results" / "paper" / "main.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    if shutil.which("pdfinfo"):  # poppler-utils comes with the LaTeX packages of `make latex`
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 5
    log = (project / "results" / "paper" / "main.log").read_text(errors="replace")
    assert latex_problems(log) == []  # no '??', no undefined citation, nothing in the margin
    if shutil.which("pdftotext") or os.environ.get("CI") == "true":  # readable in one sitting, as printed
        assert legibility.abstract_words(pdf) <= legibility.MAX_ABSTRACT_WORDS
        assert max(legibility.small_words_per_page(pdf)) <= legibility.MAX_SMALL_WORDS
        assert legibility.problems(pdf) == []
    report = snakemake(project, *quick(mirror), "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (project / "results" / "report.html").stat().st_size > 10_000
    # Nothing is recomputed on a second invocation.
    again = snakemake(project, "-n", *quick(mirror))
    assert "Nothing to be done" in again.stdout + again.stderr


@needs_latex
@pytest.mark.skipif(
    shutil.which("pdftotext") is None and os.environ.get("CI") != "true",
    reason="pdftotext not installed (poppler-utils, make latex)",
)
def test_the_bundle_route_rebuilds_the_paper_in_a_fresh_copy_without_training(quick_build, tmp_path, mirror):
    """The reviewers' route (make all BUNDLE=...): bundle the quick build, then in a fresh copy of the sources with
    no results and no .snakemake records, `covbench.tools.bundle rebuild` plans no data, tuning or training job and ends
    with a paper whose text is the first build's."""
    made = snakemake(quick_build, *quick(mirror), "--", "results/bundle.tar.gz")
    assert made.returncode == 0, made.stderr[-3000:]
    assert set(bundle.job_stats(made.stderr + made.stdout)) <= {"bundle"}  # the build was complete: nothing retrained
    fresh = project_copy(tmp_path)
    now = time.time()  # as in a fresh clone, every source file is newer than the bundled outputs
    for path in fresh.rglob("*"):
        os.utime(path, (now, now))
    route = subprocess.run(
        [
            sys.executable,
            "-m",
            "covbench.tools.bundle",
            "rebuild",
            str(quick_build / "results/bundle.tar.gz"),
            "--cores",
            "2",
        ],
        cwd=fresh,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert route.returncode == 0, route.stdout[-2000:] + route.stderr[-3000:]
    ran = bundle.job_stats(route.stdout + route.stderr)
    manifest = json.loads((fresh / bundle.MANIFEST_COPY).read_text())
    assert "paper" in ran and not set(ran) & {*manifest["training_rules"], *bundle.DATA_RULES}, ran
    assert not (fresh / "results" / "data").exists()  # no data was needed
    assert pdf_text(fresh / "results/paper/main.pdf") == pdf_text(quick_build / "results/paper/main.pdf")
