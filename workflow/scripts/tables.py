"""Snakemake script of rule `tables`: the paper's LaTeX tables."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.tables import write_tables  # noqa: E402

with reported(snakemake):
    write_tables(
        snakemake.input.method_summary,
        snakemake.input.comparisons,
        snakemake.input.chosen,
        snakemake.params.specs,
        snakemake.params.datasets,
        dict(snakemake.output.items()),
        rule=snakemake.rule,
        recurrent_specs=snakemake.params.recurrent_specs,
        recurrent_datasets=snakemake.params.recurrent_datasets,
    )
