"""Snakemake script of rule `prepare`: raw files -> train/validation/test tensors."""
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.data import prepare  # noqa: E402

prepare(snakemake.wildcards.dataset, Path(snakemake.input[0]).parent, snakemake.output[0],
        seed=snakemake.params.seed, **snakemake.params.sizes)
