"""Gradient clipping by global norm (Pascanu et al. 2013), per model when models are trained together."""

import torch


def global_grad_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """(M,) L2 norm over all parameters of each model; every grad has the model dimension first (SkipInit's
    alphas have nothing else)."""
    return torch.stack([g.pow(2).reshape(len(g), -1).sum(1) for g in grads]).sum(0).sqrt()


def clip_grad_norm_(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each model's gradients so its global norm is at most max_norm (as torch's clip_grad_norm_)."""
    norm = global_grad_norm(grads)
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
    return norm
