"""Snakemake script of rule `bundle`: every output of the training rules, their logs and benchmarks -> one archive
with a manifest."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.tools.bundle import write_bundle  # noqa: E402

with reported(snakemake):
    write_bundle(list(snakemake.input), snakemake.output[0], snakemake.params.config, snakemake.params.training_rules)
