"""Our batched optimizer steps against torch.optim on the same model (they use torch's private _foreach/_fused
kernels, whose behaviour this pins against the public API)."""

import pytest
import torch

from covbench import components
from covbench.models import LOSSES, build_mlp, forward

STEPS = 6


def _losses(model, x, y):
    logits, _ = forward(model, x, training=True)
    return LOSSES["softmax_cross_entropy"](logits, y)


def _reference(name, lr, weight_decay, weights, biases):
    """torch.optim on one model's tensors: weight decay on the weight matrices only, as ours."""
    groups = [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}]
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


@pytest.mark.parametrize("name", ["adam", "sgd"])
@pytest.mark.parametrize("lrs", [[0.01], [0.003, 0.03, 0.1]])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_batched_step_matches_torch_optim(splits, name, lrs, weight_decay):
    spec = {"activation": "tanh", "init": "xavier", "norm": "none", "residual": "none", "aux": "none"}
    seeds = list(range(len(lrs)))
    model = build_mlp(spec, 20, 8, 2, 3, seeds)
    params = model.parameters()
    for p in params:
        p.requires_grad_(True)
    decayed = [any(p is w for w in model.weights) for p in params]
    batched_lr = float(lrs[0]) if len(lrs) == 1 else lrs  # a shared float, or one per model
    optimizer = components.get("optimizer", name)
    state = optimizer.init_state(params)

    references = []  # per model: its own leaf tensors and torch optimizer
    for m, lr in enumerate(lrs):
        weights = [w[m].detach().clone().requires_grad_(True) for w in model.weights]
        biases = [b[m].detach().clone().requires_grad_(True) for b in model.biases]
        references.append((weights, biases, _reference(name, lr, weight_decay, weights, biases)))

    x, y = splits["x_train"], splits["y_train"]
    for step in range(STEPS):
        xb, yb = x[step * 16 : (step + 1) * 16], y[step * 16 : (step + 1) * 16]
        for p in params:
            p.grad = None
        _losses(model, xb, yb.expand(len(lrs), -1)).sum().backward()
        optimizer.step(params, state, decayed, batched_lr, 0.9, weight_decay)
        for weights, biases, reference in references:
            reference.zero_grad()
            h = xb
            for w, b in zip(weights[:-1], biases[:-1]):
                h = torch.tanh(h @ w + b)
            torch.nn.functional.cross_entropy(h @ weights[-1] + biases[-1], yb).backward()
            reference.step()

    for m, (weights, biases, _) in enumerate(references):
        for ours, theirs in zip(model.weights + model.biases, weights + biases):
            torch.testing.assert_close(ours[m].detach(), theirs.detach(), rtol=1e-5, atol=1e-6)
    moved = (model.weights[0][0] - build_mlp(spec, 20, 8, 2, 3, seeds).weights[0][0]).abs().max()
    assert moved > 1e-3  # the steps moved the weights, so equality is not trivial
