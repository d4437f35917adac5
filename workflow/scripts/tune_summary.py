"""Snakemake script of rule `tune_summary`: the chosen hyperparameters as one table, and the lambda profiles."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.tune import summarize  # noqa: E402

with reported(snakemake):
    summarize(list(snakemake.input), snakemake.output.chosen, snakemake.output.profile)
