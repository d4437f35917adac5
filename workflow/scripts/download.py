"""Snakemake script of rule `download`: fetch and verify one raw file."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.data.datasets import fetch  # noqa: E402
from covbench.jobs import reported  # noqa: E402

out = Path(snakemake.output[0])
with reported(snakemake):  # one line on the terminal too, not only in the log
    fetch(out.name, out.parent, mirror=snakemake.params.mirror)
