"""Activations, each with its init gain and its notion of a saturated unit (docs/design.md#per-layer-statistics).

An activation is applied as `fn(z, params, training, generators)`: z (M, B, n), params the tensor its
`init_params` gave this activation site (None where it gives none), generators one per model for an activation
that draws in training (`draws`; models.mlp.noise_generators), empty otherwise. Most are elementwise and read z only.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from covbench.components import register

LEAKY_SLOPE = 0.01
SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772
PRELU_INIT = 0.25  # He et al. 2015's initial slope
RRELU_LOWER, RRELU_UPPER = 1 / 8, 1 / 3  # Xu et al. 2015's slope range (torch's F.rrelu defaults)
RRELU_MEAN = (RRELU_LOWER + RRELU_UPPER) / 2  # 11/48, the slope in evaluation


def he_gain(slope: float) -> float:
    """He et al. 2015's std multiplier for a rectifier of negative slope `slope`."""
    return math.sqrt(2.0 / (1 + slope**2))


def no_params(models: int, sites: int, width: int) -> list[torch.Tensor]:
    return []


@dataclass(frozen=True)
class Activation:
    fn: Callable  # (z, params, training, generators) -> activation of z
    gain: float  # std multiplier for He init (He et al. 2015): he_gain(slope) for the ReLU family
    saturated: Callable[[torch.Tensor], torch.Tensor]  # bool mask of units stuck at an asymptote or dead
    # (models, sites, width) -> one trainable tensor per activation site (models.mlp.MLP.act_params)
    init_params: Callable = no_params
    draws: bool = False  # draws random numbers in training: the model carries one generator per model


def elementwise(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """An activation of z alone, as `fn`."""
    return lambda z, params, training, generators: f(z)


def prelu(z, slopes, training, generators):
    """He et al. 2015: max(0, z) + a min(0, z), with slopes a (M, n) of this layer."""
    return torch.where(z > 0, z, slopes.unsqueeze(1) * z)


def prelu_slopes(models, sites, width):
    """One learnable slope per hidden unit of each layer (He et al.'s channel-wise PReLU; a fully connected layer's
    channels are its units), per model, all starting at 0.25. Not weight-decayed: only weight matrices are
    (train.py's `decayed`), as He et al. leave the slopes undecayed."""
    return [torch.full((models, width), PRELU_INIT) for _ in range(sites)]


def rrelu(z, params, training, generators):
    """Xu et al. 2015's randomized leaky ReLU, in torch's F.rrelu form: a negative z is multiplied by a slope drawn
    from U(1/8, 1/3) per element in training (Xu et al. write z / a, a ~ U(3, 8)), by the mean 11/48 in
    evaluation. Each model draws its slopes from its own generator (not torch's global one, which F.rrelu reads),
    so a seed's noise does not depend on which other seeds share its batch, and a checkpoint keeps its state."""
    if not training:
        return F.leaky_relu(z, RRELU_MEAN)
    slopes = torch.stack(
        [torch.empty(z.shape[1:]).uniform_(RRELU_LOWER, RRELU_UPPER, generator=g) for g in generators]
    ).to(z.device, z.dtype)
    return torch.where(z > 0, z, slopes * z)


def dead(a):
    return a == 0


register("activation", "sigmoid")(Activation(elementwise(torch.sigmoid), 1.0, lambda a: (a < 0.01) | (a > 0.99)))
register("activation", "tanh")(Activation(elementwise(torch.tanh), 5.0 / 3.0, lambda a: a.abs() > 0.99))
register("activation", "relu")(Activation(elementwise(torch.relu), math.sqrt(2.0), dead))
register("activation", "leaky_relu")(
    Activation(elementwise(lambda z: F.leaky_relu(z, LEAKY_SLOPE)), he_gain(LEAKY_SLOPE), dead)
)
register("activation", "prelu")(Activation(prelu, he_gain(PRELU_INIT), dead, init_params=prelu_slopes))
register("activation", "rrelu")(Activation(rrelu, he_gain(RRELU_MEAN), dead, draws=True))
# ELU and SELU saturate towards their negative asymptotes -1 and -scale*alpha.
register("activation", "elu")(Activation(elementwise(F.elu), math.sqrt(2.0), lambda a: a < -0.99))
register("activation", "selu")(Activation(elementwise(F.selu), 0.75, lambda a: a < -0.99 * SELU_SCALE * SELU_ALPHA))
