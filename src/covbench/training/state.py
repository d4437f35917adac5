"""A run's state: what it sets up once and only reads (Setup), what training changes (TrainState), and their
checkpoint: what is saved, how a run resumes from it, and how successive halving keeps the surviving trials."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from covbench import atomic
from covbench.models import MLP, RNN

CHECKPOINT_KEYS = (
    "key",
    "epoch",
    "wall_s",
    "alive",
    "params",
    "bufs",
    "buffers",
    "initial_weights",
    "gen_states",
    "noise_states",
    "stat_blocks",
    "epoch_rows",
    "best",
    "best_val_loss",
    "best_epoch",
)


@dataclass
class Setup:
    """What a run sets up once and then only reads: the model and its data, the method's parts, the schedule."""

    model: MLP | RNN
    splits: dict[str, torch.Tensor]  # on the device, standardized and in the first layer's span where the method asks
    spec: dict  # the method spec, METHOD_DEFAULTS filled in
    hp: dict
    device: torch.device
    decayed: list[bool]  # per parameter: weight decay applies (weights, not biases or norm parameters)
    optimizer: object  # components "optimizer": init_state, step
    aux: object  # components "aux": extra loss terms and gradient forces
    loss_fn: Callable
    lr: float | list[float]  # one value, or one per model
    stat_layers: list[int]  # the rows of the per-layer statistics: hidden layers, or logged time steps
    n_train: int
    steps_per_epoch: int
    total_steps: int  # of hp["epochs"], whatever until_epoch says: the schedules read step / total_steps
    key: str  # the checkpoint's key: a run resumes only from its own
    seeds: list[int]  # one per model


@dataclass
class TrainState:
    """Everything training changes (the model's buffers and noise generators aside, which live in the model):
    what `state_of` saves in a checkpoint and `restore` puts back."""

    params: list[torch.Tensor]  # the model's parameters themselves, not copies
    bufs: list[torch.Tensor]  # momentum buffers, or Adam's moments and step count
    initial_weights: list[torch.Tensor]  # the hidden layers' weights at init (weight drift)
    generators: list[torch.Generator]  # each model's data order
    alive: torch.Tensor  # (M,) bool: the loss has stayed finite
    best: list[torch.Tensor]  # each model's best checkpoint: parameters, then the model's buffers
    best_val_loss: torch.Tensor  # (M,) host
    best_epoch: torch.Tensor  # (M,) host
    stat_blocks: list = field(default_factory=list)  # per epoch: [steps, epoch, statistics (T, M, L, S), alive (T, M)]
    epoch_rows: list = field(default_factory=list)  # per epoch: [epoch, wall_s, outcome (M, 5)]
    probe_frames: list = field(default_factory=list)  # per probe: {column: tensor}
    epoch: int = 0  # epochs done
    wall_s: float = 0.0  # training time so far, resumed runs included


@dataclass(frozen=True)
class Checkpoint:
    """Where a run saves its state and how often: at the end of an epoch once every_s seconds have passed since the
    last save (0: every epoch; why not always: `save_checkpoint`). `key` says what the run was made with beyond its
    own spec, hyperparameters, depth and seeds (a job's JobSettings.key): a run resumes only from its own."""

    path: Path
    every_s: float = 60.0
    key: str = ""


def checkpoint_key(spec, hp, depth, seeds, n_train, key) -> str:
    return json.dumps([spec, hp, depth, seeds, n_train, key], sort_keys=True)


def state_of(setup: Setup, state: TrainState) -> dict:
    """Everything a continuation needs, on the CPU: the checkpoint's content, and a RunResult's `state`."""
    return {
        "key": setup.key,
        "epoch": state.epoch,
        "wall_s": state.wall_s,
        "alive": state.alive.cpu(),
        "params": [p.detach().cpu() for p in state.params],
        "bufs": [b.cpu() for b in state.bufs],
        "buffers": [b.cpu() for b in setup.model.buffers()],
        "initial_weights": [w.cpu() for w in state.initial_weights],
        "gen_states": [g.get_state() for g in state.generators],
        "noise_states": [g.get_state() for g in setup.model.generators],
        "stat_blocks": state.stat_blocks,
        "epoch_rows": state.epoch_rows,
        "probe_frames": state.probe_frames,
        "best": [t.cpu() for t in state.best],
        "best_val_loss": state.best_val_loss.clone(),
        "best_epoch": state.best_epoch.clone(),
    }


def resume_from_checkpoint(checkpoint: Path | None, key: str, start: dict | None) -> dict | None:
    """The state to continue from: the checkpoint's where it reads back whole and was made with this key, else
    `start` (None: train from init)."""
    if checkpoint is None:
        return start
    atomic.remove_leftovers(checkpoint)
    if not checkpoint.exists():
        return start
    try:
        saved = atomic.load_torch(checkpoint, required=CHECKPOINT_KEYS)
    except atomic.Corrupt as error:  # killed mid-save by an older version, a disk error, ...: start over
        atomic.warn(
            f"checkpoint {checkpoint} failed verification ({error.reason}): removed, training from "
            f"{'the start' if start is None else 'the given state'}"
        )
        return start
    return saved if saved["key"] == key else start


def restore(setup: Setup, state: TrainState, saved: dict) -> None:
    """Put a saved state (state_of's dict) back into the model and `state`."""
    model = setup.model
    with torch.no_grad():
        for dst, src in zip(
            state.params + state.bufs + model.buffers() + state.initial_weights,
            saved["params"] + saved["bufs"] + saved["buffers"] + saved["initial_weights"],
        ):
            dst.copy_(src)
    for g, s in zip(state.generators + model.generators, saved["gen_states"] + saved["noise_states"], strict=True):
        g.set_state(s)
    state.alive.copy_(saved["alive"])
    state.epoch, state.wall_s = saved["epoch"], saved["wall_s"]
    state.stat_blocks, state.epoch_rows = list(saved["stat_blocks"]), list(saved["epoch_rows"])
    state.probe_frames = list(saved.get("probe_frames", []))
    with torch.no_grad():
        for dst, src in zip(state.best, saved["best"]):
            dst.copy_(src)
    state.best_val_loss, state.best_epoch = saved["best_val_loss"].clone(), saved["best_epoch"].clone()


def select_models(state: dict, keep: list[int]) -> dict:
    """A RunResult's `state` reduced to the models `keep` (in that order), history included: successive halving
    continues only the trials that survive a rung. Shared scalars (Adam's step count) are kept as they are, and so
    is an empty list of noise generator states (an activation that draws nothing)."""
    index = torch.tensor(keep)

    def pick(t):
        return t.index_select(0, index) if t.dim() else t

    def per_model(states):
        return [states[m] for m in keep] if states else states

    return {
        **state,
        "alive": pick(state["alive"]),
        "gen_states": per_model(state["gen_states"]),
        "noise_states": per_model(state["noise_states"]),
        **{name: [pick(t) for t in state[name]] for name in ("params", "bufs", "buffers", "initial_weights", "best")},
        "best_val_loss": pick(state["best_val_loss"]),
        "best_epoch": pick(state["best_epoch"]),
        "epoch_rows": [[epoch, wall_s, outcome[index]] for epoch, wall_s, outcome in state["epoch_rows"]],
        "stat_blocks": [
            [steps, epoch, block[:, index], alive[:, index]] for steps, epoch, block, alive in state["stat_blocks"]
        ],
    }


def save_checkpoint(state: dict, path: Path) -> None:
    """Written beside, then renamed (covbench.atomic): a job killed while saving leaves the previous checkpoint
    intact. A checkpoint is insurance, so a failed save (a full disk) is a warning and training goes on. train saves
    every checkpoint_every_s seconds, not every epoch: that would write each model's parameters, momentum and
    initial weights dozens of times per job (gigabytes for the 12288-input cat/not-cat nets), which costs more than
    it protects."""
    try:
        atomic.save_torch(state, path)
    except atomic.StateError as error:
        atomic.warn(f"checkpoint not saved, training goes on without it: {error}")
