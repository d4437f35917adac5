"""Snakemake script of rule `paper`: latexmk paper/main.tex -> results/paper/main.pdf."""
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.paper import LatexNotFound, build  # noqa: E402

try:
    # \input{tables/...} and figures/... resolve against results/, the folder above paper/macros.tex
    build(snakemake.input.tex, str(Path(snakemake.input.macros).parents[1]), snakemake.output[0])
except LatexNotFound as error:  # one line on the terminal, not only in the log
    print(error, file=sys.stderr)
    print(error, file=sys.__stderr__)
    sys.exit(1)
