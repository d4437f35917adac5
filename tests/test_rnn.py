"""The batched RNN computes PyTorch's nn.RNN / nn.LSTM / nn.GRU, model by model, forward and backward; its inits
are what they say; its per-step statistics read the full gradient through time."""

import math

import pytest
import torch

from covbench.models import forward, softmax_cross_entropy
from covbench.models.rnn import (
    build_rnn,
    hidden_grad_norm,
    logged_steps,
    saturation_over_time,
    temporal_vanishing_index,
    weight_grad_norms,
)

M, B, T, IN, H, C = 2, 3, 5, 4, 6, 3
CELLS = ("tanh", "relu", "lstm", "gru")


pytestmark = pytest.mark.usefixtures("one_thread")  # small matmuls (conftest.one_thread)


def _spec(cell, recurrent_init="default", **extra):
    return {"cell": cell, "recurrent_init": recurrent_init, **extra}


def _data(shared=False):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn((B, T, IN) if shared else (M, B, T, IN), generator=gen)
    return x, torch.randint(0, C, (M, B), generator=gen)


def _run(model, x, labels):
    """Forward and backward of the summed per-model losses, the h_t's gradients retained."""
    for p in model.parameters():
        p.requires_grad_(True)
    logits, hs = forward(model, x, training=True)
    for h in hs:
        h.retain_grad()
    softmax_cross_entropy(logits, labels).sum().backward()
    return logits, hs


def _torch_copy(model, m):
    """Model m of the batch as PyTorch modules: our W (in, out) are torch's weight transposed."""
    cell = model.spec["cell"]
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    extra = {"nonlinearity": cell} if kind is torch.nn.RNN else {}
    rnn, head = kind(IN, H, batch_first=True, **extra), torch.nn.Linear(H, C)
    (w_ih, w_hh, w_out), (b_ih, b_hh, b_out) = model.weights, model.biases
    with torch.no_grad():
        for dst, src in [
            (rnn.weight_ih_l0, w_ih[m].T),
            (rnn.weight_hh_l0, w_hh[m].T),
            (rnn.bias_ih_l0, b_ih[m]),
            (rnn.bias_hh_l0, b_hh[m]),
            (head.weight, w_out[m].T),
            (head.bias, b_out[m]),
        ]:
            dst.copy_(src)
    return rnn, head


@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_gradients_match_torch(cell):
    model = build_rnn(_spec(cell), IN, H, C, seeds=[0, 1])
    x, labels = _data()
    logits, hs = _run(model, x, labels)
    states = torch.stack(hs, dim=2)  # (M, B, T, H)
    for m in range(M):
        rnn, head = _torch_copy(model, m)
        out, _ = rnn(x[m])
        ref_logits = head(out[:, -1])
        torch.nn.functional.cross_entropy(ref_logits, labels[m]).backward()
        torch.testing.assert_close(states[m], out, atol=1e-5, rtol=0)
        torch.testing.assert_close(logits[m], ref_logits, atol=1e-5, rtol=0)
        (w_ih, w_hh, w_out), (b_ih, b_hh, b_out) = model.weights, model.biases
        for ours, ref in [
            (w_ih.grad[m].T, rnn.weight_ih_l0.grad),
            (w_hh.grad[m].T, rnn.weight_hh_l0.grad),
            (b_ih.grad[m], rnn.bias_ih_l0.grad),
            (b_hh.grad[m], rnn.bias_hh_l0.grad),
            (w_out.grad[m].T, head.weight.grad),
            (b_out.grad[m], head.bias.grad),
        ]:
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_shared_input_equals_the_input_copied_per_model():
    model = build_rnn(_spec("gru"), IN, H, C, seeds=[0, 1])
    x, _ = _data(shared=True)
    logits, hs = forward(model, x, training=False)
    logits_copied, hs_copied = forward(model, x.expand(M, *x.shape), training=False)
    torch.testing.assert_close(logits, logits_copied)
    torch.testing.assert_close(torch.stack(hs), torch.stack(hs_copied))


@pytest.mark.parametrize("cell", ["tanh", "lstm"])
def test_hidden_grad_norm_is_the_full_gradient_through_time(cell):
    model = build_rnn(_spec(cell), IN, H, C, seeds=[0, 1])
    x, labels = _data()
    for p in model.parameters():
        p.requires_grad_(True)
    logits, hs = forward(model, x, training=True)
    loss = softmax_cross_entropy(logits, labels).sum()
    steps = [1, 3, T]
    full = torch.autograd.grad(loss, [hs[t - 1] for t in steps], retain_graph=True)
    for h in hs:
        h.retain_grad()
    loss.backward()
    norms = hidden_grad_norm(hs, steps)
    assert norms.shape == (M, len(steps))
    torch.testing.assert_close(norms, torch.stack([g.flatten(1).norm(dim=1) for g in full], dim=1))
    assert (norms[:, 0] > 0).all()  # h_1 reaches the loss only through the recurrence


def test_forces_on_hidden_states_flow_back_through_time():
    model = build_rnn(_spec("tanh"), IN, H, C, seeds=[0, 1])
    x, labels = _data()
    for p in model.parameters():
        p.requires_grad_(True)
    logits, hs = forward(model, x, training=True)
    loss = softmax_cross_entropy(logits, labels).sum()
    force = torch.ones_like(hs[-1])  # on h_T only
    loss_only = torch.autograd.grad(loss, hs[0], retain_graph=True)[0]
    force_only = torch.autograd.grad(hs[-1], hs[0], force, retain_graph=True)[0]
    for h in hs:
        h.retain_grad()
    torch.autograd.backward([loss, *hs], [None, *[torch.zeros_like(h) for h in hs[:-1]], force])
    assert force_only.abs().max() > 0
    torch.testing.assert_close(hs[0].grad, loss_only + force_only)


def test_temporal_vanishing_index_is_log_ratio_of_first_to_last_step():
    model = build_rnn(_spec("tanh"), IN, H, C, seeds=[0, 1])
    x, labels = _data()
    _, hs = _run(model, x, labels)
    expected = [math.log10(hs[0].grad[m].norm().item() / hs[-1].grad[m].norm().item()) for m in range(M)]
    torch.testing.assert_close(temporal_vanishing_index(hs), torch.tensor(expected), atol=1e-5, rtol=0)


def test_identity_init_is_irnn():
    model = build_rnn(_spec("relu", "identity"), 50, 40, C, seeds=[0, 1])
    (w_ih, w_hh, _), (b_ih, b_hh, _) = model.weights, model.biases
    assert torch.equal(w_hh, torch.eye(40).expand(M, 40, 40))
    assert b_ih.abs().max() == 0 and b_hh.abs().max() == 0
    assert w_ih.std().item() == pytest.approx(0.001, rel=0.1)


@pytest.mark.parametrize("cell, gates", [("tanh", 1), ("lstm", 4), ("gru", 3)])
def test_orthogonal_init_gives_orthogonal_gate_blocks(cell, gates):
    model = build_rnn(_spec(cell, "orthogonal"), IN, H, C, seeds=[0, 1])
    w_hh = model.weights[1]
    assert w_hh.shape == (M, H, gates * H)
    for block in w_hh.split(H, dim=2):
        torch.testing.assert_close(block.transpose(1, 2) @ block, torch.eye(H).expand(M, H, H), atol=1e-5, rtol=0)


def test_default_init_is_torchs_uniform_bound():
    model = build_rnn(_spec("gru"), IN, 100, C, seeds=[0])
    for t in model.parameters():  # U(-1/sqrt(H), 1/sqrt(H)); the output layer's fan_in is H too
        assert t.abs().max().item() <= 0.1
        assert t.numel() < 100 or t.abs().max().item() > 0.09


def test_forget_bias_adds_to_the_forget_gate_only():
    plain = build_rnn(_spec("lstm", forget_bias=0.0), IN, H, C, seeds=[0])
    default = build_rnn(_spec("lstm"), IN, H, C, seeds=[0])
    shift = default.biases[0] - plain.biases[0]
    assert torch.equal(shift[:, H : 2 * H], torch.ones(1, H))
    assert shift[:, :H].abs().max() == 0 and shift[:, 2 * H :].abs().max() == 0


@pytest.mark.parametrize("recurrent_init", ["default", "orthogonal", "identity"])
def test_a_seed_gives_the_same_network_alone_or_batched(recurrent_init):
    alone = build_rnn(_spec("lstm", recurrent_init), IN, H, C, seeds=[3])
    batched = build_rnn(_spec("lstm", recurrent_init), IN, H, C, seeds=[1, 3])
    for a, b in zip(alone.parameters(), batched.parameters()):
        assert torch.equal(a[0], b[1])
    assert not torch.equal(batched.weights[0][0], batched.weights[0][1])


def test_model_interface_matches_the_mlps():
    model = build_rnn(_spec("gru"), IN, H, C, seeds=[0, 1])
    assert model.depth == 1 and model.buffers() == [] and model.norm_states == [] and model.alphas == []
    assert model.parameters() == [*model.weights, *model.biases]
    assert [tuple(w.shape) for w in model.weights] == [(M, IN, 3 * H), (M, H, 3 * H), (M, H, C)]


def test_saturation_and_weight_grad_norms():
    model = build_rnn(_spec("relu"), IN, H, C, seeds=[0, 1])
    x, labels = _data()
    _, hs = _run(model, x, labels)
    dead = saturation_over_time(hs, [1, T], "relu")
    expected = torch.stack([(hs[t - 1] == 0).float().mean((1, 2)) for t in (1, T)], dim=1)
    torch.testing.assert_close(dead, expected)
    hs_tanh = [torch.tensor([[[0.995, -0.999, 0.5, 0.0]]]).expand(M, 1, 4)]
    torch.testing.assert_close(saturation_over_time(hs_tanh, [1], "tanh"), torch.full((M, 1), 0.5))
    input_norm, recurrent_norm = weight_grad_norms(model)
    torch.testing.assert_close(input_norm, model.weights[0].grad.flatten(1).norm(dim=1))
    torch.testing.assert_close(recurrent_norm, model.weights[1].grad.flatten(1).norm(dim=1))


@pytest.mark.parametrize("steps, n", [(224, 8), (784, 12), (28, 5), (10, 4), (3, 8), (1, 3)])
def test_logged_steps(steps, n):
    logged = logged_steps(steps, n)
    assert logged == sorted(set(logged)) and len(logged) <= n
    assert logged[0] == 1 and logged[-1] == steps and all(1 <= t <= steps for t in logged)
    assert (28 in logged) == (steps >= 28)
    assert len(logged) >= min(n, steps) - 1  # evenly spaced fill, at most one lost to a coincidence with 28
