"""Snakemake script of rule `course_train`: the course's cat classifiers, every network and seed -> one tidy table."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from pathlib import Path  # noqa: E402

from covbench.data.datasets import fetch  # noqa: E402
from covbench.jobs import reported  # noqa: E402
from covbench.training.course import run  # noqa: E402

with reported(snakemake):
    for path in map(Path, snakemake.input):  # a raw file failing its SHA256 is fetched again first
        fetch(path.name, path.parent, mirror=snakemake.config["data"]["mirror"])
    run(dict(snakemake.input.items()), snakemake.output[0], snakemake.params.settings, threads=snakemake.threads)
