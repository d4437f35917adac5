"""Snakemake script of rule `nielsen_figure`: speeds -> speed per layer over epochs, one panel per network."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.nielsen import write_figure  # noqa: E402

with reported(snakemake):
    write_figure(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
