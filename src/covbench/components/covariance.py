"""The covariance force (seed 000; DESIGN section 3), added to the gradient at every hidden activation.

For each class k, C_k / E_k are the correctly / wrongly classified examples of class k in the batch. Neuron j
of a layer gets a separation s = (mean_E - mean_C)^2 / (var_C + var_E + eps), bounded to w = s / (1 + s),
and each erroneous example i is pushed by f_ij = w_kj (a_ij - mu_kj): the gradient of
0.5 * w * (a - mu)^2 with mu, w held constant, so that gradient descent pulls it towards the correct
examples' mean. The gradient arriving at `a` becomes g + lambda * f / B and flows on to earlier layers.
"""
import torch
import torch.nn.functional as F

from covbench.components import register
from covbench.components.aux import Aux, no_params
from covbench.hyper import per_model

EPS = 1e-8


def _take(per_group: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """per_group (M, G, n), group (M, B) -> each example's row (M, B, n), as one row gather (index_select is
    several times faster than gather with an expanded index on CPU)."""
    models, groups, width = per_group.shape
    rows = group + groups * torch.arange(models, device=group.device).unsqueeze(1)
    return per_group.reshape(models * groups, width).index_select(0, rows.flatten()).view(*group.shape, width)


def covariance_force(acts: torch.Tensor, labels: torch.Tensor, correct: torch.Tensor, classes: int) -> torch.Tensor:
    """f (M, B, n) for one layer's post-activations acts (M, B, n); zero for correct examples.

    Groups 0..K-1 are C_k and K..2K-1 are E_k, so both sides' means and unbiased variances come from one
    pair of batched matmuls (variance 0 for a group of one).
    """
    acts = acts.detach()
    wrong = ~correct
    group = labels + classes * wrong
    members = F.one_hot(group, 2 * classes).to(acts.dtype).transpose(1, 2)  # (M, 2K, B)
    count = members.sum(2, keepdim=True)
    mean = torch.bmm(members, acts) / count.clamp(min=1)
    var = torch.bmm(members, (acts - _take(mean, group)).square()) / (count - 1).clamp(min=1)
    mean_c, mean_e = mean[:, :classes], mean[:, classes:]
    separation = (mean_e - mean_c).square() / (var[:, :classes] + var[:, classes:] + EPS)
    active = (count[:, :classes] >= 2) & (count[:, classes:] >= 1)
    weight = separation / (1 + separation) * active
    return _take(weight, labels) * (acts - _take(mean_c, labels)) * wrong.unsqueeze(-1)


def _apply(acts, logits, labels, params, spec, progress, pooled):
    """All hidden layers have the same width, so their forces are computed in one batched call
    (layers folded into the model dimension) instead of one call per layer."""
    classes = 1 if pooled else logits.shape[-1]
    correct = logits.detach().argmax(-1) == labels
    group = torch.zeros_like(labels) if pooled else labels
    models, batch = labels.shape
    layers = len(acts)
    stacked = torch.stack([a.detach() for a in acts], dim=1).flatten(0, 1)  # (M * L, B, n)
    force = covariance_force(stacked, group.repeat_interleave(layers, 0), correct.repeat_interleave(layers, 0), classes)
    force = force.view(models, layers, batch, -1) * per_model(spec["cov_lambda"], force, 4) / batch
    for layer, a in enumerate(acts):
        a.register_hook(lambda grad, f=force[:, layer]: grad + f)
    return None, force


register("aux", "covariance")(Aux(no_params, lambda *a: _apply(*a, pooled=False)))
register("aux", "covariance_pooled")(Aux(no_params, lambda *a: _apply(*a, pooled=True)))
