"""Activations, each with its init gain and its notion of a saturated unit (DESIGN section 4)."""
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from covbench.components import register

LEAKY_SLOPE = 0.01
SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772


@dataclass(frozen=True)
class Activation:
    fn: Callable[[torch.Tensor], torch.Tensor]
    gain: float  # std multiplier for He init (He et al. 2015): sqrt(2 / (1 + slope^2)) for the ReLU family
    saturated: Callable[[torch.Tensor], torch.Tensor]  # bool mask of units stuck at an asymptote or dead


register("activation", "sigmoid")(
    Activation(torch.sigmoid, 1.0, lambda a: (a < 0.01) | (a > 0.99)))
register("activation", "tanh")(
    Activation(torch.tanh, 5.0 / 3.0, lambda a: a.abs() > 0.99))
register("activation", "relu")(
    Activation(torch.relu, math.sqrt(2.0), lambda a: a == 0))
register("activation", "leaky_relu")(
    Activation(lambda z: F.leaky_relu(z, LEAKY_SLOPE), math.sqrt(2.0 / (1 + LEAKY_SLOPE**2)), lambda a: a == 0))
# ELU and SELU saturate towards their negative asymptotes -1 and -scale*alpha.
register("activation", "elu")(
    Activation(F.elu, math.sqrt(2.0), lambda a: a < -0.99))
register("activation", "selu")(
    Activation(F.selu, 0.75, lambda a: a < -0.99 * SELU_SCALE * SELU_ALPHA))
