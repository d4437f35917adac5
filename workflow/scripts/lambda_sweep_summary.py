"""Snakemake script of rule `lambda_sweep_summary`: the sweep's cells as one table, and per cell the best lambda
on validation against lambda = 0 (difference, interval, Holm-adjusted tests, verdict)."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.analysis.sweep import collect  # noqa: E402
from covbench.jobs import reported  # noqa: E402

with reported(snakemake):
    collect(list(snakemake.input), snakemake.output.runs, snakemake.output.summary, snakemake.params.settings)
