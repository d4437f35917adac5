"""Snakemake script of rule `sklearn_mlp`: every depth and seed of one (dataset, method) with scikit-learn's
MLPClassifier."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.training.sklearn_mlp import run  # noqa: E402

p = snakemake.params
run_dirs = [path.rsplit("/", 1)[0] for path in snakemake.output.run]  # depth-major, seeds within a depth
with reported(snakemake):
    run(
        snakemake.input.data,
        [run_dirs[i : i + len(p.seeds)] for i in range(0, len(run_dirs), len(p.seeds))],
        snakemake.wildcards.dataset,
        snakemake.wildcards.method,
        p.hp,
        p.options,
        p.depths,
        p.seeds,
        standardize_inputs=p.standardize_inputs,
        split=p.split,
        split_seed=p.split_seed,
    )
