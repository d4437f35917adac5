"""One cell of the grid, a (dataset, method, depth), in one process: tune, then train every seed with the choice.

Tuning and training share the process so that a cell pays Python's and torch's start-up and the data load
(about 3.5 s) once, not twice: as two jobs, the 140 cells of the default grid spent about 8 of its 62 minutes
on 2 cores starting processes (BENCHMARKS.md). The tuning record is kept beside the training checkpoint until
the cell is done, so an interrupted cell resumes its training without tuning again.
"""
import json
from pathlib import Path

import torch

from covbench import train, tune


def run(data_path: str, tune_path: str, out_dirs: list[str], dataset: str, method: str, spec: dict, hp: dict,
        depth: int, tune_settings: dict, seeds: list[int], threads: int = 1, device: str = "cpu",
        checkpoint_every_s: float = 60.0, probe_settings: dict | None = None) -> None:
    """Write the tuning record to tune_path, then each seed's run files to its out_dir (DESIGN section 5)."""
    train.configure_process(threads)
    splits = torch.load(data_path, weights_only=True)
    kept = Path(out_dirs[0]) / "tune.json"
    key = json.dumps([spec, hp, depth, tune_settings], sort_keys=True)
    if kept.exists() and json.loads(kept.read_text())["key"] == key:
        record = json.loads(kept.read_text())["record"]
    else:
        record = {"dataset": dataset, "method": method, "depth": depth,
                  **tune.select(splits, spec, hp, depth, tune_settings, device)}
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({"key": key, "record": record}))
    Path(tune_path).parent.mkdir(parents=True, exist_ok=True)
    Path(tune_path).write_text(json.dumps(record, indent=2))
    spec, hp = tune.apply_choice(spec, hp, record["chosen"])
    train.run(splits, out_dirs, dataset, method, spec, hp, depth, seeds, threads=threads, device=device,
              checkpoint_every_s=checkpoint_every_s, probe_settings=probe_settings)
    kept.unlink()
