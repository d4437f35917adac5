"""The fused LSTM sequence (components.lstm_sequence) computes what the explicit cell loop computes, forward and
backward, forces on intermediate hidden states included; training through it lands on the same parameters."""

import pytest
import torch

from covbench.components.cell import _lstm_step
from covbench.components.lstm_sequence import LSTMSequence, lstm_sequence_forward
from covbench.config import method_spec
from covbench.models import build_rnn, forward, softmax_cross_entropy
from covbench.models.rnn import _input_projection
from covbench.training.train import train

M, B, T, IN, H, C = 3, 4, 6, 5, 7, 3

pytestmark = pytest.mark.usefixtures("one_thread")  # small matmuls (conftest.one_thread)


def _explicit_loop(x, w_ih, bias, w_hh):
    """The hidden states as rnn_forward's explicit loop computes them, under autograd: [(M, B, H)] * T."""
    h = torch.zeros(M, B, H, dtype=x.dtype)
    c = torch.zeros_like(h)
    hs = []
    for gx_t in _input_projection(x, w_ih, bias).unbind(1):
        h, c = _lstm_step(gx_t, h, c, w_hh, None)
        hs.append(h)
    return hs


def _weights():
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5).requires_grad_()
        for shape in [(M, IN, 4 * H), (M, 4 * H), (M, H, 4 * H)]
    ]


@pytest.mark.parametrize("shared", [False, True])
def test_fused_sequence_equals_the_explicit_loop_forward_and_backward(shared):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((B, T, IN) if shared else (M, B, T, IN), generator=gen, dtype=torch.float64)
    weights = _weights()
    # a gradient on h_T (the loss) and forces on intermediate steps, as the training loop seeds them
    grads = [
        torch.randn(M, B, H, generator=gen, dtype=torch.float64)
        if t in (1, 3, T - 1)
        else torch.zeros(M, B, H, dtype=torch.float64)
        for t in range(T)
    ]

    explicit = _explicit_loop(x, *weights)
    explicit_grads = torch.autograd.grad(explicit, weights, grads)
    fused = LSTMSequence.apply(x, *weights)
    fused_grads = torch.autograd.grad(list(fused.unbind(1)), weights, grads)

    torch.testing.assert_close(fused, torch.stack(explicit, dim=1), rtol=0, atol=1e-12)
    for ours, ref in zip(fused_grads, explicit_grads):
        assert ref.abs().max() > 0
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(lstm_sequence_forward(x, *weights)[0], fused, rtol=0, atol=0)


def test_a_second_backward_is_refused():
    """The backward turns its saved factors into dz in place (no second (M, T, B, 4H) tensor per step)."""
    x = torch.randn(M, B, T, IN, dtype=torch.float64)
    hs = LSTMSequence.apply(x, *_weights())
    hs.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once per forward"):
        hs.sum().backward()


def test_both_paths_of_the_model_give_the_same_gradients_and_hidden_states():
    """models.forward with exact_hidden_grads (the explicit loop) or without (the fused sequence), a force on every
    h_t beside the loss; and the fused forward without autograd, which evaluation runs."""
    gen = torch.Generator().manual_seed(3)
    x, labels = torch.randn(M, B, T, IN, generator=gen), torch.randint(0, C, (M, B), generator=gen)
    forces = [torch.randn(M, B, H, generator=gen) * 0.1 for _ in range(T)]
    results = []
    for exact in (True, False):
        model = build_rnn({"cell": "lstm", "recurrent_init": "default"}, IN, H, C, seeds=[0, 1, 2])
        for p in model.parameters():
            p.requires_grad_(True)
        logits, hs = forward(model, x, training=True, exact_hidden_grads=exact)
        loss = softmax_cross_entropy(logits, labels).sum()
        torch.autograd.backward([loss, *hs], [None, *forces])
        results.append((logits, torch.stack(hs), [p.grad for p in model.parameters()]))
        with torch.no_grad():
            evaluated = forward(model, x, training=False)
        torch.testing.assert_close(evaluated[0], logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(torch.stack(evaluated[1]), torch.stack(hs), rtol=0, atol=1e-6)
    (logits, hs, grads), (fused_logits, fused_hs, fused_grads) = results
    torch.testing.assert_close(fused_logits, logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(fused_hs, hs, rtol=0, atol=1e-6)
    for ours, ref in zip(fused_grads, grads):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["lstm", "lstm_covariance"])
def test_training_through_the_fused_sequence_lands_on_the_same_parameters(method, config, hp):
    """log_every 1: every step logs, so runs the explicit loop; log_every 1000: all but the first step fused."""
    gen = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 3, (96,), generator=gen)
    x = torch.randn(96, 8, 5, generator=gen) + labels.view(-1, 1, 1) * 0.5
    splits = {"x_train": x[:64], "y_train": labels[:64], "x_val": x[64:], "y_val": labels[64:]}
    spec = dict(method_spec(config, method), cov_lambda=2.0)
    hp.update(width=8, epochs=3, batch_size=16, lr=0.01)
    params = [
        train(splits, spec, dict(hp, log_every=log_every), depth=8, seeds=[0, 1]).state["params"]
        for log_every in (1, 1000)
    ]
    for explicit, fused in zip(*params):
        torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-5)
