"""Optimizers (docs/design.md#methods-as-compositions), batched over the model dimension: `optimizer: sgd | adam`.

Each is a pair of functions: `init_state(params) -> [tensors]` (what a checkpoint must keep) and
`step(params, state, decayed, lr, momentum, weight_decay)`. lr is a float shared by all models, or a list with
one float per model (tuning trials batched as one model): every tensor's first dimension is the model's. `decayed`
marks the weight matrices that take L2 weight decay (added to the gradient, torch's convention).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from covbench.components import register

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


@dataclass(frozen=True)
class Optimizer:
    init_state: Callable
    step: Callable


def _decay_groups(decayed, weight_decay):
    """[(tensor indices, their weight decay)]: the fused kernels take one decay per call."""
    if not weight_decay:
        return [(range(len(decayed)), 0.0)]
    return [([i for i, d in enumerate(decayed) if d], weight_decay), ([i for i, d in enumerate(decayed) if not d], 0.0)]


def _per_model(lr, tensors):
    """[(lr, tensors)]: one pair with every tensor for a shared lr; one per model, of that model's slices, otherwise."""
    if isinstance(lr, list):
        return [(rate, [[t[m] for t in group] for group in tensors]) for m, rate in enumerate(lr)]
    return [(lr, tensors)]


@torch.no_grad()
def sgd_step(params, bufs, decayed, lr, momentum, weight_decay):
    """SGD with momentum (torch's convention: buf = momentum * buf + grad, p -= lr * buf), in torch's fused SGD
    kernel: one pass over each tensor instead of three, which matters for the 12288-input first layers of
    cat/not-cat. With one lr per model the kernel runs once per model on its slices (a row of a contiguous tensor
    is contiguous), so a trial gets the update it would get trained alone; the three broadcasting passes this
    replaces took 19 ms of a 52 ms cat/not-cat tuning step (8 trials, depth 2).
    """
    for indices, decay in _decay_groups(decayed, weight_decay):
        tensors = [[params[i] for i in indices], [params[i].grad for i in indices], [bufs[i] for i in indices]]
        for rate, (group_params, group_grads, group_bufs) in _per_model(lr, tensors):
            torch._fused_sgd_(
                group_params,
                group_grads,
                group_bufs if momentum else [],  # no buffers without momentum
                weight_decay=decay,
                momentum=momentum,
                lr=rate,
                dampening=0.0,
                nesterov=False,
                maximize=False,
                is_first_step=False,
            )


@torch.no_grad()
def adam_step(params, state, decayed, lr, momentum, weight_decay):
    """Adam (Kingma & Ba 2015) as torch.optim.Adam computes it, in its fused kernel: betas 0.9/0.999, eps 1e-8,
    bias-corrected moments, L2 weight decay added to the gradient; `momentum` is SGD's and is not used.
    state = [exp_avg] * P + [exp_avg_sq] * P + [step count]. One pass over each tensor instead of the nine of the
    foreach formulation (and its temporaries): a cat/not-cat tuning rung (8 trials, depth 2) took 10.7 s against
    5.3 s for SGD's."""
    n = len(params)
    exp_avg, exp_avg_sq, count = state[:n], state[n : 2 * n], state[-1]
    count += 1
    step = torch.tensor(float(count), device=params[0].device)  # the kernel reads the step, shared by every tensor
    beta1, beta2 = ADAM_BETAS
    for indices, decay in _decay_groups(decayed, weight_decay):
        tensors = [[t[i] for i in indices] for t in (params, [p.grad for p in params], exp_avg, exp_avg_sq)]
        for rate, group in _per_model(lr, tensors):
            torch._fused_adam_(
                *group,
                [],
                [step] * len(indices),
                lr=rate,
                beta1=beta1,
                beta2=beta2,
                weight_decay=decay,
                eps=ADAM_EPS,
                amsgrad=False,
                maximize=False,
            )


def _sgd_state(params):
    return [torch.zeros_like(p) for p in params]


def _adam_state(params):
    """The step count lives on the CPU whatever the device, so reading it never waits for the GPU."""
    moments = [torch.zeros_like(p) for _ in range(2) for p in params]
    return moments + [torch.zeros((), dtype=torch.int64)]


register("optimizer", "sgd")(Optimizer(_sgd_state, sgd_step))
register("optimizer", "adam")(Optimizer(_adam_state, adam_step))
