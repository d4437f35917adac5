"""Residual connections (docs/design.md#methods-as-compositions): `residual: none | preact | skipinit | plain`.

A kind is a block `(h_{l-1}, l, ops) -> h_l` and the input of the output layer `(h_L, ops) -> ...`, written
with the model's operations (models.layer_ops): `ops.linear(l, h)` = W_l h + b_l, `ops.norm(l, z)` through norm
state l (identity without a norm), `ops.act(k, z)` the network's k-th activation counted from the input (its
per-layer parameters, PReLU's slopes, are site k's), `ops.alpha(l)` (SkipInit's scale of block l) and `ops.depth`.
The formulas count layers from 1 as docs/design.md#methods-as-compositions does, the code's l from 0. The first
hidden layer changes the width (input -> hidden), so it never has a skip. The block outputs h_l, the residual
stream, are what the statistics and the aux forces read.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from covbench.components import register


@dataclass(frozen=True)
class Residual:
    block: Callable  # (h_{l-1}, l, ops) -> h_l
    head_input: Callable  # (h_L, ops) -> what the output layer reads
    # (models, depth) -> SkipInit's learnable scales alpha_l of blocks 1..depth-1, each (M,)
    init_alphas: Callable = lambda models, depth: []
    # depth -> how many activations the network applies (ops.act's sites): depth, one per hidden layer (preact's
    # head makes up for its plain first projection); SkipInit's first layer is a plain projection, so depth - 1
    activations: Callable = lambda depth: depth


def post_linear(h, l, ops):
    """The plain MLP layer act(norm(W_l h + b_l)): the norm after the linear map, before the activation."""
    return ops.act(l, ops.norm(l, ops.linear(l, h)))


def stream(h, ops):
    return h


def plain_block(h, l, ops):
    """h + act(W h + b), the literal block: both terms carry the input's scale at init, so the variance doubles
    per block and explodes with depth. Kept for the record, not a remedy."""
    out = post_linear(h, l, ops)
    return out if l == 0 else h + out


def preact_block(h, l, ops):
    """He et al. 2016b (identity mappings): h_l = h_{l-1} + W_l act(norm(h_{l-1})) + b_l, after a plain projection
    h_1 = W_1 x + b_1. The stream itself is never normalized or activated, so signal and gradient pass every
    block unchanged. Norm state l-1 normalizes h_{l-1} on the branch. With batchnorm every reader of the stream
    (each branch and the head) subtracts its batch mean, so b_l would cancel exactly (its gradient is rounding
    noise): as He et al.'s convolutions, the linear maps then carry no bias, and norm state l's beta, the
    additive term before layer l's activation, is layer l's bias (models.build_mlp)."""
    if l == 0:
        return ops.linear(0, h)
    return h + ops.linear(l, ops.act(l - 1, ops.norm(l - 1, h)))


def preact_head(h, ops):
    """The pre-activation ResNet's final norm and activation (the last norm state) before the classifier."""
    return ops.act(ops.depth - 1, ops.norm(ops.depth - 1, h))


def skipinit_block(h, l, ops):
    """De & Smith 2020: h_l = h_{l-1} + alpha_l act(W_l h_{l-1} + b_l), alpha_l starting at 0 and no norm
    (config.validate rejects one). Every block is the identity at init, so the stream keeps the scale of its
    first layer, the plain projection W_1 x + b_1, at any depth; the head reads h_L. At init the network is
    linear; the gradient of each alpha_l (its branch's output against the gradient arriving at h_l) is nonzero,
    so the blocks switch on as training starts."""
    if l == 0:
        return ops.linear(0, h)
    return h + ops.alpha(l) * ops.act(l - 1, ops.linear(l, h))


def zero_alphas(models, depth):
    return [torch.zeros(models) for _ in range(depth - 1)]


register("residual", "none")(Residual(post_linear, stream))
register("residual", "plain")(Residual(plain_block, stream))
register("residual", "preact")(Residual(preact_block, preact_head))
register("residual", "skipinit")(
    Residual(skipinit_block, stream, init_alphas=zero_alphas, activations=lambda depth: depth - 1)
)
