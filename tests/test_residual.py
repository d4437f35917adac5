"""The residual kinds do what docs/design.md#methods-as-compositions and their papers say: each block computes its
formula; at init the pre-activation ResNet and SkipInit keep a depth-32 network's scale bounded where the literal block
explodes; both train at depth 32 on real MNIST."""

import pytest
import torch
import torch.nn.functional as F

from covbench.components.norm import BN_EPS
from covbench.data import datasets as data
from covbench.models import build_mlp, forward, softmax_cross_entropy, to_device
from covbench.training.train import train

DEPTH, WIDTH = 32, 100


pytestmark = pytest.mark.usefixtures("one_thread")  # small matmuls (conftest.one_thread)


@pytest.fixture(scope="module")
def mnist(mirror):
    """The first 1500 official MNIST training images (pixels / 255) and their labels."""
    images = data.read_idx(mirror / "train-images-idx3-ubyte.gz")[:1500]
    labels = data.read_idx(mirror / "train-labels-idx1-ubyte.gz")[:1500]
    return torch.tensor(images.reshape(len(images), -1) / 255, dtype=torch.float32), torch.tensor(labels).long()


def relu_he(spec, residual, norm="none"):
    spec.update(activation="relu", init="he", norm=norm, residual=residual)
    return spec


# --- each block is its formula ----------------------------------------------------------------------------------


def _randomized(model):
    """Nonzero biases, norm affines and SkipInit scales, so that a term in the wrong place shows."""
    gen = torch.Generator().manual_seed(1)
    tensors = model.biases + model.alphas + [s[k] for s in model.norm_states for k in ("gamma", "beta")]
    for t in tensors:
        t.copy_(torch.randn(t.shape, generator=gen))


def _bn(z, state):
    return F.batch_norm(z, None, None, state["gamma"][0], state["beta"][0], training=True, eps=BN_EPS)


@pytest.mark.parametrize(
    "residual, norm", [("preact", "batchnorm"), ("preact", "none"), ("skipinit", "none"), ("plain", "none")]
)
def test_blocks_compute_their_formulas(spec, residual, norm):
    model = build_mlp(relu_he(spec, residual, norm), 5, 4, 3, 2, seeds=[0])
    _randomized(model)
    x = torch.randn(1, 6, 5, generator=torch.Generator().manual_seed(2))
    logits, acts = forward(model, x, training=True)
    W, b = [w[0] for w in model.weights], [b[0] for b in model.biases]
    norm_of = (lambda z, l: _bn(z, model.norm_states[l])) if norm == "batchnorm" else (lambda z, l: z)
    if residual == "preact":  # h_1 = W_1 x + b_1; h_l = h_{l-1} + W_l relu(norm(h_{l-1})) + b_l; head relu(norm(h_L))
        h = [x[0] @ W[0] + b[0]]
        for l in (1, 2):
            h.append(h[-1] + torch.relu(norm_of(h[-1], l - 1)) @ W[l] + b[l])
        head = torch.relu(norm_of(h[-1], 2))
    elif residual == "skipinit":  # h_1 = W_1 x + b_1; h_l = h_{l-1} + alpha_l relu(W_l h_{l-1} + b_l); head h_L
        h = [x[0] @ W[0] + b[0]]
        for l in (1, 2):
            h.append(h[-1] + model.alphas[l - 1][0] * torch.relu(h[-1] @ W[l] + b[l]))
        head = h[-1]
    else:  # h_1 = relu(W_1 x + b_1); h_l = h_{l-1} + relu(W_l h_{l-1} + b_l); head h_L
        h = [torch.relu(x[0] @ W[0] + b[0])]
        for l in (1, 2):
            h.append(h[-1] + torch.relu(h[-1] @ W[l] + b[l]))
        head = h[-1]
    for a, expected in zip(acts, h, strict=True):
        torch.testing.assert_close(a[0], expected)
    torch.testing.assert_close(logits[0], head @ W[3] + b[3])


def test_trainable_tensors_and_layer_biases(spec):
    """With batchnorm, preact's linear biases would cancel (every reader of the stream subtracts its batch mean):
    they stay zero and untrained, and beta is each layer's bias, as for the post-linear norm. SkipInit's alphas
    train and move with the model."""
    preact = build_mlp(relu_he(dict(spec), "preact", "batchnorm"), 5, 4, 3, 2, seeds=[0, 1])
    hidden_biases = preact.biases[:-1]
    assert not any(p is b for p in preact.parameters() for b in hidden_biases)
    assert all(s["beta"] is b for s, b in zip(preact.norm_states, preact.layer_biases(), strict=True))
    for t in preact.parameters() + hidden_biases:
        t.requires_grad_(True)
    gen = torch.Generator().manual_seed(2)
    logits, _ = forward(preact, torch.randn(2, 16, 5, generator=gen), training=True)
    softmax_cross_entropy(logits, torch.randint(0, 2, (2, 16), generator=gen)).sum().backward()
    assert max(b.grad.abs().max().item() for b in hidden_biases) < 1e-5  # rounding noise
    assert min(b.grad.abs().max().item() for b in preact.layer_biases()) > 1e-3
    skipinit = build_mlp(relu_he(dict(spec), "skipinit"), 5, 4, 3, 2, seeds=[0, 1])
    assert [a.shape for a in skipinit.alphas] == [(2,), (2,)]
    assert all(any(p is a for p in skipinit.parameters()) for a in skipinit.alphas)
    assert all(a.device.type == "meta" for a in to_device(skipinit, "meta").alphas)


# --- scale at initialization, depth 32 ---------------------------------------------------------------------------


def hidden_variances(spec, x) -> torch.Tensor:
    """(M, L): variance of each hidden output h_l over the batch and the units, for three seeds at init."""
    model = build_mlp(spec, x.shape[1], WIDTH, DEPTH, 10, seeds=[0, 1, 2])
    with torch.no_grad():
        _, acts = forward(model, x, training=True)
    return torch.stack([a.flatten(1).var(1) for a in acts], dim=1)


def test_activation_scale_at_init_depth_32(spec, mnist):
    """On 256 MNIST images, at depth L = 32:
    - preact + batchnorm: each block adds a branch W_l relu(BN(h)) of variance gain^2 E[relu(z)^2] ~ 1 for
      standardized z (He init: gain^2 = 2), uncorrelated with the stream at init: the variance grows linearly,
      0.5 (L - 1) <= var(h_L) - var(h_1) <= 2 (L - 1); std(h_L) / std(h_1) ~ 12 here (var(h_1) ~ 0.2);
    - skipinit: every alpha_l = 0, so std(h_L) == std(h_1) exactly;
    - plain: h + relu(W h + b) at least doubles the variance per block: std(h_L) / std(h_1) > 2^15 (2^31 in variance).
    """
    x = mnist[0][:256]
    preact = hidden_variances(relu_he(dict(spec), "preact", "batchnorm"), x)
    growth = preact[:, -1] - preact[:, 0]
    assert (growth >= 0.5 * (DEPTH - 1)).all() and (growth <= 2 * (DEPTH - 1)).all(), growth
    skipinit = hidden_variances(relu_he(dict(spec), "skipinit"), x)
    assert torch.equal(skipinit[:, -1], skipinit[:, 0])
    plain = hidden_variances(relu_he(dict(spec), "plain"), x)
    assert ((plain[:, -1] / plain[:, 0]).sqrt() > 2**15).all()


def test_skipinit_is_the_identity_at_init(spec, mnist):
    """Every block output equals the first layer's exactly, and every alpha_l has a gradient to leave 0 with."""
    model = build_mlp(relu_he(spec, "skipinit"), 784, WIDTH, DEPTH, 10, seeds=[0])
    for a in model.alphas:
        a.requires_grad_(True)
    x, y = mnist[0][:256].unsqueeze(0), mnist[1][:256].unsqueeze(0)
    logits, acts = forward(model, x, training=True)
    assert all(torch.equal(a, acts[0]) for a in acts)
    softmax_cross_entropy(logits, y).sum().backward()
    assert all(a.grad.abs().item() > 0 for a in model.alphas)


# --- training at depth 32 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("residual, norm", [("preact", "batchnorm"), ("skipinit", "none")])
def test_residual_nets_train_at_depth_32(spec, mnist, residual, norm):
    """Two epochs on 1000 MNIST images (batch 100, lr 0.05): well above chance (0.1) on 500 held-out images."""
    x, y = mnist
    splits = {
        "x_train": x[:1000],
        "y_train": y[:1000],
        "x_val": x[1000:],
        "y_val": y[1000:],
        "x_test": x[1000:],
        "y_test": y[1000:],
    }
    hp = {
        "width": WIDTH,
        "epochs": 2,
        "batch_size": 100,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "loss": "softmax_cross_entropy",
        "log_every": 1000,
    }
    result = train(splits, relu_he(spec, residual, norm), hp, DEPTH, [0])
    assert not result.epochs.diverged.any()
    assert result.epochs.val_accuracy.iloc[-1] > 0.5
