"""Snakemake script of rule `lambda_sweep`: one (dataset, covariance variant, depth), every lambda x seed at the
base's tuned learning rate, as one batched model -> a tidy parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.lambda_sweep import run  # noqa: E402

with reported(snakemake):
    w = snakemake.wildcards
    p = snakemake.params
    run(
        snakemake.input.data,
        snakemake.input.tuned,
        snakemake.output[0],
        w.dataset,
        w.variant,
        p.base,
        p.spec,
        p.hp,
        int(w.depth),
        p.lambdas,
        p.seeds,
        threads=snakemake.threads,
        device=p.device,
        split=p.split,
        split_seed=p.split_seed,
    )
