"""Snakemake script of rule `download`: fetch and verify one raw file."""
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.data import DataError, fetch  # noqa: E402

out = Path(snakemake.output[0])
try:
    fetch(out.name, out.parent, mirror=snakemake.params.mirror)
except DataError as error:  # one line on the terminal too, not only in the log
    print(error, file=sys.stderr)
    print(error, file=sys.__stderr__)
    sys.exit(1)
