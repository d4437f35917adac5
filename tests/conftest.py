import copy
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def find_mirror() -> Path | None:
    """The verified raw files: $COVBENCH_MIRROR, else shared/data beside the checkout (where CI has them)."""
    for candidate in (os.environ.get("COVBENCH_MIRROR"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "train_catvnoncat.h5").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The one place tests find the data mirror. Without one a test that needs it is skipped on a developer's
    machine and fails under CI=true, where a missing mirror is a broken setup rather than a reason to test less."""
    found = find_mirror()
    if found is None:
        message = (
            "no verified data copies: set COVBENCH_MIRROR to a folder of them or put shared/data beside the checkout"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: a missing mirror fails the run)", pytrace=False)
        pytest.skip(message)
    return found


SPEC = {
    "activation": "sigmoid",
    "init": "normal",
    "norm": "none",
    "residual": "none",
    "grad_clip": None,
    "aux": "none",
    "standardize_inputs": False,
}
HP = {
    "width": 16,
    "epochs": 2,
    "batch_size": 32,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "loss": "softmax_cross_entropy",
    "log_every": 2,
}


@pytest.fixture
def splits():
    """A small 3-class problem with learnable structure: class means differ along random directions."""
    gen = torch.Generator().manual_seed(0)
    n, dim, classes = 300, 20, 3
    labels = torch.randint(0, classes, (n,), generator=gen)
    centers = torch.randn(classes, dim, generator=gen)
    x = (centers[labels] + 0.8 * torch.randn(n, dim, generator=gen)).sigmoid()
    return {
        "x_train": x[:200],
        "y_train": labels[:200],
        "x_val": x[200:250],
        "y_val": labels[200:250],
        "x_test": x[250:],
        "y_test": labels[250:],
    }


@pytest.fixture
def spec():
    return dict(SPEC)


@pytest.fixture
def hp():
    return dict(HP)


@pytest.fixture(scope="module")
def config():
    """The default config/config.yaml."""
    return yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())


def merge(base: dict, override: dict) -> dict:
    """`override` merged into a copy of `base`, nested dicts key by key (as Snakemake merges config files)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


@pytest.fixture
def one_thread():
    """Small matmuls: one thread is as fast, and does not stall when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def force_loss_and_plain_grads(build_model: Callable, x, labels, spec: dict, aux_loss: Callable):
    """A fresh model's parameter gradients three ways: with the aux force seeded into backward beside the loss, as
    the training loop does; with aux_loss(hidden states of model 0, correct of model 0) added to the loss; the loss
    alone. A force is the gradient of its loss (docs/design.md#the-covariance-force) exactly when the first two
    agree."""
    from covbench import components
    from covbench.models import forward, softmax_cross_entropy

    def grads(mode):
        model = build_model()
        params = model.parameters()
        for p in params:
            p.requires_grad_(True)
        logits, hidden = forward(model, x, training=True)
        loss = softmax_cross_entropy(logits, labels).sum()
        correct = logits.argmax(-1) == labels
        if mode == "force":
            aux = components.get("aux", spec["aux"])
            extra_loss, forces, _ = aux.apply(hidden, logits, labels, correct, model.aux_params, spec, 0.0)
            assert extra_loss is None and len(forces) == len(hidden)
            return torch.autograd.grad([loss, *hidden], params, grad_outputs=[None, *forces])
        if mode == "loss":
            loss = loss + aux_loss([h[0] for h in hidden], correct[0])
        return torch.autograd.grad(loss, params)

    return grads("force"), grads("loss"), grads("plain")
