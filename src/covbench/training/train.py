"""Training: SGD or Adam on an in-memory tensor dataset, all seeds of a (dataset, method, depth) as one batched
model.

The loop itself knows no method: components come in through the model (activation, init, norm, residual),
the method spec (optimizer, grad_clip) and the aux interface (extra loss terms, gradient forces). Statistics are gathered
on the device at logging steps and copied to the host once per epoch; a run whose loss goes non-finite is
frozen and recorded as diverged while the other seeds go on.

`train` reads as its steps: set_up (a Setup it only reads, a TrainState it changes), resume_from_checkpoint and
restore, then each epoch train_epoch (train_step per batch), validate, keep_best, log_epoch, take_probes and the
checkpoint save (state_of, _save_checkpoint); after the last, score_on_test and result_of. `run` writes a run's files
(write_frames, run_record).
"""

import ctypes
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from covbench import atomic, components
from covbench.components.clipping import clip_grad_norm_
from covbench.config import METHOD_DEFAULTS
from covbench.data.splits import distinct_models, is_per_model, majority_rates
from covbench.models import LOSSES, MLP, RNN, build, forward, span, to_device
from covbench.models.rnn import LOGGED_STEPS, logged_steps
from covbench.training import probes, stats

# Evaluation runs in chunks of this many examples: 1000 keeps a chunk's activations in cache (10k x 5 models x
# 100 units is 20 MB a layer), 35 % faster at depth 32 than 10k chunks (0.61 s against 0.95 s per 10k images).
EVAL_CHUNK = 1_000
PROBE_COLUMNS = ["model", "epoch", "layer", "probe_accuracy"]
# A final training loss above this fraction of the class-prior entropy: collapsed, the network learned (next to)
# nothing. 0.9, not 0.98: on cat/not-cat a trial at 0.95 of the entropy predicts the majority class for nearly
# every image, and its validation loss, close to the prior's, beat every trial that learned.
COLLAPSED_FRACTION = 0.9
# glibc mallopt parameters and the values configure_process gives them
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
MALLOC_SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
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
RUN_JSON_KEYS = (
    "dataset",
    "method",
    "depth",
    "seed",
    "diverged",
    "test_accuracy",
    "last_test_accuracy",
    "best_epoch",
    "final_val_accuracy",
)


@dataclass
class RunResult:
    layer_stats: pd.DataFrame  # model, seed, step, epoch, layer, one column per statistic
    epochs: pd.DataFrame  # model, seed, epoch, train_loss, train_accuracy, val_loss, val_accuracy, wall_s, diverged
    test_accuracy: np.ndarray  # (M,) of the best checkpoint, once, after training (docs/design.md#best-checkpoint)
    last_test_accuracy: np.ndarray  # (M,) of the parameters after the last epoch (a diverged model: when it stopped)
    best_epoch: np.ndarray  # (M,) the epoch of the lowest validation loss (0: none finite, the initial weights)
    best_val_loss: np.ndarray  # (M,) that loss (inf: none finite)
    wall_s: float
    state: dict  # the end state (train's `start` continues from it)
    probes: pd.DataFrame  # model, epoch, layer, probe_accuracy (empty without a probe)


def configure_process(threads: int) -> dict:
    """Torch threads, subnormal floats flushed to zero, and glibc's allocator told to keep the memory a training
    step frees. -> the settings as they took, for run.json.

    Subnormals: with N(0,1) weights over 12,288 standardized inputs a sigmoid unit's pre-activation has a standard
    deviation near 110, so its derivative and the gradients behind it fall below float32's smallest normal
    (1.2e-38), and on x86 every subnormal operand takes a microcode slow path: a 9-layer sigmoid N(0,1) step on
    cat/not-cat took 26 ms instead of 2.3 ms (BENCHMARKS.md). Flushing turns every value below 1.2e-38 into 0 (and
    reads such inputs as 0); no statistic the grid logs comes near that (tests/test_train.py).

    Allocator: every step allocates and frees the same buffers, activation-sized (0.1 to 2 MB) and, on
    cat/not-cat, gradient-sized (8 trials x 12288 x 100 floats: 39 MB). By default glibc serves them from fresh
    mmap'd pages and trims the heap on free, so each step pays a page fault per 4 KiB touched: that made the
    depth-32 covariance force 5x slower (3.5 ms per call instead of 0.6 ms, BENCHMARKS.md). Raising the mmap
    threshold stops at glibc's 32 MB ceiling, which the 39 MB first-layer gradient of a cat/not-cat tuning rung
    is above (its backward matmul took 32 ms instead of 14 ms), so mmap is turned off: every block comes from
    the heap, which is never trimmed below 1 GiB. Other C libraries are left as they are.
    """
    flushed = torch.set_flush_denormal(True)  # before the thread pool starts; False where the CPU cannot (no SSE3)
    torch.set_num_threads(threads)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    malloc = glibc and all([ctypes.CDLL("libc.so.6").mallopt(option, value) == 1 for option, value in MALLOC_SETTINGS])
    return {"threads": threads, "flush_denormal": bool(flushed), "malloc_settings": bool(malloc)}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "config error at 'train.device': 'cuda' requested but torch sees no GPU; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def data_generators(seeds: list[int]) -> list[torch.Generator]:
    """The data order of seed s draws from 2s + 1 (initialization uses 2s)."""
    return [torch.Generator().manual_seed(2 * s + 1) for s in seeds]


def standardize(splits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Zero mean, unit variance with the train split's scalar statistics (what SELU assumes); per-model splits
    (covbench.data.splits) each with their own train part's."""
    x = splits["x_train"]
    if is_per_model(splits):
        dims = tuple(range(1, x.dim()))
        firsts, inverse = distinct_models(x)  # models on one split share its statistics
        mean, std = x[firsts].mean(dims, keepdim=True)[inverse], x[firsts].std(dims, keepdim=True)[inverse]
    else:
        mean, std = x.mean(), x.std()
    return {k: (v - mean) / std if k.startswith("x_") else v for k, v in splits.items()}


def batch_rows(x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mini-batches of every model, (M, B, ...) and (M, B), from index (M, B) into a shared split (x (n, ...),
    y (n,)) or per-model splits (x (M, n, ...), y (M, n)). index_select, not x[idx]: advanced indexing takes twice as
    long (BENCHMARKS.md)."""
    models, batch = index.shape
    if y.dim() == 2:  # row i of model m is row m * n + i of the models' splits laid end to end
        index = index + torch.arange(models, device=index.device).unsqueeze(1) * y.shape[1]
        x, y = x.reshape(-1, *x.shape[2:]), y.reshape(-1)
    flat = index.flatten()
    return x.index_select(0, flat).view(models, batch, *x.shape[1:]), y.index_select(0, flat).view(models, batch)


@torch.no_grad()
def evaluate(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(M,) mean loss and (M,) fraction correct, evaluation mode (running norm statistics, no aux heads); x, y
    shared ((n, ...), (n,)) or one split per model ((M, n, ...), (M, n))."""
    models = model.weights[0].shape[0]
    loss_sum = torch.zeros(models, device=x.device)
    correct = torch.zeros(models, device=x.device)
    count = y.shape[-1]
    for start in range(0, count, EVAL_CHUNK):
        chunk = slice(start, start + EVAL_CHUNK)
        if y.dim() == 2:
            logits, _ = forward(model, x[:, chunk], training=False)
            labels = y[:, chunk]
        else:
            logits, _ = forward(model, x[chunk], training=False)
            labels = y[chunk].expand(models, -1)
        loss_sum += loss_fn(logits, labels) * labels.shape[1]
        correct += (logits.argmax(-1) == labels).sum(1)
    return loss_sum / count, correct / count


@torch.no_grad()
def take_where(models: torch.Tensor, tensors: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """Copy the slices of the models marked in `models` (M,) from sources into tensors; the others are untouched.
    Restores the models that diverged during an epoch to their state at its start (so a diverged run is recorded
    as it was when it stopped), and keeps each model's best checkpoint."""
    for t, source in zip(tensors, sources):
        if t.dim():  # a shared scalar (Adam's step count) has no model dimension
            t.copy_(torch.where(models.view(-1, *([1] * (t.dim() - 1))), source, t))


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


def _checkpoint_key(spec, hp, depth, seeds, n_train, split_key) -> str:
    return json.dumps([spec, hp, depth, seeds, n_train, split_key], sort_keys=True)


def set_up(splits, spec, hp, depth, seeds, device, split_key) -> tuple[Setup, TrainState]:
    """The model built on its data, the method's components, and the state at init."""
    device = resolve_device(device)
    spec = {**METHOD_DEFAULTS, **spec}
    if spec["standardize_inputs"]:
        splits = standardize(splits)
    splits = {k: v.to(device) for k, v in splits.items()}
    x_train, n_train = splits["x_train"], splits["y_train"].shape[-1]
    classes = int(max(splits[k].max() for k in ("y_train", "y_val", "y_test") if k in splits)) + 1
    model = to_device(build(spec, x_train.shape[-1], hp["width"], depth, classes, seeds), device)
    if isinstance(model, MLP) and span.eligible(spec, hp, x_train.shape[-1], n_train, hp["width"]):
        splits = span.to_span(model, splits)  # the same training, the first layer in its inputs' span
        x_train = splits["x_train"]
    stat_layers = logged_steps(x_train.shape[1], LOGGED_STEPS) if isinstance(model, RNN) else list(range(1, depth + 1))
    params = model.parameters()
    for p in params:
        p.requires_grad_(True)
    decayed = [any(p is w for w in model.weights) for p in params]
    optimizer = components.get("optimizer", spec["optimizer"])
    bufs = optimizer.init_state(params)
    initial_weights = [w.detach().clone() for w in model.weights[:-1]]
    generators = data_generators(seeds)
    alive = torch.ones(len(seeds), dtype=torch.bool, device=device)
    lr = [float(v) for v in hp["lr"]] if isinstance(hp["lr"], list) else float(hp["lr"])
    aux = components.get("aux", spec["aux"])
    steps_per_epoch = math.ceil(n_train / hp["batch_size"])
    setup = Setup(
        model,
        splits,
        spec,
        hp,
        device,
        decayed,
        optimizer,
        aux,
        LOSSES[hp["loss"]],
        lr,
        stat_layers,
        n_train,
        steps_per_epoch,
        hp["epochs"] * steps_per_epoch,
        _checkpoint_key(spec, hp, depth, seeds, n_train, split_key),
    )
    best = [t.detach().clone() for t in params + model.buffers()]
    best_val_loss, best_epoch = torch.full((len(seeds),), math.inf), torch.zeros(len(seeds), dtype=torch.long)
    return setup, TrainState(params, bufs, initial_weights, generators, alive, best, best_val_loss, best_epoch)


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


def take_probes(setup: Setup, state: TrainState, probe, epochs_done: int) -> None:
    """Probe once per epoch count. Frames are kept as columns of tensors: a checkpoint loads with weights_only,
    which takes no frame."""
    if probe is not None and not any(int(f["epoch"][0]) == epochs_done for f in state.probe_frames):
        frame = probe(setup.model, setup.splits, epochs_done)
        state.probe_frames.append({column: torch.tensor(frame[column].to_numpy()) for column in frame})


def train_step(setup: Setup, state: TrainState, xb, yb, step: int, logging: bool):
    """One optimizer step of every model on its batch -> (loss (M,), correct (M, B), the step's per-layer
    statistics (M, L, S), None when the step is not logged)."""
    model, params = setup.model, state.params
    logits, acts = forward(model, xb, training=True, exact_hidden_grads=logging)
    loss = setup.loss_fn(logits, yb)
    correct = logits.detach().argmax(-1) == yb
    extra_loss, forces, active_groups = setup.aux.apply(
        acts, logits, yb, correct, model.aux_params, setup.spec, step / setup.total_steps
    )
    total = loss if extra_loss is None else loss + extra_loss
    state.alive &= torch.isfinite(total)
    for p in params:
        p.grad = None
    if logging:  # the statistics read the gradient arriving at each layer (and compare each force with it)
        for a in acts:
            a.retain_grad()
    if forces is None:
        total.sum().backward()
    else:  # each force joins the gradient arriving at its activations and flows on to earlier layers
        torch.autograd.backward([total.sum(), *acts], [None, *forces])
    record = None
    if logging:
        record = stats.before_step(model, acts, forces, active_groups, state.initial_weights, setup.stat_layers)
        weights_before = [w.detach().clone() for w in model.weights[:-1]]
    if setup.spec.get("grad_clip"):
        clip_grad_norm_([p.grad for p in params], setup.spec["grad_clip"])
    hp = setup.hp
    setup.optimizer.step(params, state.bufs, setup.decayed, setup.lr, hp["momentum"], hp["weight_decay"])
    if logging:
        record = torch.cat([record, stats.update_ratio(model, weights_before, setup.stat_layers).unsqueeze(-1)], dim=-1)
    return loss, correct, record


def train_epoch(setup: Setup, state: TrainState, epoch: int, snapshot: list[torch.Tensor]):
    """One pass over each model's shuffled training data -> (summed loss (M,), correct count (M,), the logged
    steps' records [(step, statistics, alive)]). A model that diverged is put back as it was at the epoch's start."""
    model, batch = setup.model, setup.hp["batch_size"]
    x_train, y_train = setup.splits["x_train"], setup.splits["y_train"]
    perm = torch.stack([torch.randperm(setup.n_train, generator=g) for g in state.generators]).to(setup.device)
    # Diverged models are not masked step by step (that costs a kernel per tensor per step); they are
    # restored from this snapshot at the end of the epoch, and their rows stop where they diverged.
    torch._foreach_copy_(snapshot, state.params + model.buffers())
    loss_sum = torch.zeros(len(state.alive), device=setup.device)
    correct_sum = torch.zeros(len(state.alive), device=setup.device)
    records = []
    for i in range(setup.steps_per_epoch):
        step = epoch * setup.steps_per_epoch + i
        xb, yb = batch_rows(x_train, y_train, perm[:, i * batch : (i + 1) * batch])
        logging = step % setup.hp["log_every"] == 0  # the statistics need each hidden state's full gradient
        loss, correct, record = train_step(setup, state, xb, yb, step, logging)
        if logging:
            records.append((step, record, state.alive.clone()))
        loss_sum += loss.detach() * len(yb[0])
        correct_sum += correct.sum(1)
    if not bool(state.alive.all()):
        take_where(~state.alive, state.params + model.buffers(), snapshot)
    return loss_sum, correct_sum, records


def validate(setup: Setup, state: TrainState, loss_sum, correct_sum) -> torch.Tensor:
    """The epoch's outcome on the host, one row per model: train loss, train accuracy, validation loss, validation
    accuracy, alive (the epoch's one host sync). Validation every epoch: the best checkpoint, tuning and
    epochs-to-threshold read it; test comes after training."""
    validation = evaluate(setup.model, setup.splits["x_val"], setup.splits["y_val"], setup.loss_fn)
    return torch.stack(
        [loss_sum / setup.n_train, correct_sum / setup.n_train, *validation, state.alive.float()], dim=1
    ).cpu()


def keep_best(setup: Setup, state: TrainState, outcome: torch.Tensor, epochs_done: int) -> None:
    """Each model whose validation loss improved keeps its parameters and norm statistics as its best checkpoint."""
    improved = outcome[:, -1].bool() & (outcome[:, 2] < state.best_val_loss)  # NaN (not validated) never improves
    if bool(improved.any()):
        take_where(improved.to(setup.device), state.best, state.params + setup.model.buffers())
        state.best_val_loss = torch.where(improved, outcome[:, 2], state.best_val_loss)
        state.best_epoch[improved] = epochs_done


def log_epoch(state: TrainState, epochs_done: int, wall_s: float, outcome: torch.Tensor, records: list) -> None:
    """The epoch's outcome row and its logged steps' statistics, copied to the host."""
    state.epoch_rows.append([epochs_done, wall_s, outcome])
    if records:
        state.stat_blocks.append(
            [
                torch.tensor([s for s, _, _ in records]),
                epochs_done,
                torch.stack([r for _, r, _ in records]).cpu(),
                torch.stack([a for _, _, a in records]).cpu(),
            ]
        )


def last_epoch(state: TrainState) -> int:
    return state.epoch_rows[-1][0] if state.epoch_rows else 0


def score_on_test(setup: Setup, state: TrainState) -> tuple[np.ndarray, np.ndarray]:
    """-> (test accuracy of each model's best checkpoint, of its last parameters); NaN without test data. The
    model keeps its last parameters."""
    models, model, splits = len(state.alive), setup.model, setup.splits
    test_accuracy = last_test_accuracy = np.full(models, np.nan)
    if "x_test" in splits:
        last_test_accuracy = evaluate(model, splits["x_test"], splits["y_test"], setup.loss_fn)[1].cpu().numpy()
        test_accuracy = last_test_accuracy
        # Where every model's best checkpoint is its last epoch (most MNIST runs) they are the same parameters.
        if not (state.epoch_rows and bool((state.best_epoch == state.epoch_rows[-1][0]).all())):
            tensors = state.params + model.buffers()
            last = [t.detach().clone() for t in tensors]
            with torch.no_grad():
                for t, kept in zip(tensors, state.best):
                    t.copy_(kept)
                test_accuracy = evaluate(model, splits["x_test"], splits["y_test"], setup.loss_fn)[1].cpu().numpy()
                for t, kept in zip(tensors, last):
                    t.copy_(kept)
    return test_accuracy, last_test_accuracy


def _probes_frame(probe_frames: list[dict]) -> pd.DataFrame:
    if not probe_frames:
        return pd.DataFrame()
    return pd.concat([pd.DataFrame({c: t.numpy() for c, t in f.items()}) for f in probe_frames], ignore_index=True)


def train(
    splits: dict[str, torch.Tensor],
    spec: dict,
    hp: dict,
    depth: int,
    seeds: list[int],
    device: str = "cpu",
    checkpoint: Path | None = None,
    checkpoint_every_s: float = 60.0,
    start: dict | None = None,
    until_epoch: int | None = None,
    probe: Callable[[MLP, dict, int], pd.DataFrame] | None = None,
    probe_epochs: tuple[int, ...] = (),
    split_key: str = "",
) -> RunResult:
    """Train one model per entry of `seeds` (repeats allowed); hp: width, epochs, batch_size, lr, momentum,
    weight_decay, loss, log_every. hp["lr"] and the spec's cov_lambda / aux_weight may be lists, one value per model.
    Test accuracy is computed once, after training, and only when `splits` holds test data (tuning passes none).

    `start` (a RunResult's `state`, see `select_models`) continues training from there, and `until_epoch` stops
    before hp["epochs"] (which still sets schedules): successive halving continues its surviving trials this way.
    Every epoch is validated: a trial, like a final run, is scored at its best checkpoint.

    Every model keeps its best checkpoint (docs/design.md#best-checkpoint): the parameters and norm statistics of the
    epoch with its lowest validation loss, taken from the epoch's outcomes after their one host sync. Test accuracy is
    that checkpoint's; the last epoch's parameters give last_test_accuracy, and stay the model's state.

    `probe(model, splits, epoch)` (linear probes, covbench.training.probes) runs at init, after the epochs in `probe_epochs` and
    after the last epoch; its frames are part of the state, so a resumed run keeps the probes it already took.

    `splits` is one split all models share, or one split per model (covbench.data.splits.stacked: a leading model
    dimension, labels (M, n)); `split_key` names the splits in the checkpoint's key, so a run never resumes on
    other data.

    With a checkpoint path, the state is saved at the end of an epoch once checkpoint_every_s seconds have passed
    since the last save (0: every epoch; why not always: `_save_checkpoint`), and a run finding a matching
    checkpoint resumes from it (`resume_from_checkpoint`).
    """
    setup, state = set_up(splits, spec, hp, depth, seeds, device, split_key)
    saved = resume_from_checkpoint(checkpoint, setup.key, start)
    if saved is not None:
        restore(setup, state, saved)
    if state.epoch == 0:
        take_probes(setup, state, probe, 0)
    snapshot = [t.detach().clone() for t in state.params + setup.model.buffers()]
    wall_before = state.wall_s
    started = last_saved = time.perf_counter()
    for epoch in range(state.epoch, until_epoch or hp["epochs"]):
        loss_sum, correct_sum, records = train_epoch(setup, state, epoch, snapshot)
        outcome = validate(setup, state, loss_sum, correct_sum)
        keep_best(setup, state, outcome, epoch + 1)
        wall_s = wall_before + time.perf_counter() - started
        log_epoch(state, epoch + 1, wall_s, outcome, records)
        if epoch + 1 in probe_epochs:
            take_probes(setup, state, probe, epoch + 1)
        if not bool(outcome[:, -1].any()):
            break
        if (
            checkpoint is not None
            and epoch + 1 < hp["epochs"]
            and time.perf_counter() - last_saved >= checkpoint_every_s
        ):
            last_saved = time.perf_counter()
            state.epoch, state.wall_s = epoch + 1, wall_s
            _save_checkpoint(state_of(setup, state), checkpoint)
    take_probes(setup, state, probe, last_epoch(state))
    test_accuracy, last_test_accuracy = score_on_test(setup, state)
    state.epoch, state.wall_s = last_epoch(state), wall_before + time.perf_counter() - started
    return result_of(setup, state, seeds, test_accuracy, last_test_accuracy)


def result_of(setup: Setup, state: TrainState, seeds, test_accuracy, last_test_accuracy) -> RunResult:
    """The run's record: per-layer statistics and epochs as frames, test accuracies, best checkpoints, end state."""
    return RunResult(
        _stats_frame(state.stat_blocks, seeds, setup.stat_layers),
        _epochs_frame(state.epoch_rows, seeds),
        test_accuracy,
        last_test_accuracy,
        state.best_epoch.numpy(),
        state.best_val_loss.numpy(),
        state.wall_s,
        state_of(setup, state),
        _probes_frame(state.probe_frames),
    )


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


def _save_checkpoint(state: dict, path: Path) -> None:
    """Written beside, then renamed (covbench.atomic): a job killed while saving leaves the previous checkpoint
    intact. A checkpoint is insurance, so a failed save (a full disk) is a warning and training goes on. train saves
    every checkpoint_every_s seconds, not every epoch: that would write each model's parameters, momentum and
    initial weights dozens of times per job (gigabytes for the 12288-input cat/not-cat nets), which costs more than
    it protects."""
    try:
        atomic.save_torch(state, path)
    except atomic.StateError as error:
        atomic.warn(f"checkpoint not saved, training goes on without it: {error}")


def _stats_frame(stat_blocks, seeds, layers: list[int]) -> pd.DataFrame:
    """Long table: one row per (seed, logged step, layer); a diverged model's rows stop where it diverged. `layers`
    names the record's rows: hidden layers 1..L, or a recurrent network's logged time steps."""
    frames = []
    rows = len(layers)
    for steps, epoch, block, alive in stat_blocks:  # block (T, M, L, S), alive (T, M)
        t, m = block.shape[:2]
        values = block.numpy().reshape(-1, len(stats.STAT_NAMES))
        frame = pd.DataFrame(values, columns=list(stats.STAT_NAMES))
        frame.insert(0, "model", np.repeat(np.tile(np.arange(m), t), rows))
        frame.insert(1, "seed", np.repeat(np.tile(np.asarray(seeds), t), rows))
        frame.insert(2, "step", np.repeat(steps.numpy(), m * rows))
        frame.insert(3, "epoch", epoch - 1)  # 0-based epoch during which the step happened
        frame.insert(4, "layer", np.tile(np.asarray(layers), t * m))
        frames.append(frame[np.repeat(alive.numpy().reshape(-1), rows)])
    return pd.concat(frames, ignore_index=True)


def _epochs_frame(epoch_rows, seeds) -> pd.DataFrame:
    rows = []
    for m, seed in enumerate(seeds):
        for epoch, wall_s, outcome in epoch_rows:
            train_loss, train_acc, val_loss, val_acc, alive = outcome[m].tolist()
            rows.append(
                dict(
                    model=m,
                    seed=seed,
                    epoch=epoch,
                    train_loss=train_loss,
                    train_accuracy=train_acc,
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                    wall_s=wall_s,
                    diverged=not alive,
                )
            )
            if not alive:
                break
    return pd.DataFrame(rows)


def class_prior_entropy(labels: torch.Tensor) -> float:
    """The training loss of a network that ignores its input and predicts the class frequencies: a run that ends
    near it has collapsed to the majority class (or chance) instead of learning."""
    prior = torch.bincount(labels).double() / len(labels)
    prior = prior[prior > 0]
    return float(-(prior * prior.log()).sum())


def versions() -> dict:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "covbench": version("covbench"),
        "platform": platform.platform(),
    }


def run(
    splits: dict[str, torch.Tensor],
    out_dirs: list[str],
    dataset: str,
    method: str,
    spec: dict,
    hp: dict,
    depth: int,
    seeds: list[int],
    threads: int = 1,
    device: str = "cpu",
    checkpoint_every_s: float = 60.0,
    probe_settings: dict | None = None,
    split_records: list[dict] | None = None,
) -> None:
    """Train the seeds of one (dataset, method, depth) and write each seed's files (docs/design.md#the-files), with
    linear probes of every hidden layer at init and after the last epoch when probe_settings are given.

    `splits` is shared by the seeds or holds one split per seed (covbench.data.splits); `split_records` (one per
    seed, covbench.data.splits.seed_split / official_record) go into each run.json.

    Periodic checkpoints let an interrupted job resume from its last saved epoch.
    """
    process = configure_process(threads)
    first = Path(out_dirs[0])
    first.mkdir(parents=True, exist_ok=True)
    checkpoint = first / "checkpoint.pt"
    probe_clock = {"wall_s": 0.0}
    result = train(
        splits,
        spec,
        hp,
        depth,
        seeds,
        device=device,
        checkpoint=checkpoint,
        checkpoint_every_s=checkpoint_every_s,
        probe=timed_probe(probe_settings, seeds, probe_clock),
        probe_epochs=tuple(probe_settings.get("epochs", ())) if probe_settings else (),
        split_key=json.dumps(split_records, sort_keys=True),
    )
    settings = {
        "method_spec": spec,
        "hyperparameters": hp,
        "device": str(resolve_device(device)),
        "threads": threads,
        "process": process,
        "seeds_trained_together": seeds,
    }
    ids = dict(dataset=dataset, method=method, depth=depth)
    for model, (seed, out_dir) in enumerate(zip(seeds, out_dirs)):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_frames(result, model, seed, ids, out)
        labels = {k: splits[k][model] if is_per_model(splits) else splits[k] for k in ("y_train", "y_val", "y_test")}
        split_record = split_records[model] if split_records else None
        record = run_record(result, model, seed, ids, settings, probe_clock["wall_s"], labels, split_record)
        atomic.write_json(out / "run.json", record)  # last: a run.json means the run's files are complete
    checkpoint.unlink(missing_ok=True)


def timed_probe(probe_settings: dict | None, seeds: list[int], clock: dict) -> Callable | None:
    """train's `probe` for the config's probes block (None: no probes): linear probes of the seeds in its `seeds`
    (None: every seed), their time added to clock["wall_s"] (run.json's probe_wall_s)."""
    if not probe_settings:
        return None
    probed_seeds = probe_settings.get("seeds")  # config probes.seeds; None: every seed
    probed = None if probed_seeds is None else [m for m, seed in enumerate(seeds) if seed in probed_seeds]

    def probe(model, probe_splits, epoch):
        started = time.perf_counter()
        frame = probes.probe_frame(model, probe_splits, probe_settings, epoch, probed)
        clock["wall_s"] += time.perf_counter() - started
        return frame

    return probe


def write_frames(result: RunResult, model: int, seed: int, ids: dict, out: Path) -> None:
    """One seed's layer_stats, epochs and probes tables, each row led by the run's dataset, method and depth."""
    probe_rows = (result.probes if len(result.probes) else pd.DataFrame(columns=PROBE_COLUMNS)).assign(seed=seed)
    for name, frame in (("layer_stats", result.layer_stats), ("epochs", result.epochs), ("probes", probe_rows)):
        frame = frame[frame.model == model].drop(columns="model").reset_index(drop=True)
        for col, value in reversed(ids.items()):
            frame.insert(0, col, value)
        atomic.write_parquet(frame, out / f"{name}.parquet")


def run_record(
    result: RunResult,
    model: int,
    seed: int,
    ids: dict,
    settings: dict,
    probe_wall_s: float,
    labels: dict[str, torch.Tensor],
    split_record: dict | None,
) -> dict:
    """One seed's run.json: the run's settings, its outcome at the best checkpoint and at the last epoch, and what
    a network that learned nothing would score (the class prior's entropy, the majority class's rates)."""
    prior_entropy = class_prior_entropy(labels["y_train"])
    val_majority_rate, test_majority_rate = majority_rates(labels["y_train"], labels["y_val"], labels["y_test"])
    rows = result.epochs[result.epochs.model == model]
    last, best_epoch = rows.iloc[-1], int(result.best_epoch[model])
    best_val_accuracy = float(rows.val_accuracy[rows.epoch == best_epoch].iloc[0]) if best_epoch else math.nan
    return {
        **ids,
        "seed": seed,
        **settings,
        "wall_s": result.wall_s,
        "probe_wall_s": probe_wall_s,
        "diverged": bool(last.diverged),
        "test_accuracy": float(result.test_accuracy[model]),
        "best_epoch": best_epoch,
        "best_val_loss": float(result.best_val_loss[model]),
        "best_val_accuracy": best_val_accuracy,
        "last_test_accuracy": float(result.last_test_accuracy[model]),
        "final_val_accuracy": float(last.val_accuracy),
        "final_val_loss": float(last.val_loss),
        "final_train_loss": float(last.train_loss),
        "class_prior_entropy": prior_entropy,
        "collapsed": bool(last.train_loss >= COLLAPSED_FRACTION * prior_entropy),
        "split": split_record,
        "val_majority_rate": val_majority_rate,
        "test_majority_rate": test_majority_rate,
        "versions": versions(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
