"""Snakemake script of rule `aggregate`: every run's files -> the summary tables."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.analysis.aggregate import write_tables  # noqa: E402
from covbench.jobs import reported  # noqa: E402

with reported(snakemake):
    write_tables(
        snakemake.input.run,
        snakemake.input.epochs,
        snakemake.input.layer_stats,
        snakemake.input.probes,
        snakemake.params.thresholds,
        dict(snakemake.output.items()),
        per_seed_datasets=snakemake.params.per_seed_datasets,
    )
