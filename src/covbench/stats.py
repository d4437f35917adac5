"""Per-layer learning-speed statistics (DESIGN section 4), gathered on the device.

Each function returns (M, L) tensors without a host sync; the training loop stacks them and copies them
to the host once per epoch.
"""
import torch

from covbench import components
from covbench.models import MLP

# Column order of the stacked (M, L, len(STAT_NAMES)) record.
STAT_NAMES = (
    "bias_grad_norm", "weight_grad_norm", "grad_rms", "weight_drift",
    "act_mean", "act_std", "saturation", "cov_force_norm",
    "force_grad_ratio", "force_grad_cosine", "active_groups", "update_ratio",
)


def _hidden(tensors):
    return tensors[:-1]


def force_against_gradient(acts: list[torch.Tensor], forces: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """(M, L) each: cov_force_norm ||f||, force_grad_ratio ||f|| / ||g|| and force_grad_cosine <f, g> / (||f|| ||g||),
    per model over the batch, where f is the force added at a layer's activations and g = dL/da the backpropagated
    gradient it joins.

    The loop seeds the forces into backpropagation beside the loss, so the gradient a retained activation ends up
    with is g + f (g already carries the forces of later layers, as they flow down): g is that minus f. A zero
    force (no active group) has ratio 0 and no direction: its cosine is NaN, so summaries of the cosine are over
    the steps where the force acts.
    """
    norm, ratio, cosine = [], [], []
    for a, f in zip(acts, forces):
        f = f.flatten(1)
        g = a.grad.flatten(1) - f
        f_norm, g_norm = f.norm(dim=1), g.norm(dim=1)
        norm.append(f_norm)
        ratio.append(f_norm / g_norm)
        cosine.append(((f * g).sum(1) / (f_norm * g_norm)).masked_fill(f_norm == 0, float("nan")))
    return torch.stack(norm, dim=1), torch.stack(ratio, dim=1), torch.stack(cosine, dim=1)


def before_step(model: MLP, acts: list[torch.Tensor], forces, active_groups, initial_weights) -> torch.Tensor:
    """Everything but update_ratio, from the gradients and activations of this step: (M, L, S - 1).

    Without an aux force, cov_force_norm is 0 and the force diagnostics are NaN (DESIGN section 4)."""
    weights = _hidden(model.weights)
    bias_grad_norm = torch.stack([b.grad.norm(dim=1) for b in model.layer_biases()], dim=1)
    weight_grad_norm = torch.stack([w.grad.flatten(1).norm(dim=1) for w in weights], dim=1)
    numel = torch.tensor([w[0].numel() for w in weights], dtype=weight_grad_norm.dtype, device=weight_grad_norm.device)
    grad_rms = weight_grad_norm / numel.sqrt()
    weight_drift = torch.stack(
        [(w.detach() - w0).flatten(1).norm(dim=1) / w0.flatten(1).norm(dim=1) for w, w0 in zip(weights, initial_weights)],
        dim=1,
    )
    saturated = components.get("activation", model.spec["activation"]).saturated
    values = [a.detach() for a in acts]
    act_mean = torch.stack([a.flatten(1).mean(1) for a in values], dim=1)
    act_std = torch.stack([a.flatten(1).std(1) for a in values], dim=1)
    saturation = torch.stack([saturated(a).flatten(1).float().mean(1) for a in values], dim=1)
    if forces is None:
        force_norm = torch.zeros_like(bias_grad_norm)
        ratio = cosine = active = torch.full_like(bias_grad_norm, float("nan"))
    else:
        force_norm, ratio, cosine = force_against_gradient(acts, forces)
        active = active_groups.unsqueeze(1).expand_as(force_norm)  # the groups are the batch's, shared by layers
    return torch.stack(
        [bias_grad_norm, weight_grad_norm, grad_rms, weight_drift, act_mean, act_std, saturation, force_norm,
         ratio, cosine, active], dim=-1
    )


def update_ratio(model: MLP, weights_before: list[torch.Tensor]) -> torch.Tensor:
    """||W(t+1) - W(t)|| / ||W(t)|| for the step just taken: (M, L)."""
    return torch.stack(
        [(w.detach() - w_old).flatten(1).norm(dim=1) / w_old.flatten(1).norm(dim=1)
         for w, w_old in zip(_hidden(model.weights), weights_before)],
        dim=1,
    )
