"""Snakemake script of rule `tune_summary`: the chosen hyperparameters as one table."""
import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.tune import summarize  # noqa: E402

summarize(list(snakemake.input), snakemake.output[0])
