"""A one-layer recurrent network `x_1..x_T -> cell -> linear output on h_T`, batched over models as models.MLP is.

Every tensor carries the leading model dimension M (one per seed or trial), each model drawn from its own
generator (models.init_generators), so a seed's network does not depend on which others share its batch. The cell
and the recurrent init are components (components.cell); their equations and gate layouts are PyTorch's, with both
b_ih and b_hh kept, so weights copy to and from nn.RNN / nn.LSTM / nn.GRU. The model offers MLP's interface
(parameters, weights, biases, layer_biases, buffers, depth), so the training loop needs no second path.
"""

import math
from dataclasses import dataclass, field

import torch

from covbench import components
from covbench.models.mlp import init_generators, linear
from covbench.subnormals import norm_of


@dataclass
class RNN:
    spec: dict  # cell, recurrent_init, forget_bias
    weights: list[torch.Tensor]  # W_ih (M, in, G*H), W_hh (M, H, G*H), W_out (M, H, classes)
    biases: list[torch.Tensor]  # b_ih (M, G*H), b_hh (M, G*H), b_out (M, classes)
    norm_states: list[dict] = field(default_factory=list)  # none: kept for MLP's interface
    aux_params: dict = field(default_factory=dict)
    alphas: list[torch.Tensor] = field(default_factory=list)
    generators: list[torch.Generator] = field(default_factory=list)  # none: no cell draws in training

    @property
    def depth(self) -> int:
        """One recurrent layer; the number of time steps is the data's, unknown at build."""
        return 1

    def parameters(self) -> list[torch.Tensor]:
        """Trainable tensors in a fixed order (the optimizer's and the checkpoint's), as MLP.parameters."""
        return [*self.weights, *self.layer_biases(), self.biases[-1]]

    def layer_biases(self) -> list[torch.Tensor]:
        """b_ih and b_hh: the biases before the output layer."""
        return self.biases[:-1]

    def buffers(self) -> list[torch.Tensor]:
        return []


def build_rnn(spec: dict, in_dim: int, hidden: int, classes: int, seeds: list[int]) -> RNN:
    """Per seed, in this order from its generator: the recurrent init's W_ih, W_hh, b_ih, b_hh, then the output
    layer as PyTorch's default nn.Linear(hidden, classes) draws it (weights and bias U(-1/sqrt(H), 1/sqrt(H)))."""
    cell = components.get("cell", spec["cell"])
    init = components.get("recurrent_init", spec["recurrent_init"])
    bound = 1.0 / math.sqrt(hidden)
    drawn = []
    for gen in init_generators(seeds):
        params = list(init(in_dim, hidden, cell.gates, gen))
        params += [
            (torch.rand((hidden, classes), generator=gen) * 2 - 1) * bound,
            (torch.rand((classes,), generator=gen) * 2 - 1) * bound,
        ]
        drawn.append(params)
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = (torch.stack(p) for p in zip(*drawn))
    if spec["cell"] == "lstm":
        # Jozefowicz et al. 2015: a forget gate open at init; added to the drawn bias, so 0 is PyTorch's default.
        b_ih[:, hidden : 2 * hidden] += spec.get("forget_bias", 1.0)
    return RNN(spec, [w_ih, w_hh, w_out], [b_ih, b_hh, b_out])


def _input_projection(x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """All steps' x_t W_ih + bias in one batched matmul -> (M, T, B, G*H). Kept model-major: a step's slice is then
    a strided view the step's baddbmm reads as is, and unbind's backward stacks the step grads straight into
    this layout, where a time-major one would cost a full copy of the gradient. A shared x is expanded, not
    copied."""
    models, in_dim = w_ih.shape[:2]
    batch, steps = x.shape[-3], x.shape[-2]
    time_major = x.transpose(-3, -2).reshape(*x.shape[:-3], steps * batch, in_dim).expand(models, -1, -1)
    return torch.baddbmm(bias.unsqueeze(1), time_major, w_ih).view(models, steps, batch, -1)


def rnn_forward(model: RNN, x: torch.Tensor, training: bool, exact_hidden_grads: bool = True):
    """x (M, B, T, in) or shared (B, T, in) -> logits (M, B, classes) of h_T, and [h_1, ..., h_T], each (M, B, H).

    h_0 = c_0 = 0. A force added to h_t in backward flows back through earlier steps either way. With
    `exact_hidden_grads` (under autograd), the explicit cell loop: the h_t are the very tensors the next step
    consumes, so after `h_t.retain_grad()` and backward h_t.grad is the full dL/dh_t, recurrent path included, which
    a logging step's statistics read. Without it a cell with a whole-sequence form (Cell.sequence: the LSTM's) runs
    as one autograd node, much cheaper to record and to differentiate, whose h_t.grad would hold only the gradient
    given to h_t itself; so does its forward without autograd. `training` is unused (no dropout or norm); kept for models.forward's signature."""
    cell = components.get("cell", model.spec["cell"])
    w_ih, w_hh, w_out = model.weights
    b_ih, b_hh, b_out = model.biases
    models, hidden = w_hh.shape[:2]
    batch = x.shape[-3]
    if cell.sequence is not None and not (exact_hidden_grads and torch.is_grad_enabled()):
        hidden_states = list(cell.sequence(x, w_ih, b_ih + b_hh, w_hh).unbind(1))
        return linear(hidden_states[-1], w_out, b_out), hidden_states
    gx = _input_projection(x, w_ih, b_ih + b_hh if cell.folds_hh_bias else b_ih)
    h = x.new_zeros(models, batch, hidden)
    c = torch.zeros_like(h)
    hidden_states = []
    for gx_t in gx.unbind(1):  # unbind's backward stacks the step grads once; indexing would allocate per step
        h, c = cell.step(gx_t, h, c, w_hh, b_hh)
        hidden_states.append(h)
    return linear(h, w_out, b_out), hidden_states


def rnn_to_device(model: RNN, device) -> RNN:
    return RNN(model.spec, [w.to(device) for w in model.weights], [b.to(device) for b in model.biases])


LOGGED_STEPS = 10  # time steps whose statistics are logged (logged_steps), whatever the sequence length


# Per-time-step statistics for a logging step: after backward, on device, no host sync. `steps` are 1-based.


def hidden_grad_norm(hidden_states: list[torch.Tensor], steps: list[int]) -> torch.Tensor:
    """||dL/dh_t|| over the batch and units, per model: (M, S). Needs h_t.retain_grad() before backward."""
    return torch.stack([norm_of(hidden_states[t - 1].grad) for t in steps], dim=1)


def temporal_vanishing_index(hidden_states: list[torch.Tensor]) -> torch.Tensor:
    """log10(||dL/dh_1|| / ||dL/dh_T||) per model (M,), docs/design.md#the-recurrent-track: -k where the gradient
    arriving at the first step is k decades smaller than at the last (it vanished back through time), positive where it
    grew."""
    first, last = hidden_grad_norm(hidden_states, [1, len(hidden_states)]).unbind(1)
    return torch.log10(first / last)


def saturation_over_time(hidden_states: list[torch.Tensor], steps: list[int], cell: str) -> torch.Tensor:
    """Fraction of units saturated (|h| > 0.99; dead, h == 0, for relu), per model and step: (M, S)."""
    saturated = components.get("cell", cell).saturated
    return torch.stack([saturated(hidden_states[t - 1].detach()).float().mean((1, 2)) for t in steps], dim=1)


def weight_grad_norms(model: RNN) -> tuple[torch.Tensor, torch.Tensor]:
    """(||dL/dW_ih||, ||dL/dW_hh||) per model, each (M,)."""
    w_ih, w_hh, _ = model.weights
    return norm_of(w_ih.grad), norm_of(w_hh.grad)


def logged_steps(steps: int, n: int) -> list[int]:
    """At most n sorted 1-based steps: 1, 28 (the end of the first row of a row-by-row MNIST image) when T >= 28,
    T, and evenly spaced ones between. Assumes n >= 3."""
    anchors = {1, steps} | ({28} if steps >= 28 else set())
    spaced = max(n - len(anchors) + 2, 2)  # linspace's own ends are the anchors 1 and T
    return sorted(anchors | {round(1 + (steps - 1) * k / (spaced - 1)) for k in range(spaced)})
