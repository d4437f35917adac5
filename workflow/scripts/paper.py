"""Snakemake script of rule `paper`: latexmk paper/main.tex -> results/paper/main.pdf."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.jobs import reported  # noqa: E402
from covbench.report.paper import build  # noqa: E402

with reported(snakemake):  # a missing latexmk is one line on the terminal, not only in the log
    # \input{tables/...} and figures/... resolve against results/, the folder above paper/macros.tex
    build(snakemake.input.tex, str(Path(snakemake.input.macros).parents[1]), snakemake.output[0])
