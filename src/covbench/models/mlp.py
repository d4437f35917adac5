"""The MLP `input -> [hidden block] x depth -> linear output`, built from a method's components.

Every tensor carries a leading model dimension M: the M seeds of one (dataset, method, depth) train together
as one batched model (batched matmuls), each drawn from its own generator, so a seed's numbers do not depend
on which other seeds share its batch. That holds for what an activation draws in training too (RReLU's slopes:
noise_generators).
"""

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from covbench import components
from covbench.components import norm as norm_component
from covbench.models import span


@dataclass
class MLP:
    spec: dict  # the method: component names and their hyperparameters
    weights: list[torch.Tensor]  # hidden layers then output, each (M, fan_in, fan_out)
    biases: list[torch.Tensor]  # each (M, fan_out)
    norm_states: list[dict] = field(default_factory=list)  # per hidden layer, empty without a norm
    aux_params: dict = field(default_factory=dict)
    alphas: list[torch.Tensor] = field(default_factory=list)  # SkipInit's scales of blocks 2..depth, each (M,)
    act_params: list[torch.Tensor] = field(default_factory=list)  # per activation site: PReLU's slopes, each (M, n)
    # one per model for an activation that draws in training (RReLU), on the CPU whatever the device; empty otherwise
    generators: list[torch.Generator] = field(default_factory=list)
    # The first layer trained in its inputs' span (models.span): the width of its span coordinates (0: a plain layer),
    # and per hidden layer the squared norm (M,) of the weight's part no update reaches and the weight's size.
    span_width: int = 0
    frozen_sq: list[torch.Tensor] = field(default_factory=list)
    weight_numels: list[int] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return len(self.weights) - 1

    def parameters(self) -> list[torch.Tensor]:
        """Trainable tensors in a fixed order (the optimizer's and the checkpoint's)."""
        params = [*self.weights, *self.layer_biases(), self.biases[-1]]
        params += [s["gamma"] for s in self.norm_states]
        params += self.alphas
        params += self.act_params
        for value in self.aux_params.values():
            params += value if isinstance(value, list) else [value]
        return params

    def layer_biases(self) -> list[torch.Tensor]:
        """The additive bias of each hidden layer: batchnorm's beta where a norm makes the linear bias redundant
        (components.norm, components.residual's preact)."""
        if self.norm_states:
            return [s["beta"] for s in self.norm_states]
        return self.biases[:-1]

    def buffers(self) -> list[torch.Tensor]:
        return [s[k] for s in self.norm_states for k in ("running_mean", "running_var")]


def init_generators(seeds: list[int]) -> list[torch.Generator]:
    """Initialization draws from seed 2s; the data order from 2s + 1 (see covbench.training.batches.data_generators)."""
    return [torch.Generator().manual_seed(2 * s) for s in seeds]


def noise_generators(seeds: list[int]) -> list[torch.Generator]:
    """What an activation draws in training comes from seed -(s + 1): negative, so none of the seeds 2s and 2s + 1
    of initialization and data order for seeds s >= 0 (torch reads it as 2^64 - s - 1, which only seeds near 2^63
    reach)."""
    return [torch.Generator().manual_seed(-(s + 1)) for s in seeds]


def build_mlp(spec: dict, in_dim: int, width: int, depth: int, classes: int, seeds: list[int]) -> MLP:
    activation = components.get("activation", spec["activation"])
    init = components.get("init", spec["init"])
    residual = components.get("residual", spec["residual"])
    gens = init_generators(seeds)

    def layer(fan_in, fan_out, gain):
        drawn = [init(fan_in, fan_out, gain, g) for g in gens]
        return torch.stack([w for w, _ in drawn]), torch.stack([b for _, b in drawn])

    dims = [in_dim] + [width] * depth
    layers = [layer(fan_in, fan_out, activation.gain) for fan_in, fan_out in zip(dims[:-1], dims[1:])]
    layers.append(layer(width, classes, 1.0))
    models = len(seeds)
    norm_states = []
    if spec["norm"] != "none":
        norm_states = [norm_component.init_state(models, width) for _ in range(depth)]
        layers[:depth] = [(w, torch.zeros_like(b)) for w, b in layers[:depth]]  # beta takes the bias's place
    aux = components.get("aux", spec["aux"])
    aux_params = aux.init_params(models, depth, width, classes, lambda fan_in, fan_out: layer(fan_in, fan_out, 1.0))
    return MLP(
        spec,
        [w for w, _ in layers],
        [b for _, b in layers],
        norm_states,
        aux_params,
        residual.init_alphas(models, depth),
        activation.init_params(models, residual.activations(depth), width),
        noise_generators(seeds) if activation.draws else [],
    )


def mlp_to_device(model: MLP, device) -> MLP:
    move = lambda t: t.to(device)  # noqa: E731
    aux = {k: [move(t) for t in v] if isinstance(v, list) else move(v) for k, v in model.aux_params.items()}
    norms = [{k: move(t) for k, t in s.items()} for s in model.norm_states]
    return MLP(
        model.spec,
        [move(w) for w in model.weights],
        [move(b) for b in model.biases],
        norms,
        aux,
        [move(a) for a in model.alphas],
        [move(a) for a in model.act_params],
        model.generators,
        model.span_width,
        [move(t) for t in model.frozen_sq],
        model.weight_numels,
    )


def hidden_weight_norm(model: MLP, layer: int, weight: torch.Tensor) -> torch.Tensor:
    """(M,) Frobenius norm of hidden layer `layer`'s weight (0-based) given as `weight` (its present value, or one
    saved before a step): the frozen part of a first layer trained in its span (models.span) included."""
    return span.weight_norm(weight, model.frozen_sq[layer] if model.frozen_sq else None)


def hidden_weight_numel(model: MLP, layer: int) -> int:
    """Entries of hidden layer `layer`'s weight matrix, whatever coordinates it is trained in."""
    return model.weight_numels[layer] if model.weight_numels else model.weights[layer][0].numel()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (M, B, in) or shared (B, in); weight (M, in, out); bias (M, out) -> (M, B, out)."""
    if x.dim() == 2:
        return torch.matmul(x, weight) + bias.unsqueeze(1)
    return torch.baddbmm(bias.unsqueeze(1), x, weight)


def layer_ops(model: MLP, training: bool) -> SimpleNamespace:
    """The operations the residual kinds write their blocks with (components.residual), bound to `model`."""
    normalize = components.get("norm", model.spec["norm"])
    activation = components.get("activation", model.spec["activation"])

    def layer_linear(layer, h):
        if layer == 0 and model.span_width:
            return span.first_linear(h, model.weights[0], model.biases[0], model.span_width)
        return linear(h, model.weights[layer], model.biases[layer])

    return SimpleNamespace(
        linear=layer_linear,
        norm=lambda layer, z: normalize(z, model.norm_states[layer], training) if model.norm_states else z,
        act=lambda site, z: activation.fn(
            z, model.act_params[site] if model.act_params else None, training, model.generators
        ),
        alpha=lambda layer: model.alphas[layer - 1].view(-1, 1, 1),  # the first layer has none
        depth=model.depth,
    )


def mlp_forward(model: MLP, x: torch.Tensor, training: bool):
    """-> logits (M, B, classes) and each hidden layer's output [(M, B, width)] * depth: the post-activations of
    a plain MLP, the residual stream h_l of a residual one."""
    residual = components.get("residual", model.spec["residual"])
    ops = layer_ops(model, training)
    acts = []
    h = x
    for layer in range(model.depth):
        h = residual.block(h, layer, ops)
        acts.append(h)
    return linear(residual.head_input(h, ops), model.weights[-1], model.biases[-1]), acts


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch, per model: (M,)."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(labels.shape).mean(1)


def sigmoid_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Nielsen's network2 CrossEntropyCost: sigmoid outputs, binary cross-entropy summed over outputs."""
    targets = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    per_example = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
    return per_example.mean(1)


LOSSES = {"softmax_cross_entropy": softmax_cross_entropy, "sigmoid_cross_entropy": sigmoid_cross_entropy}
