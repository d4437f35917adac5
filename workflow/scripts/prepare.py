"""Snakemake script of rule `prepare`: raw files -> train/validation/test tensors."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.data.datasets import prepare  # noqa: E402
from covbench.jobs import reported  # noqa: E402

with reported(snakemake):  # a raw file failing its SHA256 is fetched again from data.mirror or the canonical URLs
    prepare(
        snakemake.wildcards.dataset,
        Path(snakemake.input[0]).parent,
        snakemake.output[0],
        seed=snakemake.params.seed,
        mirror=snakemake.config["data"]["mirror"],
        **snakemake.params.sizes,
    )
