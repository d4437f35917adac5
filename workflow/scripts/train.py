"""Snakemake script of rule `train`: all seeds of one (dataset, method, depth), with the tuned hyperparameters."""
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
from covbench.train import run  # noqa: E402
from covbench.tune import apply_choice  # noqa: E402

w = snakemake.wildcards
spec, hp = apply_choice(snakemake.params.spec, snakemake.params.hp, snakemake.input.chosen)
run(snakemake.input.data, [str(Path(p).parent) for p in snakemake.output.run], w.dataset, w.method, spec, hp,
    int(w.depth), snakemake.params.seeds, threads=snakemake.threads, device=snakemake.params.device,
    checkpoint_every_s=snakemake.params.checkpoint_every_s)
