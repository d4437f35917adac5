"""Weight/bias initializations, one function each: (fan_in, fan_out, gain, generator) -> (W, b).

W has shape (fan_in, fan_out) so that a layer computes `x @ W + b`. Every draw uses the run's own
generator, so a seed gives the same network whether it is trained alone or batched with others.
"""

import math

import torch

from covbench.components import register


def _normal(shape, std, gen):
    return torch.randn(shape, generator=gen) * std


@register("init", "normal")
def normal(fan_in, fan_out, gain, gen):
    """N(0, 1) weights and biases: the classic bad initialization (Nielsen, NNDL ch. 3 and 5)."""
    return _normal((fan_in, fan_out), 1.0, gen), _normal((fan_out,), 1.0, gen)


@register("init", "nielsen")
def nielsen(fan_in, fan_out, gain, gen):
    """N(0, 1/fan_in) weights, N(0, 1) biases: network2's default_weight_initializer (NNDL ch. 3)."""
    return _normal((fan_in, fan_out), 1.0 / math.sqrt(fan_in), gen), _normal((fan_out,), 1.0, gen)


@register("init", "xavier")
def xavier(fan_in, fan_out, gain, gen):
    """Glorot & Bengio (2010) normalized init: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), zero bias."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand((fan_in, fan_out), generator=gen) * 2 - 1) * bound, torch.zeros(fan_out)


@register("init", "he")
def he(fan_in, fan_out, gain, gen):
    """He et al. (2015) Kaiming normal, fan_in mode: N(0, gain^2 / fan_in), zero bias."""
    return _normal((fan_in, fan_out), gain / math.sqrt(fan_in), gen), torch.zeros(fan_out)


@register("init", "lecun")
def lecun(fan_in, fan_out, gain, gen):
    """LeCun normal, N(0, 1/fan_in), zero bias: what SELU's self-normalization assumes (Klambauer et al. 2017)."""
    return _normal((fan_in, fan_out), 1.0 / math.sqrt(fan_in), gen), torch.zeros(fan_out)
