"""Snakemake script of rule `nielsen_table`: speeds -> mean and spread at initialization (parquet and LaTeX)."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.nielsen import write_table  # noqa: E402

with reported(snakemake):
    write_table(snakemake.input[0], snakemake.output.summary, snakemake.output.tex)
