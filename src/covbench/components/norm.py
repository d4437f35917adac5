"""Normalization after the linear map, before the activation (Ioffe & Szegedy 2015).

With a norm, beta is the layer's bias and the linear bias is fixed at zero (models.build_mlp).
Tensors carry a leading model dimension M (models trained together); statistics are per model.
"""
import torch

from covbench.components import register

BN_MOMENTUM, BN_EPS = 0.1, 1e-5


@register("norm", "none")
def no_norm(z, state, training):
    return z


@register("norm", "batchnorm")
def batchnorm(z, state, training):
    """z: (M, B, n). state holds gamma, beta (M, n) parameters and running_mean/var (M, n) buffers."""
    if training:
        mean = z.mean(dim=1)
        var = z.var(dim=1, unbiased=False)
        with torch.no_grad():
            n = z.shape[1]
            state["running_mean"].lerp_(mean, BN_MOMENTUM)
            state["running_var"].lerp_(var * n / max(n - 1, 1), BN_MOMENTUM)
    else:
        mean, var = state["running_mean"], state["running_var"]
    z_hat = (z - mean.unsqueeze(1)) * torch.rsqrt(var.unsqueeze(1) + BN_EPS)
    return z_hat * state["gamma"].unsqueeze(1) + state["beta"].unsqueeze(1)


def init_state(models: int, width: int) -> dict[str, torch.Tensor]:
    return {
        "gamma": torch.ones(models, width), "beta": torch.zeros(models, width),
        "running_mean": torch.zeros(models, width), "running_var": torch.ones(models, width),
    }
