"""Snakemake script of rule `compare`: covariance variants vs the other methods -> comparisons table (four verdicts)."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.analysis.compare import run  # noqa: E402
from covbench.jobs import reported  # noqa: E402

with reported(snakemake):
    run(
        snakemake.input[0],
        snakemake.output[0],
        snakemake.params.specs,
        snakemake.params.settings,
        split_protocols=snakemake.params.split_protocols,
    )
