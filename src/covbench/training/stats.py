"""Per-layer learning-speed statistics (docs/design.md#per-layer-statistics and docs/design.md#the-recurrent-track),
gathered on the device.

Each function returns (M, L) tensors without a host sync; the training loop stacks them and copies them
to the host once per epoch. A recurrent network's "layers" are its time steps (docs/design.md#the-recurrent-track): its
rows are the logged steps t (models.rnn.logged_steps), its per-layer weight statistics NaN, and the statistics of its
two weight matrices (input and recurrent) the same on every row of a step.
"""

import torch

from covbench import components
from covbench.models import MLP, RNN
from covbench.models.mlp import hidden_weight_norm, hidden_weight_numel
from covbench.subnormals import norm_of, std_of

# Column order of the stacked (M, L, len(STAT_NAMES)) record.
STAT_NAMES = (
    "bias_grad_norm",
    "weight_grad_norm",
    "grad_rms",
    "weight_drift",
    "act_mean",
    "act_std",
    "saturation",
    "cov_force_norm",
    "force_grad_ratio",
    "force_grad_cosine",
    "active_groups",
    "hidden_grad_norm",
    "input_weight_grad_norm",
    "recurrent_weight_grad_norm",
    "update_ratio",
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
        f = f.flatten(1).double()  # float64, as norm_of: products of small entries stay above the subnormals
        g = a.grad.flatten(1).double() - f
        f_norm, g_norm = f.norm(dim=1), g.norm(dim=1)
        norm.append(f_norm)
        ratio.append(f_norm / g_norm)
        cosine.append(((f * g).sum(1) / (f_norm * g_norm)).masked_fill(f_norm == 0, float("nan")))
    dtype = acts[0].dtype
    return tuple(torch.stack(values, dim=1).to(dtype) for values in (norm, ratio, cosine))


def before_step(
    model: MLP | RNN, acts: list[torch.Tensor], forces, active_groups, initial_weights, layers: list[int]
) -> torch.Tensor:
    """Everything but update_ratio, from the gradients and activations of this step: (M, L, S - 1), L = len(layers)
    (1-based: every hidden layer of an MLP, the logged time steps of a recurrent network). The activations'
    gradients must have been retained: hidden_grad_norm is ||dL/da|| over the batch, everything that arrives at
    a layer's output (a recurrent state's recurrent path and later layers' forces included).

    Without an aux force, cov_force_norm is 0 and the force diagnostics are NaN
    (docs/design.md#per-layer-statistics)."""
    if isinstance(model, RNN):
        return _in_time(model, acts, forces, active_groups, initial_weights, layers)
    weights = _hidden(model.weights)
    bias_grad_norm = torch.stack([norm_of(b.grad) for b in model.layer_biases()], dim=1)
    weight_grad_norm = torch.stack([norm_of(w.grad) for w in weights], dim=1)
    numel = torch.tensor(
        [hidden_weight_numel(model, l) for l in range(len(weights))],
        dtype=weight_grad_norm.dtype,
        device=weight_grad_norm.device,
    )
    grad_rms = weight_grad_norm / numel.sqrt()
    weight_drift = torch.stack(
        [
            norm_of(w.detach() - w0) / hidden_weight_norm(model, l, w0)
            for l, (w, w0) in enumerate(zip(weights, initial_weights))
        ],
        dim=1,
    )
    saturated = components.get("activation", model.spec["activation"]).saturated
    values = [a.detach() for a in acts]
    act_mean = torch.stack([a.flatten(1).mean(1) for a in values], dim=1)
    act_std = torch.stack([std_of(a) for a in values], dim=1)
    saturation = torch.stack([saturated(a).flatten(1).float().mean(1) for a in values], dim=1)
    if forces is None:
        force_norm = torch.zeros_like(bias_grad_norm)
        ratio = cosine = active = torch.full_like(bias_grad_norm, float("nan"))
    else:
        force_norm, ratio, cosine = force_against_gradient(acts, forces)
        active = active_groups.unsqueeze(1).expand_as(force_norm)  # the groups are the batch's, shared by layers
    hidden_grad_norm = torch.stack([norm_of(a.grad) for a in acts], dim=1)
    not_recurrent = torch.full_like(bias_grad_norm, float("nan"))
    return torch.stack(
        [
            bias_grad_norm,
            weight_grad_norm,
            grad_rms,
            weight_drift,
            act_mean,
            act_std,
            saturation,
            force_norm,
            ratio,
            cosine,
            active,
            hidden_grad_norm,
            not_recurrent,
            not_recurrent,
        ],
        dim=-1,
    )


def _in_time(model: RNN, states: list[torch.Tensor], forces, active_groups, initial_weights, steps: list[int]):
    """before_step of a recurrent network, at the time steps `steps`."""
    picked = [states[t - 1] for t in steps]
    values = [h.detach() for h in picked]
    models = values[0].shape[0]

    def per_step(per_model):  # (M,) -> (M, L): a weight matrix's statistic on every row of the step
        return per_model.unsqueeze(1).expand(models, len(steps))

    input_grad, recurrent_grad = (norm_of(w.grad) for w in model.weights[:2])
    recurrent, recurrent_at_init = model.weights[1].detach(), initial_weights[1]
    drift = norm_of(recurrent - recurrent_at_init) / norm_of(recurrent_at_init)
    saturated = components.get("cell", model.spec["cell"]).saturated
    nan = torch.full((models, len(steps)), float("nan"), device=values[0].device)
    if forces is None:
        force_norm, ratio, cosine, active = torch.zeros_like(nan), nan, nan, nan
    else:
        force_norm, ratio, cosine = force_against_gradient(picked, [forces[t - 1] for t in steps])
        active = active_groups.unsqueeze(1).expand_as(force_norm)
    return torch.stack(
        [
            nan,
            nan,
            nan,
            per_step(drift),
            torch.stack([h.flatten(1).mean(1) for h in values], dim=1),
            torch.stack([std_of(h) for h in values], dim=1),
            torch.stack([saturated(h).flatten(1).float().mean(1) for h in values], dim=1),
            force_norm,
            ratio,
            cosine,
            active,
            torch.stack([norm_of(h.grad) for h in picked], dim=1),
            per_step(input_grad),
            per_step(recurrent_grad),
        ],
        dim=-1,
    )


def update_ratio(model: MLP | RNN, weights_before: list[torch.Tensor], layers: list[int]) -> torch.Tensor:
    """||W(t+1) - W(t)|| / ||W(t)|| for the step just taken: (M, L); a recurrent network's recurrent matrix on
    every row."""

    if isinstance(model, RNN):
        w, w_old = model.weights[1], weights_before[1]
        return (norm_of(w.detach() - w_old) / norm_of(w_old)).unsqueeze(1).expand(-1, len(layers))
    return torch.stack(
        [
            norm_of(w.detach() - w_old) / hidden_weight_norm(model, l, w_old)
            for l, (w, w_old) in enumerate(zip(_hidden(model.weights), weights_before))
        ],
        dim=1,
    )
