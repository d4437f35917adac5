"""Snakemake script of rule `nielsen_train`: all seeds of one of Nielsen's networks -> per-layer speeds."""
import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.nielsen import run  # noqa: E402

run(dict(snakemake.input.items()), snakemake.output[0], snakemake.params.settings,
    int(snakemake.wildcards.hidden_layers), threads=snakemake.threads, device=snakemake.params.device)
