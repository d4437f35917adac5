"""The course's cat classifiers: the official files read as the course reads them, its initialisation, its update
(checked against the course's own backward formulas), and the table beside its reported numbers."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from covbench.data.datasets import read_catvnoncat
from covbench.report import course as course_report
from covbench.report.macros.course import course_macros
from covbench.training import course

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def files(mirror) -> dict[str, Path]:
    return {"train": mirror / "train_catvnoncat.h5", "test": mirror / "test_catvnoncat.h5"}


@pytest.fixture(scope="module")
def splits(files):
    return course.load_official(files["train"], files["test"])


def test_official_split_is_read_as_the_course_reads_it(splits, files):
    assert splits["x_train"].shape == (209, 12288) and splits["x_test"].shape == (50, 12288)
    assert splits["x_train"].dtype == torch.float64 and splits["y_train"].dtype == torch.float64
    images, labels = read_catvnoncat(files["train"])
    # the course's train_x_orig.reshape(m, -1) / 255: row-major over (64, 64, 3), the file's order
    np.testing.assert_array_equal(splits["x_train"][5].numpy(), images[5].reshape(-1) / 255)
    np.testing.assert_array_equal(splits["y_train"].numpy(), labels)
    assert 0 <= splits["x_train"].min() and splits["x_train"].max() <= 1
    assert int(splits["y_train"].sum()) == 72 and int(splits["y_test"].sum()) == 33  # 34 % and 66 % cats


@pytest.mark.parametrize("init", course.INITS)
def test_initialisation_scale_and_seeding(init):
    sizes = CONFIG["course"]["networks"]["four_layer"]["sizes"]
    params = course.initial_parameters(sizes, init, seed=3)
    assert [w.shape for w, _ in params] == [(20, 12288), (7, 20), (5, 7), (1, 5)]
    assert all(b.shape == (w.shape[0],) and not b.any() for w, b in params)
    first = params[0][0]
    expected = 0.01 if init == "small" else 12288**-0.5
    assert first.std().item() == pytest.approx(expected, rel=0.02) and abs(first.mean().item()) < 0.05 * expected
    if init == "fan_in":  # 140 draws: a loose check that the scale follows each layer's fan-in
        assert params[1][0].std().item() == pytest.approx(20**-0.5, rel=0.3)
    again = course.initial_parameters(sizes, init, seed=3)
    other = course.initial_parameters(sizes, init, seed=4)
    assert all(torch.equal(w, v) for (w, _), (v, _) in zip(params, again))
    assert not torch.equal(params[0][0], other[0][0])


@pytest.mark.parametrize(
    "network, printed",
    [("two_layer", {0: 0.693050, 100: 0.646432}), ("four_layer", {0: 0.771749, 100: 0.672053})],
)
def test_the_courses_own_draw_gives_its_printed_costs(splits, network, printed, one_thread):
    """The notebook's "Cost after iteration i" (its np.random.seed(1) weights): our loop on our reading of the files
    gives them to the printed digits, so the data, the initialisation and the update are the course's."""
    spec = CONFIG["course"]["networks"][network]
    params = course.initial_parameters(spec["sizes"], spec["init"], seed=1, draw="numpy")
    costs = [course.gradient_descent_step(params, splits["x_train"], splits["y_train"], 0.0075) for _ in range(101)]
    for iteration, cost in printed.items():
        assert costs[iteration] == pytest.approx(cost, abs=1e-6)


def test_cost_is_the_courses_cross_entropy():
    z = torch.tensor([-3.0, -0.2, 0.0, 1.5, 4.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    a = torch.sigmoid(z)
    expected = -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).mean()
    torch.testing.assert_close(course.cost(z, y), expected)


def _courses_backward(params, x, y):
    """The course's L_model_backward in numpy (columns are examples): dZ_L = A_L - Y, dW = dZ A_prev^T / m,
    db = sum(dZ) / m, dA_prev = W^T dZ, dZ = dA * (Z > 0) through each ReLU."""
    ws = [w.numpy() for w, _ in params]
    bs = [b.numpy()[:, None] for _, b in params]
    a, y, m = x.numpy().T, y.numpy()[None, :], x.shape[0]
    activations, pre = [a], []
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = w @ activations[-1] + b
        pre.append(z)
        activations.append(1 / (1 + np.exp(-z)) if i == len(ws) - 1 else np.maximum(z, 0))
    dz = activations[-1] - y
    grads = [None] * len(ws)
    for i in reversed(range(len(ws))):
        grads[i] = (dz @ activations[i].T / m, dz.sum(axis=1) / m)
        if i:
            dz = (ws[i].T @ dz) * (pre[i - 1] > 0)
    return grads


def test_a_step_is_the_courses_update_on_a_slice(splits):
    x, y = splits["x_train"][:12], splits["y_train"][:12]
    params = course.initial_parameters([12288, 4, 3, 1], "fan_in", seed=1)
    before = copy.deepcopy(params)
    lr = CONFIG["course"]["lr"]
    cost = course.gradient_descent_step(params, x, y, lr)
    assert cost == pytest.approx(course.cost(course.logits(before, x), y).item())
    for (w, b), (w0, b0), (dw, db) in zip(params, before, _courses_backward(before, x, y)):
        np.testing.assert_allclose(w.numpy(), w0.numpy() - lr * dw, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.numpy(), b0.numpy() - lr * db, rtol=1e-12, atol=1e-15)
        assert not w.requires_grad and not b.requires_grad


@pytest.mark.parametrize("network", ["two_layer", "four_layer"])
def test_the_cost_decreases_over_a_few_iterations(splits, network, one_thread):
    spec = CONFIG["course"]["networks"][network]
    params = course.initial_parameters(spec["sizes"], spec["init"], seed=0)
    costs = [course.gradient_descent_step(params, splits["x_train"], splits["y_train"], 0.0075) for _ in range(8)]
    assert costs[0] == pytest.approx(np.log(2), abs=0.05)  # near-zero logits at initialisation
    assert all(b < a for a, b in zip(costs, costs[1:]))


def test_run_writes_one_row_per_network_and_seed(tmp_path, monkeypatch, files):
    monkeypatch.setattr(course, "configure_process", lambda threads: None)  # leave this process's settings alone
    settings = {**CONFIG["course"], "iterations": 3, "seeds": [0, 2], "course_draw_seed": 1}
    out = tmp_path / "course" / "accuracy.parquet"
    course.run({k: str(v) for k, v in files.items()}, str(out), settings)
    table = pd.read_parquet(out)
    assert list(table.columns) == course.COLUMNS
    assert list(zip(table.network, table.draw, table.seed)) == [
        ("two_layer", "torch", 0),
        ("two_layer", "torch", 2),
        ("two_layer", "numpy", 1),
        ("four_layer", "torch", 0),
        ("four_layer", "torch", 2),
        ("four_layer", "numpy", 1),
    ]
    assert set(table.sizes) == {"[12288, 7, 1]", "[12288, 20, 7, 5, 1]"}
    assert (table.n_train == 209).all() and (table.n_test == 50).all() and (table.iterations == 3).all()
    assert table.train_cat_share.iloc[0] == pytest.approx(72 / 209) and table.test_cat_share.iloc[0] == 0.66
    assert table.reported_test_accuracy.tolist() == [0.72] * 3 + [0.8] * 3
    assert table.test_accuracy.between(0, 1).all() and (table.wall_s > 0).all() and np.isfinite(table.final_cost).all()

    bad = copy.deepcopy(settings)
    bad["networks"]["two_layer"]["sizes"] = [784, 7, 1]
    with pytest.raises(ValueError, match="course.networks.two_layer.sizes"):
        course.run({k: str(v) for k, v in files.items()}, str(out), bad)


def _accuracy_frame() -> pd.DataFrame:
    rows = []
    for network, sizes, reported, tests in (
        ("two_layer", "[12288, 7, 1]", 0.72, [0.70, 0.74, 0.72, 0.76, 0.68]),
        ("four_layer", "[12288, 20, 7, 5, 1]", 0.8, [0.80, 0.78, 0.82, 0.80, 0.84]),
    ):
        for seed, test in [*enumerate(tests), (1, reported)]:
            rows.append(
                {
                    "network": network,
                    "sizes": sizes,
                    "draw": "torch" if len(rows) % 6 < 5 else "numpy",
                    "seed": seed,
                    "iterations": 2500,
                    "train_accuracy": 0.99,
                    "test_accuracy": test,
                    "final_cost": 0.05,
                    "wall_s": 10.0,
                    "n_train": 209,
                    "n_test": 50,
                    "train_cat_share": 72 / 209,
                    "test_cat_share": 0.66,
                    "reported_test_accuracy": reported,
                }
            )
    return pd.DataFrame(rows, columns=course.COLUMNS)


def test_table_gives_median_and_range_beside_the_course_and_the_cat_shares(tmp_path):
    paths = [str(tmp_path / name) for name in ("accuracy.parquet", "summary.parquet", "summary.tex")]
    _accuracy_frame().to_parquet(paths[0], index=False)
    course_report.write_table(*paths)
    summary = pd.read_parquet(paths[1])
    assert summary.network.tolist() == ["two_layer", "four_layer"]  # config order, not alphabetical
    two = summary.iloc[0]
    assert (two.n_seeds, two.median_test_accuracy, two.min_test_accuracy, two.max_test_accuracy) == (
        5,
        pytest.approx(0.72),
        pytest.approx(0.68),
        pytest.approx(0.76),
    )
    assert two.test_accuracy_gap == pytest.approx(0.0) and summary.iloc[1].test_accuracy_gap == pytest.approx(0.0)
    tex = Path(paths[2]).read_text()
    assert r"$[12288, 7, 1]$ & $99.0$ & $72$ [$68$, $76$] & $72$ & $72$ & $66$ & $34$ \\" in tex
    assert r"$[12288, 20, 7, 5, 1]$ & $99.0$ & $80$ [$78$, $84$] & $80$ & $80$ & $66$ & $34$ \\" in tex
    without = pd.read_parquet(paths[0]).query("draw == 'torch'")
    assert r"$[12288, 7, 1]$ & $99.0$ & $72$ [$68$, $76$] & -- & $72$" in course_report.latex_table(
        course_report.summary(without)
    )
    assert r"\toprule" in tex and r"\bottomrule" in tex


def test_macros_follow_the_summary_and_say_when_nothing_was_trained():
    summary = course_report.summary(_accuracy_frame())
    macros = course_macros(CONFIG, summary)
    assert macros["CourseIterations"] == "2,500" and macros["CourseLr"] == "0.0075" and macros["CourseSeeds"] == "5"
    assert macros["CourseReportedList"] == r"$72\%$ and $80\%$"
    assert (macros["CourseTestCatShare"], macros["CourseTrainCatShare"]) == (r"$66\%$", r"$34\%$")
    sentence = macros["CourseComparison"]
    assert r"$72\%$ (range $68\%$ to $76\%$) for $[12288, 7, 1]$, against the course's $72\%$; and $80\%$" in sentence
    assert r"seeded with 1, as the course seeds it), our loop gives a test accuracy of $72\%$ for" in sentence
    empty = course_macros(CONFIG, None)
    assert empty.keys() == macros.keys() and empty["CourseTestCatShare"] == "n/a"


def test_the_span_first_layer_trains_as_the_plain_one(splits, one_thread):
    """in_span's features and coordinates give the plain network's costs and accuracies, to float64 rounding."""
    fast = course.train_network(splits, [12288, 7, 1], "small", 0.0075, 30, seed=3)
    plain = course.train_network(splits, [12288, 7, 1], "small", 0.0075, 30, seed=3, span=False)
    assert fast["final_cost"] == pytest.approx(plain["final_cost"], rel=1e-10)
    assert (fast["train_accuracy"], fast["test_accuracy"]) == (plain["train_accuracy"], plain["test_accuracy"])
