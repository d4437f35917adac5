"""Snakemake script of rule `nielsen_collect`: the networks' speeds -> one tidy table."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.nielsen import collect  # noqa: E402

with reported(snakemake):
    collect(list(snakemake.input), snakemake.output[0])
