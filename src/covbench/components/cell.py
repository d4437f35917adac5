"""Recurrent cells and recurrent initializations (the RNN's `cell` and `recurrent_init` components).

Weights follow the models' (fan_in, fan_out) layout: W_ih (in, G*H), W_hh (H, G*H) are PyTorch's weight_ih and
weight_hh transposed, with the G gate blocks side by side in PyTorch's order (LSTM i, f, g, o; GRU r, z, n), so
weights copy to and from nn.RNN / nn.LSTM / nn.GRU. A cell's step reads `gx`, the input projection of its time
step, which rnn.forward computes for all steps in one matmul before the loop.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from covbench.components import register
from covbench.components.lstm_sequence import lstm_sequence


@dataclass(frozen=True)
class Cell:
    gates: int  # G: gate blocks in W_ih, W_hh and the biases
    step: Callable  # (gx, h, c, W_hh, b_hh) -> (h, c); c is None except for the LSTM
    # Whether b_hh adds to the preactivation as b_ih does, so the input projection can carry it; the GRU's n gate
    # multiplies its part of b_hh by r, so its step adds b_hh itself.
    folds_hh_bias: bool
    saturated: Callable[[torch.Tensor], torch.Tensor]  # bool mask of hidden units at an asymptote or dead
    # (x, W_ih, b_ih + b_hh, W_hh) -> all hidden states (M, T, B, H) as one autograd node, or None: the explicit
    # loop only. Much cheaper than the loop, but its h_t.grad holds only the gradient given to h_t, not the full
    # dL/dh_t that a logging step's statistics read (models.rnn.rnn_forward chooses).
    sequence: Callable | None = None


def _tanh_step(gx, h, c, w_hh, b_hh):
    return torch.tanh(torch.baddbmm(gx, h, w_hh)), c


def _relu_step(gx, h, c, w_hh, b_hh):
    return torch.relu(torch.baddbmm(gx, h, w_hh)), c


def _lstm_step(gx, h, c, w_hh, b_hh):
    """PyTorch's LSTM: c' = f c + i g, h' = o tanh(c'). One split (its backward is one cat), not four slices
    (each slice's backward allocates a full-width zero gradient)."""
    hidden = h.shape[-1]
    z_if, z_g, z_o = torch.baddbmm(gx, h, w_hh).split([2 * hidden, hidden, hidden], dim=-1)
    i, f = torch.sigmoid(z_if).chunk(2, dim=-1)
    c = torch.addcmul(f * c, i, torch.tanh(z_g))
    return torch.sigmoid(z_o) * torch.tanh(c), c


def _gru_step(gx, h, c, w_hh, b_hh):
    """PyTorch's GRU: n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h = n + z (h - n)."""
    hidden = h.shape[-1]
    gx_rz, gx_n = gx.split([2 * hidden, hidden], dim=-1)
    gh_rz, gh_n = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh).split([2 * hidden, hidden], dim=-1)
    r, z = torch.sigmoid(gx_rz + gh_rz).chunk(2, dim=-1)
    n = torch.tanh(torch.addcmul(gx_n, r, gh_n))
    return torch.addcmul(n, z, h - n), c


def _near_one(h):
    return h.abs() > 0.99


register("cell", "tanh")(Cell(1, _tanh_step, True, _near_one))
register("cell", "relu")(Cell(1, _relu_step, True, lambda h: h == 0))
register("cell", "lstm")(Cell(4, _lstm_step, True, _near_one, lstm_sequence))
register("cell", "gru")(Cell(3, _gru_step, False, _near_one))


# Recurrent inits: (in_dim, hidden, gates, generator) -> W_ih (in, G*H), W_hh (H, G*H), b_ih (G*H,), b_hh (G*H,).


def _uniform(shape, bound, gen):
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


@register("recurrent_init", "default")
def default(in_dim, hidden, gates, gen):
    """PyTorch's nn.RNN / LSTM / GRU default: every weight and bias U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden)
    return (
        _uniform((in_dim, gates * hidden), bound, gen),
        _uniform((hidden, gates * hidden), bound, gen),
        _uniform((gates * hidden,), bound, gen),
        _uniform((gates * hidden,), bound, gen),
    )


def random_orthogonal(n, gen):
    """Haar-random orthogonal n x n, as torch.nn.init.orthogonal_ draws it (QR of a Gaussian, columns signed by
    diag(R) so the factorization is unique), from the given generator."""
    q, r = torch.linalg.qr(torch.randn((n, n), generator=gen))
    return q * torch.sign(torch.diagonal(r))


@register("recurrent_init", "orthogonal")
def orthogonal(in_dim, hidden, gates, gen):
    """The default with each gate's recurrent block a random orthogonal matrix (Saxe et al. 2014), so at init the
    recurrence preserves the norm of h."""
    w_ih, _, b_ih, b_hh = default(in_dim, hidden, gates, gen)
    w_hh = torch.cat([random_orthogonal(hidden, gen) for _ in range(gates)], dim=1)
    return w_ih, w_hh, b_ih, b_hh


@register("recurrent_init", "identity")
def identity(in_dim, hidden, gates, gen):
    """IRNN (Le et al. 2015): recurrent blocks the identity, biases zero, input weights N(0, 0.001^2)."""
    zeros = torch.zeros(gates * hidden)
    return (
        torch.randn((in_dim, gates * hidden), generator=gen) * 0.001,
        torch.eye(hidden).repeat(1, gates),
        zeros,
        zeros.clone(),
    )
