"""PReLU (He et al. 2015) and RReLU (Xu et al. 2015): the activations with per-layer parameters and training noise."""

import pytest
import torch
import torch.nn.functional as F

from covbench import components
from covbench.components.activation import RRELU_LOWER, RRELU_MEAN, RRELU_UPPER
from covbench.models import build_mlp, forward
from covbench.training.state import select_models
from covbench.training.train import train, train_until

PRELU = {"activation": "prelu", "init": "he"}
RRELU = {"activation": "rrelu", "init": "he"}


def slope_positions(model) -> list[int]:
    """Where PReLU's slopes sit in model.parameters() (the order of a RunResult's state["params"])."""
    return [i for i, p in enumerate(model.parameters()) if any(p is a for a in model.act_params)]


def test_prelu_is_torch_prelu_per_model_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 8, 5, generator=gen).requires_grad_(True)
    slopes = torch.rand(3, 5, generator=gen).requires_grad_(True)
    upstream = torch.randn(3, 8, 5, generator=gen)
    out = components.get("activation", "prelu").fn(z, slopes, True, [])
    out.backward(upstream)
    for m in range(3):
        z_m, slopes_m = z[m].detach().clone().requires_grad_(True), slopes[m].detach().clone().requires_grad_(True)
        expected = F.prelu(z_m, slopes_m)  # one slope per unit: (B, n) has its channels on dim 1
        expected.backward(upstream[m])
        assert torch.equal(out[m], expected)
        torch.testing.assert_close(z.grad[m], z_m.grad)
        torch.testing.assert_close(slopes.grad[m], slopes_m.grad)


@pytest.mark.parametrize("residual, sites", [("none", 3), ("preact", 3), ("skipinit", 2)])
def test_prelu_has_one_slope_per_unit_and_activation_starting_at_a_quarter(spec, residual, sites):
    """One (M, width) slope tensor per activation the network applies (SkipInit's first layer has none), every one
    trainable and reached by the gradient."""
    spec.update(PRELU, residual=residual)
    model = build_mlp(spec, 6, 4, 3, 2, seeds=[0, 1])
    assert len(model.act_params) == sites and len(slope_positions(model)) == sites
    assert all(a.shape == (2, 4) and bool((a == 0.25).all()) for a in model.act_params)
    assert components.get("activation", "prelu").gain == pytest.approx((2 / (1 + 0.25**2)) ** 0.5)
    for p in model.parameters():
        p.requires_grad_(True)
    if residual == "skipinit":  # its blocks start switched off: open them, or no gradient reaches their slopes
        for alpha in model.alphas:
            alpha.data.fill_(1.0)
    logits, _ = forward(model, torch.randn(2, 32, 6, generator=torch.Generator().manual_seed(0)), training=True)
    logits.square().sum().backward()
    assert all(a.grad is not None and bool((a.grad != 0).any()) for a in model.act_params)


def test_prelu_slopes_train_without_weight_decay(spec, hp, splits):
    """One full-batch SGD step from the same init with and without weight decay: the weights differ, the slopes
    (which moved off 0.25) do not, bit for bit, so they are outside the decayed group."""
    spec.update(PRELU)
    hp.update(epochs=1, batch_size=200, momentum=0.0)
    plain = train(splits, spec, {**hp, "weight_decay": 0.0}, 2, [0]).state["params"]
    decayed = train(splits, spec, {**hp, "weight_decay": 0.5}, 2, [0]).state["params"]
    positions = slope_positions(build_mlp(spec, 20, hp["width"], 2, 3, seeds=[0]))
    assert not torch.equal(plain[0], decayed[0])  # the first weight matrix was decayed
    for i in positions:
        assert torch.equal(plain[i], decayed[i])
        assert bool((plain[i] != 0.25).any())


def test_rrelu_evaluates_as_leaky_relu_at_the_mean_slope_and_draws_nothing(spec):
    assert RRELU_MEAN == pytest.approx(11 / 48)
    rrelu = components.get("activation", "rrelu")
    assert rrelu.gain == pytest.approx((2 / (1 + (11 / 48) ** 2)) ** 0.5)
    z = torch.randn(2, 16, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rrelu.fn(z, None, False, []), F.leaky_relu(z, 11 / 48))
    spec.update(RRELU)
    model = build_mlp(spec, 8, 8, 3, 2, seeds=[0, 1])
    before = [g.get_state() for g in model.generators]
    forward(model, z, training=False)
    assert all(torch.equal(g.get_state(), s) for g, s in zip(model.generators, before, strict=True))


def test_rrelu_draws_a_slope_per_element_in_training_from_each_models_generator(spec):
    spec.update(RRELU)
    rrelu = components.get("activation", "rrelu")
    z = torch.cat([-torch.ones(64, 32), torch.ones(64, 32)], dim=1).expand(3, -1, -1)
    together = build_mlp(spec, 4, 4, 1, 2, seeds=[5, 6, 7]).generators
    out = rrelu.fn(z, None, True, together)
    assert torch.equal(out[..., 32:], z[..., 32:])  # positive inputs pass unchanged
    slopes = -out[..., :32]
    assert bool(((slopes >= RRELU_LOWER) & (slopes <= RRELU_UPPER)).all())
    assert slopes[0].unique().numel() > 0.99 * slopes[0].numel()  # a slope per element
    assert slopes.mean().item() == pytest.approx(11 / 48, abs=0.005)
    assert not torch.equal(slopes[0], slopes[1])  # each model its own draws
    alone = build_mlp(spec, 4, 4, 1, 2, seeds=[6]).generators
    assert torch.equal(-rrelu.fn(z[1:2], None, True, alone)[..., :32], slopes[1:2])  # ... whatever shares its batch


def test_rrelu_seeds_batched_draw_what_they_draw_alone(spec, hp, splits, one_thread):
    spec.update(RRELU)
    together = train(splits, spec, hp, 2, [0, 1])
    alone = train(splits, spec, hp, 2, [1])
    assert torch.equal(together.state["noise_states"][1], alone.state["noise_states"][0])
    assert not torch.equal(together.state["noise_states"][0], alone.state["noise_states"][0])
    batched = together.layer_stats[together.layer_stats.seed == 1].drop(columns="model").reset_index(drop=True)
    single = alone.layer_stats.drop(columns="model")
    for column in ("bias_grad_norm", "weight_grad_norm", "act_mean", "act_std", "saturation", "update_ratio"):
        torch.testing.assert_close(
            torch.tensor(batched[column].to_numpy()),
            torch.tensor(single[column].to_numpy()),
            rtol=1e-5,
            atol=1e-7,
            msg=column,
        )
    assert together.epochs[together.epochs.seed == 1].val_accuracy.tolist() == alone.epochs.val_accuracy.tolist()


def test_select_models_keeps_each_survivors_noise_generator(spec, hp, splits, one_thread):
    """Successive halving continues survivors from a selected state: trials 2 and 0 of three go on, drawing the
    noise they would have drawn trained as [2, 0] from the start."""
    spec.update(RRELU)
    first = train_until(splits, spec, hp, 2, [0, 1, 2], 1)
    picked = select_models(first.state, [2, 0])
    assert [torch.equal(s, first.state["noise_states"][m]) for s, m in zip(picked["noise_states"], [2, 0])] == [
        True
    ] * 2
    continued = train_until(splits, spec, hp, 2, [2, 0], hp["epochs"], start=picked)
    uninterrupted = train(splits, spec, hp, 2, [2, 0])
    for a, b in zip(continued.state["noise_states"], uninterrupted.state["noise_states"], strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(
        torch.tensor(continued.epochs.val_loss.to_numpy()),
        torch.tensor(uninterrupted.epochs.val_loss.to_numpy()),
        rtol=1e-5,
        atol=0,
    )
