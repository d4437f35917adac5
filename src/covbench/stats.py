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
    "act_mean", "act_std", "saturation", "cov_force_norm", "update_ratio",
)


def _hidden(tensors):
    return tensors[:-1]


def before_step(model: MLP, acts: list[torch.Tensor], forces, initial_weights) -> torch.Tensor:
    """Everything but update_ratio, from the gradients and activations of this step: (M, L, 8)."""
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
    acts = [a.detach() for a in acts]
    act_mean = torch.stack([a.flatten(1).mean(1) for a in acts], dim=1)
    act_std = torch.stack([a.flatten(1).std(1) for a in acts], dim=1)
    saturation = torch.stack([saturated(a).flatten(1).float().mean(1) for a in acts], dim=1)
    force_norm = (torch.zeros_like(bias_grad_norm) if forces is None
                  else torch.stack([f.flatten(1).norm(dim=1) for f in forces], dim=1))
    return torch.stack(
        [bias_grad_norm, weight_grad_norm, grad_rms, weight_drift, act_mean, act_std, saturation, force_norm], dim=-1
    )


def update_ratio(model: MLP, weights_before: list[torch.Tensor]) -> torch.Tensor:
    """||W(t+1) - W(t)|| / ||W(t)|| for the step just taken: (M, L)."""
    return torch.stack(
        [(w.detach() - w_old).flatten(1).norm(dim=1) / w_old.flatten(1).norm(dim=1)
         for w, w_old in zip(_hidden(model.weights), weights_before)],
        dim=1,
    )
