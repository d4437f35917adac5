"""The loop's tensor helpers: each seed's data order, standardized inputs, the mini-batches of every model at once,
evaluation in chunks, and copying the slices of some models only."""

import torch

from covbench.data.splits import distinct_models, is_per_model
from covbench.models import MLP, forward

# Evaluation runs in chunks of this many examples: 1000 keeps a chunk's activations in cache (10k x 5 models x
# 100 units is 20 MB a layer), 35 % faster at depth 32 than 10k chunks (0.61 s against 0.95 s per 10k images).
EVAL_CHUNK = 1_000


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
