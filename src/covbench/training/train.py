"""Training: SGD or Adam on an in-memory tensor dataset, all seeds of a (dataset, method, depth) as one batched
model.

The loop itself knows no method: components come in through the model (activation, init, norm, residual),
the method spec (optimizer, grad_clip) and the aux interface (extra loss terms, gradient forces). Statistics are gathered
on the device at logging steps and copied to the host once per epoch; a run whose loss goes non-finite is
frozen and recorded as diverged while the other seeds go on.

`train` reads as its steps: set_up (a Setup it only reads, a TrainState it changes; covbench.training.state), the
checkpoint to resume from, then each epoch train_epoch (train_step per batch), validate, keep_best, log_epoch,
take_probes and the checkpoint save; after the last, score_on_test and result_of. `train_until` runs the same loop
for successive halving's rungs. covbench.training.runs writes a run's files.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from covbench import components
from covbench.components.clipping import clip_grad_norm_
from covbench.config import METHOD_DEFAULTS
from covbench.models import LOSSES, MLP, RNN, build, forward, span, to_device
from covbench.models.rnn import LOGGED_STEPS, logged_steps
from covbench.training import state as run_state
from covbench.training import stats
from covbench.training.batches import batch_rows, data_generators, evaluate, standardize, take_where
from covbench.training.process import resolve_device
from covbench.training.state import Checkpoint, Setup, TrainState, checkpoint_key, restore, state_of


@dataclass(frozen=True)
class Probe:
    """Linear probes during training (covbench.training.probes): `take(model, splits, epoch)` -> a frame, at init,
    after each epoch in `epochs` and after the last epoch."""

    take: Callable[[MLP, dict, int], pd.DataFrame]
    epochs: tuple[int, ...] = ()


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


def set_up(splits, spec, hp, depth, seeds, device, key) -> tuple[Setup, TrainState]:
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
        checkpoint_key(spec, hp, depth, seeds, n_train, key),
        list(seeds),
    )
    best = [t.detach().clone() for t in params + model.buffers()]
    best_val_loss, best_epoch = torch.full((len(seeds),), math.inf), torch.zeros(len(seeds), dtype=torch.long)
    return setup, TrainState(params, bufs, initial_weights, generators, alive, best, best_val_loss, best_epoch)


def take_probes(setup: Setup, state: TrainState, probe: Probe | None, epochs_done: int) -> None:
    """Probe once per epoch count. Frames are kept as columns of tensors: a checkpoint loads with weights_only,
    which takes no frame."""
    if probe is not None and not any(int(f["epoch"][0]) == epochs_done for f in state.probe_frames):
        frame = probe.take(setup.model, setup.splits, epochs_done)
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


def train(
    splits: dict[str, torch.Tensor],
    spec: dict,
    hp: dict,
    depth: int,
    seeds: list[int],
    device: str = "cpu",
    checkpoint: Checkpoint | None = None,
    probe: Probe | None = None,
) -> RunResult:
    """Train one model per entry of `seeds` (repeats allowed); hp: width, epochs, batch_size, lr, momentum,
    weight_decay, loss, log_every. hp["lr"] and the spec's cov_lambda / aux_weight may be lists, one value per model.
    Test accuracy is computed once, after training, and only when `splits` holds test data (tuning passes none).

    Every model keeps its best checkpoint (docs/design.md#best-checkpoint): the parameters and norm statistics of the
    epoch with its lowest validation loss, taken from the epoch's outcomes after their one host sync. Test accuracy is
    that checkpoint's; the last epoch's parameters give last_test_accuracy, and stay the model's state.

    `probe` runs at init, after its epochs and after the last epoch; its frames are part of the state, so a resumed
    run keeps the probes it already took.

    `splits` is one split all models share, or one split per model (covbench.data.splits.stacked: a leading model
    dimension, labels (M, n)).

    With a `checkpoint`, the state is saved as it says, and a run finding a checkpoint of its own key resumes from it
    (`resume_from_checkpoint`).
    """
    setup, state = set_up(splits, spec, hp, depth, seeds, device, checkpoint.key if checkpoint else "")
    saved = run_state.resume_from_checkpoint(checkpoint and checkpoint.path, setup.key, None)
    if saved is not None:
        restore(setup, state, saved)
    return run_epochs(setup, state, hp["epochs"], checkpoint, probe)


def train_until(
    splits: dict[str, torch.Tensor],
    spec: dict,
    hp: dict,
    depth: int,
    seeds: list[int],
    until_epoch: int,
    start: dict | None = None,
    device: str = "cpu",
) -> RunResult:
    """`train` from `start` (a RunResult's `state`, see state.select_models; None: init) to epoch `until_epoch`, with
    hp["epochs"] still setting the schedules: successive halving continues its surviving trials this way. Every epoch
    is validated: a trial, like a final run, is scored at its best checkpoint."""
    setup, state = set_up(splits, spec, hp, depth, seeds, device, "")
    if start is not None:
        restore(setup, state, start)
    return run_epochs(setup, state, until_epoch, None, None)


def run_epochs(
    setup: Setup, state: TrainState, until_epoch: int, checkpoint: Checkpoint | None, probe: Probe | None
) -> RunResult:
    """The epochs from the state's to `until_epoch`, then the test and the run's record."""
    if state.epoch == 0:
        take_probes(setup, state, probe, 0)
    snapshot = [t.detach().clone() for t in state.params + setup.model.buffers()]
    wall_before = state.wall_s
    started = last_saved = time.perf_counter()
    for epoch in range(state.epoch, until_epoch):
        loss_sum, correct_sum, records = train_epoch(setup, state, epoch, snapshot)
        outcome = validate(setup, state, loss_sum, correct_sum)
        keep_best(setup, state, outcome, epoch + 1)
        wall_s = wall_before + time.perf_counter() - started
        log_epoch(state, epoch + 1, wall_s, outcome, records)
        if probe is not None and epoch + 1 in probe.epochs:
            take_probes(setup, state, probe, epoch + 1)
        if not bool(outcome[:, -1].any()):
            break
        if (
            checkpoint is not None
            and epoch + 1 < setup.hp["epochs"]
            and time.perf_counter() - last_saved >= checkpoint.every_s
        ):
            last_saved = time.perf_counter()
            state.epoch, state.wall_s = epoch + 1, wall_s
            run_state.save_checkpoint(state_of(setup, state), checkpoint.path)
    take_probes(setup, state, probe, last_epoch(state))
    test_accuracy, last_test_accuracy = score_on_test(setup, state)
    state.epoch, state.wall_s = last_epoch(state), wall_before + time.perf_counter() - started
    return result_of(setup, state, test_accuracy, last_test_accuracy)


def result_of(setup: Setup, state: TrainState, test_accuracy, last_test_accuracy) -> RunResult:
    """The run's record: per-layer statistics and epochs as frames, test accuracies, best checkpoints, end state."""
    return RunResult(
        _stats_frame(state.stat_blocks, setup.seeds, setup.stat_layers),
        _epochs_frame(state.epoch_rows, setup.seeds),
        test_accuracy,
        last_test_accuracy,
        state.best_epoch.numpy(),
        state.best_val_loss.numpy(),
        state.wall_s,
        state_of(setup, state),
        _probes_frame(state.probe_frames),
    )


def _probes_frame(probe_frames: list[dict]) -> pd.DataFrame:
    if not probe_frames:
        return pd.DataFrame()
    return pd.concat([pd.DataFrame({c: t.numpy() for c, t in f.items()}) for f in probe_frames], ignore_index=True)


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
