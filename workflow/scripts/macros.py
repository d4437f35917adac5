"""Snakemake script of rule `macros`: every number and verdict of the paper as a LaTeX macro."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.paper import write_macros  # noqa: E402

with reported(snakemake):
    write_macros(
        snakemake.params.config,
        snakemake.input.run_summary,
        snakemake.input.method_summary,
        snakemake.input.comparisons,
        snakemake.input.chosen,
        snakemake.params.figure_rules,
        snakemake.output[0],
        sweep_summary_path=snakemake.input.sweep_summary,
        layer_summary_path=snakemake.input.layer_summary,
        probe_summary_path=snakemake.input.probe_summary,
        lambda_profile_path=snakemake.input.lambda_profile,
        course_summary_path=snakemake.input.course_summary,
    )
