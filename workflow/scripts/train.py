"""Snakemake script of rules `train` and `train_recurrent`: every depth of one (dataset, method), each tuned, then
trained with its choice for all seeds."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from functools import partial  # noqa: E402

from covbench.data import datasets as data  # noqa: E402
from covbench.jobs import reported  # noqa: E402
from covbench.training.job import JobFiles, run_job  # noqa: E402
from covbench.training.settings import JobSettings  # noqa: E402

w = snakemake.wildcards
settings = JobSettings(**{**snakemake.params.settings, "threads": snakemake.threads})  # as many as Snakemake gave
seeds_per_depth = len(settings.seeds)
run_dirs = [path.rsplit("/", 1)[0] for path in snakemake.output.run]  # depth-major, seeds within a depth
files = JobFiles(
    data=snakemake.input.data,
    tuned=list(snakemake.output.tuned),
    run_dirs=[run_dirs[i : i + seeds_per_depth] for i in range(0, len(run_dirs), seeds_per_depth)],
    base_tuned=list(snakemake.input.base_tuned),
)
with reported(snakemake):
    # prepared tensors failing verification are prepared again here
    run_job(settings, files, remake_data=partial(data.remake, snakemake.config, w.dataset, snakemake.input.data))
