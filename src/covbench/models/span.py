"""The first layer of an MLP in the span of its training inputs: the same network, trained at a fraction of the cost
where the inputs are much wider than the training set (cat/not-cat: 12,288 pixels, 168 images).

With SGD (momentum or not), clipping by global norm and no weight decay, every update of the first layer's weight W
(in, out) is a combination of the training inputs' rows, so W_t = W_0 + Q A_t, where Q (in, r) is an orthonormal
basis of the training inputs' span (r <= n_train). Writing W_0 = Q B_0 + W_perp (W_perp orthogonal to the span):

    x W_t = (x Q) C_t + x W_perp,    C_t = B_0 + A_t,

so the layer reads each example as the r + out features [x Q, x W_perp] (x W_perp is 0 for a training image) and
trains C (r, out) in place of W. Q is orthonormal, so C's gradient is Q^T dW and dW = Q dC: the gradient's norm,
the clipping, the momentum and every update are W's own, up to float rounding (tests/test_span.py pins it). The
part of W that no update reaches, W_perp, enters the layer's weight norm as a constant (MLP.frozen_sq). Each step
then multiplies batch x 268 by 268 x 100 instead of batch x 12,288 by 12,288 x 100, and the optimizer moves
168 x 100 numbers of the layer instead of 12,288 x 100.

Adam (per-coordinate step sizes) and weight decay (which shrinks W_perp too) leave the span argument, so those
methods keep the plain layer.
"""

import torch

from covbench.data.splits import distinct_models
from covbench.subnormals import norm_of


def eligible(spec: dict, hp: dict, in_dim: int, n_train: int, width: int) -> bool:
    """Whether the first layer can train in its inputs' span, and it pays: SGD without weight decay, inputs wider
    than the training set plus the layer's width."""
    return spec["optimizer"] == "sgd" and float(hp["weight_decay"]) == 0.0 and n_train + width < in_dim


@torch.no_grad()
def to_span(model, splits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reparametrize `model`'s first layer in the span of splits["x_train"] (shared (n, in) or per model
    (M, n, in)), in place, and return the splits with every x_* replaced by its features (M, n, r + out) and every
    label per model (M, n): the features depend on each model's W_0."""
    x_train = splits["x_train"]
    w0 = model.weights[0]  # (M, in, out)
    models = w0.shape[0]
    if x_train.dim() == 3:  # per-model splits: one QR per distinct split, shared by the models on it
        firsts, inverse = distinct_models(x_train)
        basis = torch.linalg.qr(x_train[firsts].transpose(-1, -2).double()).Q.to(w0.dtype)[inverse]  # (M, in, r)
    else:
        basis = torch.linalg.qr(x_train.transpose(-1, -2).double()).Q.to(w0.dtype)  # (in, r)
    coords = basis.transpose(-1, -2) @ w0  # (M, r, out)

    def features(x: torch.Tensor) -> torch.Tensor:
        in_span = x @ basis
        if in_span.dim() == 2:  # a shared split (tuning): the same coordinates for every model
            in_span = in_span.expand(models, -1, -1)
        outside = x @ w0 - in_span @ coords  # x W_perp, computed as x W_0 - (x Q) B_0
        return torch.cat([in_span, outside], dim=-1).contiguous()

    out = {}
    for key, tensor in splits.items():
        if key.startswith("x_"):
            out[key] = features(tensor)
        else:
            out[key] = tensor.expand(models, -1).contiguous() if tensor.dim() == 1 else tensor
    model.frozen_sq = [(w0.double().square().sum((1, 2)) - coords.double().square().sum((1, 2))).clamp_min(0)]
    model.frozen_sq += [torch.zeros(models, dtype=torch.float64, device=w0.device)] * (model.depth - 1)
    model.weight_numels = [w.shape[1] * w.shape[2] for w in model.weights[:-1]]
    model.weights[0] = coords.contiguous()
    model.span_width = coords.shape[1]
    return out


def first_linear(features: torch.Tensor, coords: torch.Tensor, bias: torch.Tensor, span_width: int) -> torch.Tensor:
    """The first layer on span features: (x Q) C + x W_perp + b -> (M, B, out)."""
    return torch.baddbmm(bias.unsqueeze(1) + features[..., span_width:], features[..., :span_width], coords)


def weight_norm(weight: torch.Tensor, frozen_sq: torch.Tensor | None) -> torch.Tensor:
    """(M,) Frobenius norm of a layer's weight, its frozen part outside the trained coordinates included."""
    if frozen_sq is None:
        return norm_of(weight)
    return (norm_of(weight).double().square() + frozen_sq).sqrt().to(weight.dtype)
