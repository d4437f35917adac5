"""Snakemake script of rule `train`: every depth of one (dataset, method), each tuned, then trained with its
choice for all seeds."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from functools import partial  # noqa: E402

from covbench.data import datasets as data  # noqa: E402
from covbench.jobs import reported  # noqa: E402
from covbench.training.cell import run_depths  # noqa: E402

w = snakemake.wildcards
p = snakemake.params
seeds_per_depth = len(p.seeds)
run_dirs = [path.rsplit("/", 1)[0] for path in snakemake.output.run]  # depth-major, seeds within a depth
with reported(snakemake):
    run_depths(
        snakemake.input.data,
        list(snakemake.output.tuned),
        [run_dirs[i : i + seeds_per_depth] for i in range(0, len(run_dirs), seeds_per_depth)],
        w.dataset,
        w.method,
        p.spec,
        p.hp,
        p.depths,
        p.tune,
        p.seeds,
        threads=snakemake.threads,
        device=p.device,
        checkpoint_every_s=p.checkpoint_every_s,
        probe_settings=p.probes,
        sequence_seed=p.sequence_seed,  # prepared tensors failing verification are prepared again here:
        remake_data=partial(data.remake, snakemake.config, w.dataset, snakemake.input.data),
        base_tune_paths=list(snakemake.input.base_tuned),
        split=p.split,
        split_seed=p.split_seed,
    )
