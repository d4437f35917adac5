"""One job's settings, read from the config once: what a (dataset, method) job of either track tunes and trains
with. The rule passes the record to its script, the tools build the same record, and `key` says what a depth's
outputs were made with, for the tuning record kept beside a checkpoint, a finished depth's kept files and the
checkpoint itself (docs/design.md#the-files).

    settings = JobSettings.from_config(config, "catvnoncat", "relu_he")
    settings.key(depth=4, base=None, data=[tuning_records, split_records])
"""

import json
from dataclasses import asdict, dataclass, field

from covbench.config import hyperparameters, method_spec, tune_settings

TRACKS = ("mlp", "recurrent")
# Left out of a depth's key: what changes how fast a job runs, not what it computes, so a rerun on more threads or
# with another checkpoint interval resumes; and the job's other depths (the key names its own).
NOT_IN_KEY = ("threads", "device", "checkpoint_every_s", "depths")


@dataclass(frozen=True)
class JobSettings:
    dataset: str
    method: str
    spec: dict  # the method's composition (covbench.config.method_spec)
    hp: dict  # the dataset's training hyperparameters (covbench.config.hyperparameters)
    tune: dict = field(default_factory=dict)  # the dataset's tuning settings (covbench.config.tune_settings)
    depths: tuple[int, ...] = ()  # hidden layers, or the recurrent track's sequence lengths
    seeds: tuple[int, ...] = (0,)
    split: str = "official"  # the dataset's split protocol (covbench.data.splits)
    split_seed: int = 0
    track: str = "mlp"  # the MLP grid, or the recurrent track (depths are sequence lengths)
    sequence_seed: int | None = None  # the recurrent track's noise-padded rows (covbench.data.sequences)
    probes: dict | None = None  # linear probes (config `probes`); None: none
    threads: int = 1
    device: str = "cpu"
    checkpoint_every_s: float = 60.0

    @classmethod
    def from_config(cls, config: dict, dataset: str, method: str, track: str = "mlp") -> "JobSettings":
        """The settings of the job of `method` on `dataset` in `track` (the MLP grid, or the recurrent track, whose
        depths are sequence lengths, whose rows are drawn with data.split_seed and which takes no probes)."""
        if track not in TRACKS:
            raise ValueError(f"unknown track {track!r}; use one of {', '.join(TRACKS)}")
        recurrent = track == "recurrent"
        return cls(
            dataset=dataset,
            method=method,
            spec=method_spec(config, method, dataset),
            hp=hyperparameters(config, dataset),
            tune=tune_settings(config, dataset),
            depths=tuple(config["recurrent"]["lengths"] if recurrent else config["grid"]["depths"]),
            seeds=tuple(config["grid"]["seeds"]),
            split="official" if recurrent else config["datasets"][dataset].get("split", "official"),
            split_seed=config["data"]["split_seed"],
            track=track,
            sequence_seed=config["data"]["split_seed"] if recurrent else None,
            probes=None if recurrent else config["probes"],
            threads=config["train"]["threads"],
            device=config["train"]["device"],
            checkpoint_every_s=config["train"]["checkpoint_every_s"],
        )

    def key(self, depth: int, base: dict | None = None, data: object = None) -> str:
        """What one depth's outputs are made with: every setting that changes what is computed, the depth, the
        base's trials (nested tuning) and `data` (the records naming the splits it trains on). Kept outputs and
        checkpoints are reused only under the same key."""
        settings = {name: value for name, value in asdict(self).items() if name not in NOT_IN_KEY}
        return json.dumps([settings, depth, base and base["trials"], data], sort_keys=True)
