"""The covariance force (seed 000; docs/design.md#the-covariance-force), added to the gradient at every hidden
activation.

For each class k, C_k / E_k are the correctly / wrongly classified examples of class k in the batch. Neuron j
of a layer gets a separation s = (mean_E - mean_C)^2 / (var_C + var_E + eps), bounded to w = s / (1 + s),
and each erroneous example i is pushed by f_ij = w_kj (a_ij - mu_kj): the gradient of
0.5 * w * (a - mu)^2 with mu, w held constant, so that gradient descent pulls it towards the correct
examples' mean. The gradient arriving at `a` becomes g + lambda * f / B and flows on to earlier layers.
"""

import functools

import torch

from covbench.components import register
from covbench.components.aux import Aux, no_params
from covbench.components.hyper import per_model

EPS = 1e-8


@functools.cache
def _offsets(models: int, stride: int, device: torch.device) -> torch.Tensor:
    """(M, 1) start of each model's block of rows when the models' per-group rows are stacked."""
    return (torch.arange(models, device=device) * stride).unsqueeze(1)


@functools.cache
def _ones(rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.ones(rows, 1, dtype=dtype, device=device)


def covariance_force(
    acts: torch.Tensor, labels: torch.Tensor, correct: torch.Tensor, classes: int, scale: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """scale * f (M, B, N) for post-activations acts (M, B, N), zero for correct examples; and (M,) the fraction
    of groups that exert a force on this batch (|C_k| >= 2 and |E_k| >= 1: `active_groups`,
    docs/design.md#per-layer-statistics).

    N may hold several layers' neurons side by side: the groups depend only on the example, so every
    layer's statistics come out of the same few row operations. Groups 0..K-1 are C_k and K..2K-1 are E_k;
    each example's row is summed into its group (index_add_) and each group's row handed back to its
    examples (index_select), one pass over the activations each.
    A group of one has variance 0. w = s / (1 + s) is computed as d^2 / (d^2 + var_C + var_E + eps), the
    same number in fewer kernels (at depth 2 the force costs what its kernel launches cost, not arithmetic).
    A class with fewer than two correct examples exerts no force; one with no erroneous example has nobody
    to push, so it needs no test.
    """
    acts = acts.detach()
    models, batch, neurons = acts.shape
    groups = 2 * classes
    rows = (labels + _offsets(models, groups, acts.device)).add_(~correct, alpha=classes).flatten()
    flat = acts.reshape(models * batch, neurons)
    # counts by index_add_ rather than bincount, which scans its input for min and max (a host sync on a GPU)
    count = acts.new_zeros(models * groups, 1).index_add_(0, rows, _ones(models * batch, acts.dtype, acts.device))
    sums = acts.new_zeros(2, models * groups, neurons)  # group sums of activations, then of squared deviations
    mean = sums[0].index_add_(0, rows, flat).div_(count.clamp(min=1))
    deviation = (flat - mean.index_select(0, rows)).square_()
    var = sums[1].index_add_(0, rows, deviation).div_((count - 1).clamp_(min=1))
    mean, var, count = (t.view(models, groups, -1) for t in (mean, var, count))
    active = ((count[:, :classes] >= 2) & (count[:, classes:] >= 1)).flatten(1).float().mean(1)
    mean_c = mean[:, :classes]
    gap = (mean[:, classes:] - mean_c).square_()
    weight = gap.div_((var[:, :classes] + var[:, classes:]).add_(gap).add_(EPS)).mul_(count[:, :classes] >= 2)
    # Each group's (w, mu_C) row, handed to its examples: error group E_k carries class k's; the correct
    # groups carry w = 0, so correct examples get no force.
    table = acts.new_zeros(models, groups, 2 * neurons)
    torch.mul(weight, scale, out=table[:, classes:, :neurons])
    table[:, classes:, neurons:] = mean_c
    per_example = table.view(-1, 2 * neurons).index_select(0, rows).view(models, batch, 2 * neurons)
    return per_example[..., :neurons] * (acts - per_example[..., neurons:]), active


def _apply(acts, logits, labels, correct, params, spec, progress, pooled):
    """All hidden layers' forces from one call (layers side by side), handed back per layer for the training
    loop to seed into backpropagation (no extra loss term, no autograd node, no hook per layer), with the
    fraction of active groups."""
    batch = labels.shape[1]
    classes = 1 if pooled else logits.shape[-1]
    group = torch.zeros_like(labels) if pooled else labels
    side_by_side = torch.cat([a.detach() for a in acts], dim=-1)  # (M, B, L * n)
    scale = per_model(spec["cov_lambda"], side_by_side, 3) / batch
    force, active = covariance_force(side_by_side, group, correct, classes, scale)
    return None, list(force.chunk(len(acts), dim=-1)), active


register("aux", "covariance")(Aux(no_params, lambda *a: _apply(*a, pooled=False)))
register("aux", "covariance_pooled")(Aux(no_params, lambda *a: _apply(*a, pooled=True)))
