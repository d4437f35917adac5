"""Snakemake script of rule `sklearn_mlp`: every depth and seed of one (dataset, method) with scikit-learn's
MLPClassifier."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.settings import JobSettings  # noqa: E402
from covbench.training.sklearn_mlp import run  # noqa: E402

p = snakemake.params
settings = JobSettings(**p.settings)
seeds_per_depth = len(settings.seeds)
run_dirs = [path.rsplit("/", 1)[0] for path in snakemake.output.run]  # depth-major, seeds within a depth
with reported(snakemake):
    run(
        settings,
        p.options,
        snakemake.input.data,
        [run_dirs[i : i + seeds_per_depth] for i in range(0, len(run_dirs), seeds_per_depth)],
    )
