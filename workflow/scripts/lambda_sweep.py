"""Snakemake script of rule `lambda_sweep`: one (dataset, covariance variant, depth), every lambda x seed at the
base's tuned learning rate, as one batched model -> a tidy parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.lambda_sweep import run  # noqa: E402
from covbench.training.settings import JobSettings  # noqa: E402

with reported(snakemake):
    p = snakemake.params
    settings = JobSettings(**{**p.settings, "threads": snakemake.threads})
    run(
        settings,
        int(snakemake.wildcards.depth),
        p.base,
        p.lambdas,
        snakemake.input.data,
        snakemake.input.tuned,
        snakemake.output[0],
    )
