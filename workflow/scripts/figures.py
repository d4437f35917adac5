"""Snakemake script of the figure_<name> rules: summary tables -> one figure as PDF and PNG."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.draw import make  # noqa: E402

with reported(snakemake):
    make(
        snakemake.params.figure,
        dict(snakemake.input.items()),
        snakemake.output.pdf,
        snakemake.output.png,
        snakemake.params.methods,
        **snakemake.params.options,
    )
