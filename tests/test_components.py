"""Each component does what its paper says."""

import math

import pytest
import torch

from covbench import components
from covbench.components.clipping import clip_grad_norm_, global_grad_norm
from covbench.components.norm import batchnorm, init_state
from covbench.models import build_mlp, forward

FAN = 512


@pytest.mark.parametrize(
    "name, activation, expected_std",
    [
        ("normal", "sigmoid", 1.0),
        ("nielsen", "sigmoid", 1 / math.sqrt(FAN)),
        ("xavier", "tanh", math.sqrt(6 / (2 * FAN)) / math.sqrt(3)),  # U(-a, a) has std a / sqrt(3)
        ("he", "relu", math.sqrt(2 / FAN)),
        ("he", "leaky_relu", math.sqrt(2 / (1 + 0.01**2) / FAN)),
        ("he", "prelu", math.sqrt(2 / (1 + 0.25**2) / FAN)),  # the initial slope
        ("he", "rrelu", math.sqrt(2 / (1 + (11 / 48) ** 2) / FAN)),  # the mean slope
        ("lecun", "selu", 1 / math.sqrt(FAN)),
    ],
)
def test_init_std_matches_formula(name, activation, expected_std):
    gain = components.get("activation", activation).gain
    weights, bias = components.get("init", name)(FAN, FAN, gain, torch.Generator().manual_seed(0))
    assert weights.shape == (FAN, FAN)
    assert abs(weights.mean().item()) < 0.05 * expected_std
    assert weights.std().item() == pytest.approx(expected_std, rel=0.05)
    assert bias.std().item() == pytest.approx(1.0, rel=0.2) if name in ("normal", "nielsen") else bias.abs().max() == 0


def test_xavier_is_bounded_uniform():
    weights, _ = components.get("init", "xavier")(FAN, FAN, 1.0, torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / (2 * FAN))
    assert weights.abs().max().item() <= bound
    assert weights.abs().max().item() > 0.99 * bound


def test_batchnorm_eval_uses_running_stats():
    state = init_state(1, 4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        batchnorm(3.0 + 2.0 * torch.randn(1, 64, 4, generator=gen), state, training=True)
    assert state["running_mean"].mean().item() == pytest.approx(3.0, abs=0.15)
    assert state["running_var"].mean().item() == pytest.approx(4.0, rel=0.1)
    # One constant example: batch statistics would give NaN/0; running statistics give (5 - 3) / 2 = 1.
    out = batchnorm(torch.full((1, 1, 4), 5.0), state, training=False)
    expected = (5.0 - state["running_mean"]) / torch.sqrt(state["running_var"] + 1e-5)
    torch.testing.assert_close(out[0, 0], expected[0])
    assert out.mean().item() == pytest.approx(1.0, abs=0.1)


def test_batchnorm_train_normalizes_per_model():
    state = init_state(2, 3)
    z = torch.randn(2, 50, 3) * torch.tensor([1.0, 10.0]).view(2, 1, 1) + 4
    out = batchnorm(z, state, training=True)
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(1, unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)


def test_batchnorm_is_torch_batchnorm1d_per_model():
    """The batched layer (torch's fused kernel on a (B, M * n) view) against one nn.BatchNorm1d per model: outputs,
    gradients of the input, gamma and beta, and the running statistics after a few training steps."""
    models, batch, units = 3, 16, 5
    gen = torch.Generator().manual_seed(0)
    state = init_state(models, units)
    state["gamma"] = (1 + torch.rand(models, units, generator=gen)).requires_grad_(True)
    state["beta"] = torch.randn(models, units, generator=gen).requires_grad_(True)
    references = []
    for m in range(models):
        layer = torch.nn.BatchNorm1d(units, eps=1e-5, momentum=0.1)
        with torch.no_grad():
            layer.weight.copy_(state["gamma"][m])
            layer.bias.copy_(state["beta"][m])
        references.append(layer)
    for _ in range(3):
        z = (torch.randn(models, batch, units, generator=gen) * 3 + 2).requires_grad_(True)
        upstream = torch.randn(models, batch, units, generator=gen)
        state["gamma"].grad = state["beta"].grad = None
        out = batchnorm(z, state, training=True)
        out.backward(upstream)
        for m, layer in enumerate(references):
            layer.zero_grad()
            z_m = z[m].detach().clone().requires_grad_(True)
            expected = layer(z_m)
            expected.backward(upstream[m])
            torch.testing.assert_close(out[m], expected)
            torch.testing.assert_close(z.grad[m], z_m.grad)
            torch.testing.assert_close(state["gamma"].grad[m], layer.weight.grad)
            torch.testing.assert_close(state["beta"].grad[m], layer.bias.grad)
    for m, layer in enumerate(references):
        torch.testing.assert_close(state["running_mean"][m], layer.running_mean)
        torch.testing.assert_close(state["running_var"][m], layer.running_var)
        layer.eval()
        z = torch.randn(batch, units, generator=gen)
        torch.testing.assert_close(batchnorm(z.expand(models, -1, -1), state, training=False)[m], layer(z))


def test_residual_block_is_identity_at_zero_weights(spec):
    spec.update(activation="relu", init="he", residual="plain")
    model = build_mlp(spec, 8, 8, 4, 3, seeds=[0])
    for w, b in zip(model.weights[1:-1], model.biases[1:-1]):
        w.zero_()
        b.zero_()
    x = torch.randn(1, 5, 8)
    _, acts = forward(model, x, training=False)
    for a in acts[1:]:
        torch.testing.assert_close(a, acts[0])


def test_deep_supervision_heads_are_training_only(spec, splits, hp):
    spec.update(aux="deep_supervision", aux_weight=1.0)
    model = build_mlp(spec, 20, 16, 3, 3, seeds=[0])
    assert len(model.aux_params["head_W"]) == 3
    x = splits["x_test"]
    logits_before, _ = forward(model, x, training=False)
    for w in model.aux_params["head_W"]:
        w.normal_(0, 100.0)
    logits_after, _ = forward(model, x, training=False)
    torch.testing.assert_close(logits_before, logits_after)  # evaluation never reads the heads
    aux = components.get("aux", "deep_supervision")
    labels = splits["y_test"].unsqueeze(0)
    logits, acts = forward(model, x.unsqueeze(0), training=True)
    correct = logits.argmax(-1) == labels
    extra, _, _ = aux.apply(acts, logits, labels, correct, model.aux_params, spec, 0.0)
    late, _, _ = aux.apply(acts, logits, labels, correct, model.aux_params, spec, 0.99)
    assert extra.item() > 0 and late.item() < 0.02 * extra.item()  # the weight decays to zero over training


def test_grad_clipping_bounds_global_norm():
    gen = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(3, 10, 10, generator=gen) * torch.tensor([0.01, 1.0, 100.0]).view(3, 1, 1),
        torch.randn(3, 10, generator=gen),
    ]
    before = global_grad_norm(grads)
    small = [g[0].clone() for g in grads]
    clip_grad_norm_(grads, max_norm=2.0)
    after = global_grad_norm(grads)
    assert (after <= 2.0 + 1e-4).all()
    assert after[2].item() == pytest.approx(2.0, rel=1e-4)
    assert before[0] > 2.0 or all(torch.equal(a, g[0]) for a, g in zip(small, grads))
    # Matches torch's own clip_grad_norm_ on each model separately.
    params = [torch.nn.Parameter(torch.zeros(10, 10)), torch.nn.Parameter(torch.zeros(10))]
    params[0].grad, params[1].grad = torch.randn(10, 10, generator=gen) * 5, torch.randn(10, generator=gen) * 5
    ours = [params[0].grad.clone().unsqueeze(0), params[1].grad.clone().unsqueeze(0)]
    torch.nn.utils.clip_grad_norm_(params, 2.0)
    clip_grad_norm_(ours, 2.0)
    torch.testing.assert_close(ours[0][0], params[0].grad)


def test_saturation_definitions():
    sig = components.get("activation", "sigmoid").saturated
    assert sig(torch.tensor([0.005, 0.5, 0.995])).tolist() == [True, False, True]
    relu = components.get("activation", "relu")
    assert relu.saturated(relu.fn(torch.tensor([-1.0, 0.0, 2.0]), None, False, [])).tolist() == [True, True, False]
