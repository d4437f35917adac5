"""Snakemake script of rule `tune`: equal-budget hyperparameter trials of one (dataset, method, depth)."""
import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.tune import run  # noqa: E402

w = snakemake.wildcards
run(snakemake.input.data, snakemake.output[0], w.dataset, w.method, snakemake.params.spec, snakemake.params.hp,
    int(w.depth), snakemake.params.tune, threads=snakemake.threads, device=snakemake.params.device)
