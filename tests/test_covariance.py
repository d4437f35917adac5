"""The covariance force of docs/design.md#the-covariance-force: the gradient it adds equals autograd of its loss, and
its groups are right."""

import pytest
import torch
import torch.nn.functional as F
from conftest import force_loss_and_plain_grads

from covbench.components.covariance import EPS, covariance_force
from covbench.models import build_mlp, forward, softmax_cross_entropy
from covbench.training.train import train


def covariance_loss(acts, labels, correct, classes, lam):
    """lambda/B * sum_l sum_{i in E} sum_j 0.5 w_kj (a_ij - mu_kj)^2 with mu, w detached, written per group
    with plain loops (an independent reading of docs/design.md#the-covariance-force)."""
    batch = labels.shape[0]
    total = 0.0
    for a in acts:
        for k in range(classes):
            right = (labels == k) & correct
            wrong = (labels == k) & ~correct
            if right.sum() < 2 or wrong.sum() < 1:
                continue
            ad = a.detach()
            mu = ad[right].mean(0)
            var_c = ad[right].var(0, unbiased=True)
            var_e = ad[wrong].var(0, unbiased=True) if wrong.sum() > 1 else torch.zeros_like(mu)
            s = (ad[wrong].mean(0) - mu) ** 2 / (var_c + var_e + EPS)
            w = s / (1 + s)
            total = total + 0.5 * (w * (a[wrong] - mu) ** 2).sum()
    return lam / batch * total


@pytest.mark.parametrize("pooled", [False, True])
def test_force_equals_autograd_of_covariance_loss(spec, pooled):
    spec.update(activation="tanh", init="xavier", aux="covariance_pooled" if pooled else "covariance", cov_lambda=3.0)
    gen = torch.Generator().manual_seed(1)
    x, labels = torch.randn(1, 64, 12, generator=gen), torch.randint(0, 3, (1, 64), generator=gen)

    group = torch.zeros_like(labels[0]) if pooled else labels[0]
    with_force, with_loss, plain = force_loss_and_plain_grads(
        lambda: build_mlp(spec, 12, 10, 3, 3, seeds=[0]),
        x,
        labels,
        spec,
        lambda acts, correct: covariance_loss(acts, group, correct, 1 if pooled else 3, 3.0),
    )
    assert max((a - b).abs().max().item() for a, b in zip(with_force, plain)) > 1e-4  # the force is not trivial
    for a, b in zip(with_force, with_loss):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_force_is_zero_on_correct_examples_and_inactive_classes():
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(1, 12, 5, generator=gen)
    labels = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]])
    # class 0: 3 right + 1 wrong (active); class 1: 1 right + 3 wrong (inactive: |C| < 2); class 2: all right.
    correct = torch.tensor([[1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    force, _ = covariance_force(acts, labels, correct, classes=3)
    assert torch.all(force[correct] == 0)
    assert torch.all(force[0, 5:8] == 0)
    assert torch.all(force[0, 3] != 0)
    # Hand computation for the one wrong example of class 0: var_E = 0 with a single example.
    mu = acts[0, :3].mean(0)
    s = (acts[0, 3] - mu) ** 2 / (acts[0, :3].var(0) + EPS)
    torch.testing.assert_close(force[0, 3], s / (1 + s) * (acts[0, 3] - mu))


def test_force_weight_near_one_for_separating_neuron():
    """A neuron constant within groups but different between them (the seed's 'negative covariance') gets w ~ 1."""
    acts = torch.tensor([[[0.1], [0.1001], [0.0999], [0.9], [0.9001]]])
    labels = torch.zeros(1, 5, dtype=torch.long)
    correct = torch.tensor([[True, True, True, False, False]])
    force, _ = covariance_force(acts, labels, correct, classes=1)
    torch.testing.assert_close(force[0, 3:, 0], acts[0, 3:, 0] - acts[0, :3, 0].mean(), rtol=1e-3, atol=1e-6)


def test_batched_models_get_their_own_groups():
    gen = torch.Generator().manual_seed(2)
    acts, labels = torch.rand(2, 16, 4, generator=gen), torch.randint(0, 2, (2, 16), generator=gen)
    correct = torch.rand(2, 16, generator=gen) > 0.4
    both, _ = covariance_force(acts, labels, correct, 2)
    for m in range(2):
        torch.testing.assert_close(
            both[m], covariance_force(acts[m : m + 1], labels[m : m + 1], correct[m : m + 1], 2)[0][0]
        )
    assert F.one_hot(labels, 2).shape == (2, 16, 2)


def test_force_diagnostics_against_a_hand_computation(spec, hp, splits):
    """Step-0 force_grad_ratio and force_grad_cosine of a full-batch step equal ||f|| / ||g|| and the cosine of f
    and g, with f the force at a layer (autograd of that layer's term of the covariance loss) and g the gradient
    of the loss plus the later layers' covariance terms at that layer (what the force joins)."""
    spec.update(activation="tanh", init="xavier", aux="covariance", cov_lambda=30.0)
    hp.update(epochs=1, batch_size=len(splits["y_train"]), log_every=1)
    logged = train(splits, spec, hp, depth=3, seeds=[7]).layer_stats
    model = build_mlp(spec, 20, hp["width"], 3, 3, seeds=[7])
    for p in model.parameters():
        p.requires_grad_(True)
    x, labels = splits["x_train"], splits["y_train"]
    logits, acts = forward(model, x, training=True)
    loss = softmax_cross_entropy(logits, labels.unsqueeze(0)).sum()
    correct = logits[0].argmax(-1) == labels
    expected = {"force_grad_ratio": [], "force_grad_cosine": []}
    for layer, a in enumerate(acts):  # gradients with respect to the (1, B, n) tensors the graph holds
        f = torch.autograd.grad(covariance_loss([a[0]], labels, correct, 3, 30.0), a, retain_graph=True)[0]
        later = [b[0] for b in acts[layer + 1 :]]
        above = covariance_loss(later, labels, correct, 3, 30.0) if later else 0.0
        g = torch.autograd.grad(loss + above, a, retain_graph=True)[0]
        expected["force_grad_ratio"].append(f.norm() / g.norm())
        expected["force_grad_cosine"].append((f * g).sum() / (f.norm() * g.norm()))
    step0 = logged[logged.step == 0].sort_values("layer")
    assert step0.force_grad_ratio.gt(1e-3).all()  # the force is there, so the comparison is not trivial
    for column, values in expected.items():
        torch.testing.assert_close(
            torch.tensor(step0[column].tolist()), torch.stack(values).detach(), rtol=1e-3, atol=1e-6, msg=column
        )


def test_methods_without_a_force_log_nan_diagnostics(spec, hp, splits):
    logged = train(splits, spec, hp, depth=2, seeds=[0]).layer_stats
    assert logged[["force_grad_ratio", "force_grad_cosine", "active_groups"]].isna().all().all()
    assert (logged.cov_force_norm == 0).all()


def test_active_groups_counts_classes_that_push():
    acts = torch.rand(1, 9, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[0, 0, 0, 1, 1, 1, 2, 2, 2]])
    one_class_predicted = labels == 0  # every prediction is class 0: no class has both right and wrong examples
    _, active = covariance_force(acts, labels, one_class_predicted, classes=3)
    assert active.tolist() == [0.0]
    two_right_one_wrong = torch.tensor([[True, True, False] * 3])
    _, active = covariance_force(acts, labels, two_right_one_wrong, classes=3)
    assert active.tolist() == [1.0]
    _, active = covariance_force(acts, labels, torch.tensor([[True, True, False] * 2 + [True, False, False]]), 3)
    assert active.tolist() == pytest.approx([2 / 3])
