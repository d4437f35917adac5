"""Snakemake script of rule `compare`: covariance variants vs the other methods -> comparisons table, and every
remedy's eligibility with each cell's best remedy."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.analysis.compare import run  # noqa: E402
from covbench.jobs import reported  # noqa: E402

with reported(snakemake):
    run(
        snakemake.input.run_summary,
        snakemake.input.chosen,
        snakemake.output.comparisons,
        snakemake.output.remedies,
        snakemake.params.specs,
        snakemake.params.settings,
        split_protocols=snakemake.params.split_protocols,
    )
