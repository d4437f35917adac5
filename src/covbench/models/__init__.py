"""The networks, behind one small interface the training loop, the statistics and the forces use:
`build` -> a model whose every tensor is batched over models (seeds or trials), `forward` -> logits and the
hidden states (an MLP's layers, a recurrent network's time steps), `to_device`.

    mlp.py  input -> [hidden block] x depth -> output, from a method's components
    (docs/design.md#methods-as-compositions) rnn.py  x_1..x_T -> recurrent cell -> output on h_T
    (docs/design.md#the-recurrent-track): time steps play the part of layers
"""

import torch

from covbench.models import span
from covbench.models.mlp import (
    LOSSES,
    MLP,
    build_mlp,
    init_generators,
    linear,
    mlp_forward,
    mlp_to_device,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
)
from covbench.models.rnn import RNN, build_rnn, rnn_forward, rnn_to_device

__all__ = [
    "LOSSES",
    "MLP",
    "RNN",
    "build",
    "build_mlp",
    "build_rnn",
    "forward",
    "init_generators",
    "is_recurrent",
    "linear",
    "sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "span",
    "to_device",
]


def is_recurrent(spec: dict) -> bool:
    """A method with a `cell` is a recurrent network; every other one an MLP."""
    return "cell" in spec


def build(spec: dict, in_dim: int, width: int, depth: int, classes: int, seeds: list[int]) -> MLP | RNN:
    """An MLP of `depth` hidden layers of `width` units, or a recurrent network of `width` hidden units (its depth
    in time is the length of the sequences it reads)."""
    if is_recurrent(spec):
        return build_rnn(spec, in_dim, width, classes, seeds)
    return build_mlp(spec, in_dim, width, depth, classes, seeds)


def forward(model: MLP | RNN, x: torch.Tensor, training: bool, exact_hidden_grads: bool = True):
    """-> logits (M, B, classes) and the hidden states [(M, B, width)] the statistics and forces read.
    `exact_hidden_grads`: whether each hidden state's retained .grad must be the full dL/dh (a logging step's
    statistics read it); False lets an LSTM run its sequence as one cheaper autograd node (rnn_forward). An
    MLP's are always exact."""
    if isinstance(model, RNN):
        return rnn_forward(model, x, training, exact_hidden_grads)
    return mlp_forward(model, x, training)


def to_device(model: MLP | RNN, device) -> MLP | RNN:
    return (rnn_to_device if isinstance(model, RNN) else mlp_to_device)(model, device)
