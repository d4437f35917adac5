"""Linear probes (Alain & Bengio 2016): how much of the label each hidden layer's representation carries.

Per (model, hidden layer): a multinomial logistic regression (scikit-learn, on standardized activations) fitted
on a fixed, seeded subset of the train split and scored on a fixed subset of the validation split
(docs/design.md#linear-probes, `probe_accuracy`). The subsets are the same for every method and seed of a dataset, so
probe accuracies compare across them. Call `probe_frame` at init (epoch 0) and after the last epoch.
"""

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from covbench import subnormals
from covbench.models import MLP, forward

# lbfgs stopped early: a probe measures how linearly readable a layer is, it need not be fitted to the last digit.
# On MNIST (1000 x 100 activations, 10 classes, one core) a fit costs ~10-13 ms, ~5 of them sklearn's fixed overhead,
# and scores within 1.6 points (mean 0.1) of the converged fit; 30 iterations cost ~5 ms more for 0.7 points
# (BENCHMARKS.md, "Linear probes").
MAX_ITER = 20
TOL = 1e-3
RANDOM_STATE = 0


def probe_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """A fixed subset of `size` of range(n) (all of it when size >= n), sorted; depends only on (n, size, seed)."""
    if size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


@torch.no_grad()
def hidden_activations(model: MLP, x: torch.Tensor) -> list[torch.Tensor]:
    """Each hidden layer's output in evaluation mode (running norm statistics): [(M, n, width)] * depth."""
    _, acts = forward(model, x, training=False)
    return acts


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> float:
    """Validation accuracy of one probe; NaN when the activations are not all finite (a diverged model)."""
    if not (np.isfinite(x_train).all() and np.isfinite(x_val).all()):
        return float("nan")
    probe = make_pipeline(
        StandardScaler(),  # zero-variance features are left unscaled, not divided by 0
        LogisticRegression(max_iter=MAX_ITER, tol=TOL, random_state=RANDOM_STATE),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # stopped at MAX_ITER on purpose
        probe.fit(x_train, y_train)
    return float(probe.score(x_val, y_val))


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


def _of_model(labels: np.ndarray, model: int) -> np.ndarray:
    """A model's labels: its row of per-model labels (M, n), or the shared (n,)."""
    return labels[model] if labels.ndim == 2 else labels


def probe_scores(train_acts: list, y_train, val_acts: list, y_val) -> np.ndarray:
    """train_acts, val_acts: per hidden layer, (M, n, width) tensors or arrays; labels shared (n,) or per model
    (M, n) -> (M, L) validation accuracies.

    BLAS is limited to torch's thread count, so the probes use the cores the training job was given.
    """
    y_train, y_val = _numpy(y_train), _numpy(y_val)
    models = len(train_acts[0])
    scores = np.full((models, len(train_acts)), np.nan)
    # Gradual underflow: StandardScaler divides float32 features by their float64 scale cast to float32, and the
    # scale of a saturated layer's unit (1e-40, say) would become 0 under flush-to-zero, the features NaN.
    with threadpool_limits(limits=torch.get_num_threads()), subnormals.kept():
        for layer, (acts_train, acts_val) in enumerate(zip(train_acts, val_acts)):
            acts_train, acts_val = _numpy(acts_train), _numpy(acts_val)  # float32 stays float32: 1-2 ms faster a fit
            for model in range(models):
                scores[model, layer] = fit_probe(
                    acts_train[model], _of_model(y_train, model), acts_val[model], _of_model(y_val, model)
                )
    return scores


def scores_frame(
    scores: np.ndarray, epoch: int, n_train: int, n_val: int, models: list[int] | None = None
) -> pd.DataFrame:
    """(M', L) accuracies -> tidy rows: model (the index in the batch: `models[i]` for row i, default i), epoch
    (0 = init), layer (1 = nearest the input), probe_accuracy, n_train, n_val (the probe's subset sizes)."""
    count, layers = scores.shape
    models = np.arange(count) if models is None else np.asarray(models)
    return pd.DataFrame(
        {
            "model": np.repeat(models, layers),
            "epoch": epoch,
            "layer": np.tile(np.arange(1, layers + 1), count),
            "probe_accuracy": scores.reshape(-1),
            "n_train": n_train,
            "n_val": n_val,
        }
    )


def probe_frame(
    model: MLP, splits: dict[str, torch.Tensor], probe_settings: dict, epoch: int, models: list[int] | None = None
) -> pd.DataFrame:
    """Probe every hidden layer of the models of `model` (leading dimension M) at `epoch`: those at the batch
    indices `models`, or all. A probe's cost is its fit, one per (model, layer), so probing fewer seeds saves it.

    splits: x_train, y_train, x_val, y_val (inputs already standardized where the method asks for it), shared or one
    split per model (covbench.data.splits: the subset is then the same positions of each model's split);
    probe_settings: the config's `probes` block (train_size, val_size, seed).
    """
    subsets = {}
    for split, size in (("train", probe_settings["train_size"]), ("val", probe_settings["val_size"])):
        x, y = splits[f"x_{split}"], splits[f"y_{split}"]
        index = probe_indices(y.shape[-1], size, probe_settings["seed"]).to(x.device)
        x, y = (x[:, index], y[:, index]) if y.dim() == 2 else (x[index], y[index])
        acts = hidden_activations(model, x)
        if models is not None:
            acts, y = [a[models] for a in acts], (y[models] if y.dim() == 2 else y)
        subsets[split] = (acts, y)
    scores = probe_scores(*subsets["train"], *subsets["val"])
    return scores_frame(scores, epoch, subsets["train"][1].shape[-1], subsets["val"][1].shape[-1], models)
