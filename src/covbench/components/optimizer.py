"""Optimizers (DESIGN section 2), batched over the model dimension: `optimizer: sgd | adam`.

Each is a pair of functions: `init_state(params) -> [tensors]` (what a checkpoint must keep) and
`step(params, state, decayed, lr_scales, momentum, weight_decay)`. lr_scales holds each parameter's learning
rate, a float or an (M, 1, ...) tensor broadcasting over the model dimension (tuning trials batched as one
model); `decayed` marks the weight matrices that take L2 weight decay (added to the gradient, torch's convention).
"""
from dataclasses import dataclass
from typing import Callable

import torch

from covbench.components import register

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


@dataclass(frozen=True)
class Optimizer:
    init_state: Callable
    step: Callable


def _decayed_grads(params, decayed, weight_decay):
    grads = [p.grad for p in params]
    if weight_decay:
        return [g.add(p, alpha=weight_decay) if d else g for g, p, d in zip(grads, params, decayed)]
    return grads


@torch.no_grad()
def sgd_step(params, bufs, decayed, lr_scales, momentum, weight_decay):
    """SGD with momentum (torch's convention: buf = momentum * buf + grad, p -= lr * buf).

    One learning rate takes torch's fused SGD kernel: one pass over each tensor instead of three, which matters
    for the 12288-input first layers of cat/not-cat.
    """
    if isinstance(lr_scales[0], float):
        if weight_decay:
            groups = [([i for i, d in enumerate(decayed) if d], weight_decay),
                      ([i for i, d in enumerate(decayed) if not d], 0.0)]
        else:  # every tensor is updated alike: one kernel call
            groups = [(range(len(params)), 0.0)]
        for group, decay in groups:
            momentum_bufs = [bufs[i] for i in group] if momentum else []  # the kernel takes none without momentum
            torch._fused_sgd_([params[i] for i in group], [params[i].grad for i in group], momentum_bufs,
                              weight_decay=decay, momentum=momentum, lr=lr_scales[0],
                              dampening=0.0, nesterov=False, maximize=False, is_first_step=False)
        return
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, _decayed_grads(params, decayed, weight_decay))
    torch._foreach_addcmul_(params, bufs, lr_scales, value=-1)  # one fused multiply-add per tensor


@torch.no_grad()
def adam_step(params, state, decayed, lr_scales, momentum, weight_decay):
    """Adam (Kingma & Ba 2015) as torch.optim.Adam computes it: betas 0.9/0.999, eps 1e-8, bias-corrected
    moments; `momentum` is SGD's and is not used. state = [exp_avg] * P + [exp_avg_sq] * P + [step count]."""
    n = len(params)
    exp_avg, exp_avg_sq, count = state[:n], state[n:2 * n], state[-1]
    beta1, beta2 = ADAM_BETAS
    count += 1
    step = int(count)  # a CPU scalar: no device sync
    grads = _decayed_grads(params, decayed, weight_decay)
    torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sq, beta2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, bias_correction2_sqrt)
    torch._foreach_add_(denom, ADAM_EPS)
    direction = torch._foreach_div(exp_avg, denom)
    if isinstance(lr_scales[0], float):
        torch._foreach_add_(params, direction, alpha=-lr_scales[0] / bias_correction1)
    else:
        torch._foreach_addcmul_(params, direction, lr_scales, value=-1 / bias_correction1)


def _sgd_state(params):
    return [torch.zeros_like(p) for p in params]


def _adam_state(params):
    """The step count lives on the CPU whatever the device, so reading it never waits for the GPU."""
    moments = [torch.zeros_like(p) for _ in range(2) for p in params]
    return moments + [torch.zeros((), dtype=torch.int64)]


register("optimizer", "sgd")(Optimizer(_sgd_state, sgd_step))
register("optimizer", "adam")(Optimizer(_adam_state, adam_step))
