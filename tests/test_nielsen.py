"""Nielsen's speed-of-learning experiment: the logged statistic is his, the update is network2's, the table is computed."""

import numpy as np
import pandas as pd
import pytest
import torch

from covbench.components.optimizer import sgd_step
from covbench.models import build_mlp
from covbench.report import nielsen as nielsen_report
from covbench.training import nielsen
from covbench.training.train import train

SETTINGS = {"n_images": 200, "hidden_layers": [2], "width": 30, "epochs": 1, "lr": 0.1, "l2": 5.0, "seeds": [0, 3]}


def _splits(n: int) -> dict[str, torch.Tensor]:
    """MNIST-shaped stand-ins: pixels in [0, 1], every class present."""
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(n, 784, generator=gen)
    y = torch.arange(n) % 10
    return {"x_train": x, "y_train": y, "x_val": x[:20], "y_val": y[:20], "x_test": x[:20], "y_test": y[:20]}


def _network2_cost_gradients(x, y, weights, biases):
    """Plain torch, float64: network2's CrossEntropyCost averaged over the examples, and its autograd gradients."""
    weights = [w.double().requires_grad_(True) for w in weights]
    biases = [b.double().requires_grad_(True) for b in biases]
    a = x.double()
    for w, b in zip(weights, biases):
        a = torch.sigmoid(a @ w + b)
    target = torch.nn.functional.one_hot(y, 10).double()
    cost = torch.nan_to_num(-target * torch.log(a) - (1 - target) * torch.log(1 - a)).sum(1).mean()
    cost.backward()
    return [w.grad for w in weights], [b.grad for b in biases]


def _initial_network(seed: int, hidden_layers: int):
    model = build_mlp(nielsen.SPEC, 784, SETTINGS["width"], hidden_layers, 10, [seed])
    return [w[0] for w in model.weights], [b[0] for b in model.biases]


def test_step0_bias_grad_norm_is_norm_of_mean_cost_gradient():
    splits = _splits(SETTINGS["n_images"])
    speed = nielsen.layer_speed(splits, SETTINGS, hidden_layers=2)
    assert sorted(speed.columns) == sorted(["network", "hidden_layers", "seed", "epoch", "layer", "bias_grad_norm"])
    assert set(speed.network) == {"[784, 30, 30, 10]"}
    for seed in SETTINGS["seeds"]:
        _, bias_grads = _network2_cost_gradients(splits["x_train"], splits["y_train"], *_initial_network(seed, 2))
        expected = [g.norm().item() for g in bias_grads[:-1]]
        logged = speed[(speed.seed == seed) & (speed.epoch == 0)].sort_values("layer").bias_grad_norm.to_numpy()
        np.testing.assert_allclose(logged, expected, rtol=1e-4)


def test_sgd_step_is_network2_l2_update():
    hp = nielsen.hyperparameters(SETTINGS)
    model = build_mlp(nielsen.SPEC, 784, SETTINGS["width"], 2, 10, [0, 1])
    params = model.parameters()
    gen = torch.Generator().manual_seed(1)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    before = [p.clone() for p in params]
    decays = [any(p is w for w in model.weights) for p in params]
    sgd_step(params, [torch.zeros_like(p) for p in params], decays, hp["lr"], hp["momentum"], hp["weight_decay"])
    eta, lmbda, n = SETTINGS["lr"], SETTINGS["l2"], SETTINGS["n_images"]
    for p, p0, decay in zip(params, before, decays):
        shrink = 1 - eta * (lmbda / n) if decay else 1.0  # network2: weights shrink, biases do not
        torch.testing.assert_close(p, shrink * p0 - eta * p.grad)
    assert sum(decays) == 3  # every weight matrix, the output layer's included


def test_first_update_through_train_matches_network2():
    splits = _splits(SETTINGS["n_images"])
    hp = nielsen.hyperparameters(SETTINGS)
    stats = train(splits, nielsen.SPEC, hp, 2, [5]).layer_stats
    weights, biases = _initial_network(5, 2)
    weight_grads, _ = _network2_cost_gradients(splits["x_train"], splits["y_train"], weights, biases)
    eta, lmbda, n = SETTINGS["lr"], SETTINGS["l2"], SETTINGS["n_images"]
    expected = [
        ((-eta * lmbda / n) * w.double() - eta * g).norm().item() / w.norm().item()
        for w, g in zip(weights[:-1], weight_grads[:-1])
    ]
    logged = stats[stats.step == 0].sort_values("layer").update_ratio.to_numpy()
    np.testing.assert_allclose(logged, expected, rtol=1e-3)


def _speed_frame() -> pd.DataFrame:
    rows = []
    for hidden_layers in (2, 3):
        network = nielsen.network_name([784] + [30] * hidden_layers + [10])
        for seed in (0, 1, 2):
            for epoch in (0, 1):
                for layer in range(1, hidden_layers + 1):
                    value = 10.0 ** (layer - hidden_layers - 1) * (1 + 0.1 * seed) * (1 + epoch)
                    rows.append((network, hidden_layers, seed, epoch, layer, value))
    return pd.DataFrame(rows, columns=["network", "hidden_layers", "seed", "epoch", "layer", "bias_grad_norm"])


def test_table_is_computed_from_the_parquet(tmp_path):
    speed = _speed_frame()
    paths = {name: tmp_path / name for name in ("speed.parquet", "summary.parquet", "table.tex")}
    speed.to_parquet(paths["speed.parquet"], index=False)
    nielsen_report.write_table(*map(str, paths.values()))
    summary = pd.read_parquet(paths["summary.parquet"])
    first = summary[(summary.hidden_layers == 2) & (summary.layer == 1)].iloc[0]
    assert (first["mean"], first["std"], first["n_seeds"]) == (pytest.approx(0.011), pytest.approx(0.001), 3)
    table = paths["table.tex"].read_text()
    assert r"$[784, 30, 30, 10]$ & $0.0110 \pm 0.0010$ & $0.110 \pm 0.010$ & -- \\" in table
    assert r"\toprule" in table and r"\bottomrule" in table

    speed.loc[(speed.hidden_layers == 2) & (speed.layer == 1) & (speed.epoch == 0), "bias_grad_norm"] *= 2
    speed.to_parquet(paths["speed.parquet"], index=False)
    nielsen_report.write_table(*map(str, paths.values()))
    assert r"$[784, 30, 30, 10]$ & $0.0220 \pm 0.0020$ &" in paths["table.tex"].read_text()


def test_mean_pm_std_rounds_the_mean_to_the_spread():
    assert nielsen_report.mean_pm_std(0.06084, 0.01753) == r"$0.061 \pm 0.018$"
    assert nielsen_report.mean_pm_std(0.002012, 0.000698) == r"$0.00201 \pm 0.00070$"
    assert nielsen_report.mean_pm_std(0.25, float("nan")) == "$0.25$"


def test_figure_has_one_log_panel_per_network(tmp_path):
    figure = nielsen_report.plot_speed(_speed_frame())
    axes = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["[784, 30, 30, 10]", "[784, 30, 30, 30, 10]"]
    assert all(ax.get_yscale() == "log" for ax in axes)
