import copy
from pathlib import Path

import pytest
import torch
import yaml

SPEC = {"activation": "sigmoid", "init": "normal", "norm": "none", "residual": "none", "grad_clip": None,
        "aux": "none", "standardize_inputs": False}
HP = {"width": 16, "epochs": 2, "batch_size": 32, "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0,
      "loss": "softmax_cross_entropy", "log_every": 2}


@pytest.fixture
def splits():
    """A small 3-class problem with learnable structure: class means differ along random directions."""
    gen = torch.Generator().manual_seed(0)
    n, dim, classes = 300, 20, 3
    labels = torch.randint(0, classes, (n,), generator=gen)
    centers = torch.randn(classes, dim, generator=gen)
    x = (centers[labels] + 0.8 * torch.randn(n, dim, generator=gen)).sigmoid()
    return {"x_train": x[:200], "y_train": labels[:200], "x_val": x[200:250], "y_val": labels[200:250],
            "x_test": x[250:], "y_test": labels[250:]}


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
