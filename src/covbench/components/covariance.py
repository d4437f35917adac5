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


def _group_mean_var(members: torch.Tensor, acts: torch.Tensor):
    """members (M, B, K) 0/1, acts (M, B, n) -> count (M, K), mean and unbiased var (M, K, n); var 0 below 2."""
    count = members.sum(1)
    mean = torch.einsum("mbk,mbn->mkn", members, acts) / count.clamp(min=1).unsqueeze(-1)
    centered = acts - torch.einsum("mbk,mkn->mbn", members, mean)
    sq = torch.einsum("mbk,mbn->mkn", members, centered.square())
    var = sq / (count - 1).clamp(min=1).unsqueeze(-1)
    return count, mean, var


def covariance_force(acts: torch.Tensor, labels: torch.Tensor, correct: torch.Tensor, classes: int) -> torch.Tensor:
    """f (M, B, n) for one layer's post-activations acts (M, B, n); zero for correct examples."""
    acts = acts.detach()
    onehot = F.one_hot(labels, classes).to(acts.dtype)
    right = onehot * correct.unsqueeze(-1).to(acts.dtype)
    wrong = onehot - right
    count_c, mean_c, var_c = _group_mean_var(right, acts)
    count_e, mean_e, var_e = _group_mean_var(wrong, acts)
    separation = (mean_e - mean_c).square() / (var_c + var_e + EPS)
    active = ((count_c >= 2) & (count_e >= 1)).to(acts.dtype).unsqueeze(-1)
    weight = separation / (1 + separation) * active
    # Gather each erroneous example's class statistics; `wrong` is zero on correct examples.
    weight_i = torch.einsum("mbk,mkn->mbn", wrong, weight)
    mean_i = torch.einsum("mbk,mkn->mbn", wrong, mean_c)
    return weight_i * (acts - mean_i)


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
    return None, force.flatten(2).norm(dim=2)


register("aux", "covariance")(Aux(no_params, lambda *a: _apply(*a, pooled=False)))
register("aux", "covariance_pooled")(Aux(no_params, lambda *a: _apply(*a, pooled=True)))
