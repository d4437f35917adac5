"""Snakemake script of rule `course_table`: accuracies -> median and range per network beside the course's (parquet
and LaTeX)."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.course import write_table  # noqa: E402

with reported(snakemake):
    write_table(snakemake.input[0], snakemake.output.summary, snakemake.output.tex)
