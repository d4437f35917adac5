"""Snakemake script of rule `nielsen_train`: all seeds of one of Nielsen's networks -> per-layer speeds."""

import sys

sys.stderr = open(snakemake.log[0], "w")
from pathlib import Path  # noqa: E402

from covbench.data.datasets import fetch  # noqa: E402
from covbench.jobs import reported  # noqa: E402
from covbench.training.nielsen import run  # noqa: E402

with reported(snakemake):
    for path in map(Path, snakemake.input):  # a raw file failing its SHA256 is fetched again first
        fetch(path.name, path.parent, mirror=snakemake.config["data"]["mirror"])
    run(
        dict(snakemake.input.items()),
        snakemake.output[0],
        snakemake.params.settings,
        int(snakemake.wildcards.hidden_layers),
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
