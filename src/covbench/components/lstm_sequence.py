"""A whole LSTM sequence as one autograd node, for the training steps that log no statistics.

Under autograd the explicit cell loop (components.cell._lstm_step) records about ten nodes per time step and the
backward walks them one by one. LSTMSequence runs the same recurrence with autograd off, into tensors allocated
once, and its backward is the LSTM's gradient written out: a few ops per time step, then all three weight gradients
in one matmul over all steps. It takes the input sequence and W_ih rather than the projection x_t W_ih + b of the
whole sequence that the explicit loop reads: each step multiplies [x_t, h_{t-1}, 1] by [W_ih; W_hh; b] in one
matmul, so the (M, T, B, 4H) projection is never written to memory and read back (0.3 GB for a 1,000-sequence
evaluation chunk at T = 56).

The returned hidden states are one tensor: a gradient given to any of its steps (the loss at h_T, a force on any
h_t) flows back through earlier steps as through the explicit loop. What its steps' `.grad` cannot hold is the full
dL/dh_t, recurrent path included, which the per-step statistics read; logging steps keep the explicit loop.
"""

import torch
from torch.autograd.function import once_differentiable


def lstm_sequence_forward(
    x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor, w_hh: torch.Tensor, for_backward: bool = False
):
    """x (M, B, T, in) or shared (B, T, in), W_ih (M, in, 4H), bias (M, 4H) (b_ih + b_hh), W_hh (M, H, 4H), gates
    i, f, g, o as PyTorch's -> hidden states h_1..h_T (M, T, B, H); h_0 = c_0 = 0.

    A step's preactivation is one matmul, [x_t, h_{t-1}, 1] [W_ih; W_hh; b]; the rows [x_t, h_{t-1}, 1] of every
    step, kept side by side, let the backward get all three weight gradients from one matmul too. tanh x is computed
    as 2 sigmoid(2x) - 1: torch's CPU tanh is several times slower than its sigmoid, and so one sigmoid covers all
    four gates. With `for_backward`, also what the backward reads, made while each step's tensors are still in
    cache: the rows [x_t, h_{t-1}, 1] (M, T, B, in + H + 1); the factors of dz_t = (dc_t, dc_t, dc_t, dh_t) *
    factors_t (M, T, B, 4H), written over the step's gate activations, which the backward turns into dz in place;
    the forget gates (T, M, B, H); and dc_t / dh_t = o_t (1 - tanh^2 c_t) (T, M, B, H), the cell's share of the
    gradient arriving at h_t."""
    models, in_dim, gates = w_ih.shape
    hidden = gates // 4
    batch, steps = x.shape[-3], x.shape[-2]
    weights = torch.cat([w_ih, w_hh, bias.unsqueeze(1)], dim=1)
    weights[..., 2 * hidden : 3 * hidden] *= (
        2  # the g block's preactivation doubled, exactly: tanh z = 2 sigmoid(2z) - 1
    )
    hs = x.new_empty(models, steps, batch, hidden)
    factors = forget = dc_per_dh = None
    if for_backward:
        rows = x.new_empty(models, steps, batch, in_dim + hidden + 1)
        rows[..., :in_dim] = x.transpose(-3, -2)
        rows[:, 0, :, in_dim:-1] = 0  # h_0
        rows[..., -1] = 1
        row_steps = rows.unbind(1)
        factors = x.new_empty(models, steps, batch, gates)
        forget = x.new_empty(steps, models, batch, hidden)
        dc_per_dh = x.new_empty(steps, models, batch, hidden)
        act_steps = factors.unbind(1)
    else:  # not kept: one buffer serves every step
        rows = x.new_zeros(models, batch, in_dim + hidden + 1)
        rows[..., -1] = 1
        row_steps = [rows] * steps
        act_steps = [x.new_empty(models, batch, gates)] * steps
    c_prev = None
    for t, (x_t, row_t, act_t, h_t) in enumerate(zip(x.unbind(-2), row_steps, act_steps, hs.unbind(1))):
        if not for_backward:
            row_t[..., :in_dim] = x_t
        torch.bmm(row_t, weights, out=act_t)
        i, f, g, o = act_t.split(hidden, dim=-1)
        act_t.sigmoid_()
        g.mul_(2).sub_(1)
        c = i * g if c_prev is None else torch.addcmul(f * c_prev, i, g)
        tanh_c = torch.sigmoid(c * 2).mul_(2).sub_(1)
        torch.mul(o, tanh_c, out=h_t)
        if t + 1 < steps:
            row_steps[t + 1][..., in_dim:-1] = h_t
        if for_backward:
            torch.addcmul(o, h_t, tanh_c, value=-1, out=dc_per_dh[t])  # o - o tanh^2 c
            forget[t].copy_(f)
            o.addcmul_(o, o, value=-1).mul_(tanh_c)  # o (1 - o) tanh c
            i_g = i * g
            torch.addcmul(i, i_g, g, value=-1, out=g)  # i (1 - g^2)
            torch.addcmul(i_g, i_g, i, value=-1, out=i)  # g i (1 - i)
            if c_prev is None:
                f.zero_()  # c_0 = 0
            else:
                f.addcmul_(f, f, value=-1).mul_(c_prev)  # c_{t-1} f (1 - f)
        c_prev = c
    return hs, rows, factors, forget, dc_per_dh


class LSTMSequence(torch.autograd.Function):
    """(x, W_ih, bias, W_hh) -> hs (M, T, B, H), as lstm_sequence_forward, with a fused backward. x is data: it
    gets no gradient."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, w_hh):
        if x.requires_grad:
            raise ValueError("LSTMSequence computes no gradient for its input sequence")
        hs, rows, factors, forget, dc_per_dh = lstm_sequence_forward(x, w_ih, bias, w_hh, for_backward=True)
        ctx.save_for_backward(w_hh)
        ctx.buffers = rows, factors, forget, dc_per_dh
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, dhs):
        """Back from t = T carrying dh and dc: dh_t = dL/dh_t (given) + dz_{t+1} W_hh^T, dc_t = dh_t o (1 - tanh^2 c_t)
        + dc_{t+1} f_{t+1}, and dz_t = (dc g i (1-i), dc c_{t-1} f (1-f), dc i (1-g^2), dh tanh c o (1-o)), made in
        place of its factors. Then [dW_ih; dW_hh; db] = sum_t [x_t, h_{t-1}, 1]^T dz_t, one matmul over all steps."""
        if ctx.buffers is None:
            raise RuntimeError("LSTMSequence's backward runs once per forward: its saved factors become dz")
        (w_hh,) = ctx.saved_tensors
        rows, dz, forget, dc_per_dh = ctx.buffers
        ctx.buffers = None
        models, steps, batch, gates = dz.shape
        hidden = gates // 4
        w_hh_t = w_hh.transpose(1, 2)
        dz_steps, dhs_steps = dz.unbind(1), dhs.unbind(1)
        dc = None
        for t in reversed(range(steps)):
            if t == steps - 1:
                dh = dhs_steps[t]
                dc = dh * dc_per_dh[t]
            else:
                dh = torch.baddbmm(dhs_steps[t], dz_steps[t + 1], w_hh_t)
                dc = torch.addcmul(dc.mul_(forget[t + 1]), dh, dc_per_dh[t])
            dz_i, dz_f, dz_g, dz_o = dz_steps[t].split(hidden, dim=-1)
            dz_i.mul_(dc)
            dz_f.mul_(dc)
            dz_g.mul_(dc)
            dz_o.mul_(dh)
        rows = rows.view(models, steps * batch, -1)
        weights_grad = torch.bmm(rows.transpose(1, 2), dz.view(models, steps * batch, gates))
        dw_ih, dw_hh, db = weights_grad.split([rows.shape[-1] - hidden - 1, hidden, 1], dim=1)
        return None, dw_ih, db.squeeze(1), dw_hh


def lstm_sequence(x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
    """The LSTM cell's whole-sequence form (components.cell.Cell.sequence): hidden states (M, T, B, H), one autograd
    node under autograd, nothing saved without it."""
    if torch.is_grad_enabled():
        return LSTMSequence.apply(x, w_ih, bias, w_hh)
    return lstm_sequence_forward(x, w_ih, bias, w_hh)[0]
