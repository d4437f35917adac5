"""Snakemake script of rule `train`: tune one (dataset, method, depth), then train all its seeds with the choice."""
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.cell import run  # noqa: E402

w = snakemake.wildcards
p = snakemake.params
run(snakemake.input.data, snakemake.output.tuned, [str(Path(path).parent) for path in snakemake.output.run],
    w.dataset, w.method, p.spec, p.hp, int(w.depth), p.tune, p.seeds, threads=snakemake.threads, device=p.device,
    checkpoint_every_s=p.checkpoint_every_s, probe_settings=p.probes)
