"""Tests of covbench.report.figures and covbench.report.palette on tables aggregated from small synthetic runs."""

import inspect
import shutil
import struct
import subprocess

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from test_aggregate import THRESHOLDS, synthetic_probes, synthetic_runs
from test_sweep import SETTINGS, synthetic_sweep_runs

from covbench.analysis import aggregate, sweep
from covbench.report import draw
from covbench.report.figures import layout
from covbench.report.palette import method_styles
from covbench.training.tune import PROFILE_COLUMNS

CONFIG_METHODS = ["relu_he", "baseline", "covariance", "tanh_xavier", "covariance_pooled"]
RUN_METHODS = ("baseline", "covariance", "relu_he", "covariance_pooled")
COVARIANCE = ["covariance", "covariance_pooled"]
OPTIONS = {
    "speed_over_training": {"covariance_methods": COVARIANCE, "baseline": "baseline"},
    "force_vs_gradient": {"covariance_methods": COVARIANCE},
    "active_groups": {"covariance_methods": COVARIANCE},
    "probe_accuracy": {
        "covariance_methods": COVARIANCE,
        "baseline": "baseline",
        "bases": {"covariance": "baseline", "covariance_pooled": "baseline"},
    },
}
INPUTS = {
    "layer_summary",
    "method_summary",
    "epoch_curves",
    "layer_stats",
    "sweep_runs",
    "sweep_summary",
    "probe_summary",
    "lambda_profile",
    "comparisons",
}


def synthetic_profile() -> pd.DataFrame:
    """A lambda profile (tune.PROFILE_COLUMNS) of covariance nested in the baseline at depths 2 and 4."""
    rows = [
        {
            "dataset": "mnist",
            "method": "covariance",
            "base": "baseline",
            "depth": depth,
            "hyperparameter": "cov_lambda",
            "value": value,
            "lr": 0.1,
            "rung": 2,
            "val_loss": 0.5 + value / 10,
            "val_accuracy": 0.9 - value / 100,
            "collapsed": False,
            "diverged": False,
            "chosen": value == 1e-4,
            "base_val_loss": 0.5,
            "base_val_accuracy": 0.9,
        }
        for depth in (2, 4)
        for value in (1e-4, 1e-2, 1.0)
    ]
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def synthetic_comparisons() -> pd.DataFrame:
    """Primary rows of both tracks, one per verdict: each covariance variant against its base (baseline) and against
    the best remedy the verdicts name, relu_he."""
    verdicts = ["beats", "is beaten by", "is equivalent to", "inconclusive"]
    rows = [
        {
            "dataset": dataset,
            "family": family,
            "metric": "test_accuracy",
            "method": variant,
            "other_method": other,
            "role": role,
            "best_remedy": "relu_he",
            "depth": depth,
            "difference": d,
            "ci_low": d - 0.01,
            "ci_high": d + 0.01,
            "margin": 0.01,
            "verdict": verdict,
        }
        for dataset, family in (("mnist", "primary"), ("catvnoncat", "primary"), ("smnist", "recurrent_primary"))
        for variant in COVARIANCE
        for other, role in (("baseline", "base"), ("relu_he", "best_remedy"))
        for depth, d, verdict in zip((2, 4, 8, 16), (0.05, -0.05, 0.0, 0.02), verdicts)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables():
    runs, epochs, layer_stats = synthetic_runs(methods=RUN_METHODS, depths=(2, 4), seeds=(0, 1))
    probes = synthetic_probes(runs, epochs)
    per_run = aggregate.run_summary(runs, epochs, layer_stats, THRESHOLDS, probes)
    cat = per_run.dataset == "catvnoncat"  # the constant predictor's rates of each run's split
    per_run = per_run.assign(
        val_majority_rate=np.where(cat, 0.6, 0.1135), test_majority_rate=np.where(cat, 0.62 + 0.02 * per_run.seed, 0.1)
    )
    sweep_runs = synthetic_sweep_runs()
    return {
        "layer_summary": aggregate.layer_summary(layer_stats),
        "method_summary": aggregate.method_summary(per_run),
        "epoch_curves": epochs,
        "layer_stats": layer_stats,
        "sweep_runs": sweep_runs,
        "sweep_summary": sweep.summarize(sweep_runs, SETTINGS),
        "probe_summary": aggregate.probe_summary(probes),
        "lambda_profile": synthetic_profile(),
        "comparisons": synthetic_comparisons(),
    }


def _needed(figure) -> set[str]:
    return set(inspect.signature(draw.FIGURES[figure]).parameters) & INPUTS


def _draw(figure, tables, methods=CONFIG_METHODS):
    needed = _needed(figure)
    frames = {name: frame for name, frame in tables.items() if name in needed}
    return draw.FIGURES[figure](**frames, styles=method_styles(methods), **OPTIONS.get(figure, {}))


def _colors_by_method(fig) -> dict[str, str]:
    """Colour of every labelled line or error-bar series in the figure, by its label."""
    colors = {}
    for ax in fig.axes:
        series = [(line.get_label(), line.get_color()) for line in ax.get_lines()]
        series += [(container.get_label(), container.lines[0].get_color()) for container in ax.containers]
        for label, color in series:
            if not label.startswith("_"):
                assert colors.setdefault(label, matplotlib.colors.to_hex(color)) == matplotlib.colors.to_hex(color)
    return colors


def _png_size(png) -> tuple[int, int]:
    """Width and height in pixels, from the PNG's IHDR chunk."""
    return struct.unpack(">II", png.read_bytes()[16:24])


def _labels(fig) -> list[str]:
    """Every panel's title and axis labels, and the figure's own title."""
    texts = [text for ax in fig.axes for text in (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())]
    return [text for text in texts + [fig.get_suptitle()] if text]


@pytest.mark.parametrize("figure", list(draw.FIGURES))
def test_make_draws_the_tables_into_pdf_and_png(figure, tables, tmp_path, monkeypatch):
    """What make saves: every visible panel draws something (data, or a sentence saying why there is none), the
    figure names its axes, the PNG is that figure at the report's resolution, and the PDF carries its labels."""
    inputs = {}
    for name in INPUTS:
        inputs[name] = str(tmp_path / f"{name}.parquet")
        tables[name].to_parquet(inputs[name], index=False)
    needed = _needed(figure)
    pdf, png = tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png"
    saved, save = [], draw.save
    monkeypatch.setattr(draw, "save", lambda fig, pdf, png: (saved.append(fig), save(fig, pdf, png)))
    draw.make(
        figure,
        {name: path for name, path in inputs.items() if name in needed},
        str(pdf),
        str(png),
        CONFIG_METHODS,
        **OPTIONS.get(figure, {}),
    )
    [fig] = saved
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert panels
    for ax in panels:
        assert ax.lines or ax.collections or ax.patches or ax.images or ax.texts, f"{figure}: an empty panel"
    labels = _labels(fig)
    assert labels, f"{figure}: no axis is named"
    width, height = fig.get_size_inches() * layout.PNG_DPI
    assert _png_size(png) == (pytest.approx(width, abs=1), pytest.approx(height, abs=1))
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())
        plain = [" ".join(label.split()) for label in labels if "$" not in label]  # mathtext is set as glyphs
        assert not plain or any(label in text for label in plain), (figure, plain)


def test_method_colour_is_the_same_in_two_figures(tables):
    """Fixed by the config's methods, not by those a figure shows: relu_he is absent from the second figure."""
    without_relu = {name: frame[frame.method != "relu_he"] for name, frame in tables.items() if "method" in frame}
    at_init = _colors_by_method(_draw("speed_at_init", tables))
    by_depth = _colors_by_method(_draw("accuracy_vs_depth", without_relu))
    assert set(at_init) == set(RUN_METHODS) and set(by_depth) == set(RUN_METHODS) - {"relu_he"}
    styles = method_styles(CONFIG_METHODS)
    for method, color in by_depth.items():
        assert color == at_init[method] == matplotlib.colors.to_hex(styles[method]["color"])


def test_method_styles_depend_only_on_the_set_of_methods():
    many = [f"method_{i:02d}" for i in range(25)]
    styles = method_styles(many)
    assert method_styles(list(reversed(many))) == styles
    assert len({(tuple(s["color"]), s["linestyle"]) for s in styles.values()}) == len(many)
    assert len({tuple(s["color"]) for s in styles.values()}) == 10  # the colour-blind palette, reused with new dashes


def test_performance_profile_fractions():
    rows = [
        ("mnist", 2, "a", 2.0),
        ("mnist", 2, "b", 4.0),
        ("mnist", 2, "c", np.inf),
        ("mnist", 4, "a", 6.0),
        ("mnist", 4, "b", 3.0),
        ("mnist", 4, "c", np.nan),
        ("catvnoncat", 2, "a", np.inf),
        ("catvnoncat", 2, "b", np.inf),
        ("catvnoncat", 2, "c", np.inf),
    ]
    summary = pd.DataFrame(rows, columns=["dataset", "depth", "method", "median"]).assign(metric="epochs_to_threshold")
    profile = aggregate.performance_profile(summary, np.array([1.0, 1.9, 2.0, 4.0]))
    fraction = profile.set_index(["method", "tau"])["fraction"]
    assert profile.workloads.unique().tolist() == [3]
    assert fraction.loc["a"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert fraction.loc["b"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert fraction.loc["c"].tolist() == [0, 0, 0, 0]


# --- the mechanism figures -------------------------------------------------------------------


def test_force_figure_draws_each_variant_at_init_and_last_epoch(tables):
    fig = _draw("force_vs_gradient", tables)
    labelled = [line for ax in fig.axes for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert {line.get_label() for line in labelled} == set(COVARIANCE)
    assert {line.get_linestyle() for line in labelled} == {":", "-"}  # init dotted, last epoch solid
    assert len(fig.axes) == 2 * 2 * 2  # (dataset x statistic) rows, a column per depth


def test_mechanism_figures_without_covariance_say_so(tables):
    no_force = {
        name: frame[~frame.method.isin(COVARIANCE)] if "method" in frame else frame for name, frame in tables.items()
    }
    for figure in ("force_vs_gradient", "active_groups"):
        fig = _draw(figure, no_force)
        assert "no covariance variant" in fig.axes[0].texts[0].get_text()


def test_probe_figure_shows_baseline_variants_and_best_remedy(tables):
    fig = _draw("probe_accuracy", tables)
    shown = {line.get_label() for ax in fig.axes for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert shown == {"baseline", "covariance", "covariance_pooled", "relu_he"}  # relu_he: the best remedy
    assert "best remedy: relu_he" in fig.axes[1].get_title()
    chance = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert chance and set(chance[0].get_ydata()) == {0.5}  # catvnoncat: two classes


def test_accuracy_figures_show_the_constant_predictor(tables):
    """A dashed line at the median test_majority_rate in every panel of the accuracy-vs-depth figure, and a row of it
    in the heatmap (a constant predictor is the floor a method must clear)."""
    fig = _draw("accuracy_vs_depth", tables)
    floors = {
        ax.get_title(): [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
        for ax in fig.axes
    }
    assert floors["catvnoncat"] == [pytest.approx(0.63)] and floors["mnist"] == [pytest.approx(0.1)]
    heatmap = _draw("accuracy_heatmap", tables)
    assert heatmap.axes[0].get_yticklabels()[-1].get_text() == "majority class"
    assert [t.get_text() for t in heatmap.axes[0].texts][-2:] == ["63.0", "63.0"]  # catvnoncat, depths 2 and 4


def test_forest_axis_label_fits_in_the_figure(tables):
    """Long row labels push the panel right; its x-axis label once ran past the right edge ("percentage poin")."""
    long_names = tables["comparisons"].assign(method="covariance_pooled", other_method="relu_he_preact_batchnorm")
    fig = _draw("forest", {**tables, "comparisons": long_names})
    fig.canvas.draw()
    label = fig.axes[-1].xaxis.label.get_window_extent()
    bounds = fig.bbox
    assert bounds.x0 <= label.x0 and label.x1 <= bounds.x1 and bounds.y0 <= label.y0


# --- the answer's lines in colour, the rest in grey -------------------------------------------------


def test_methods_that_do_not_answer_are_grey_and_the_best_remedy_is_read_from_the_verdicts(tables):
    """Only covariance is compared: covariance_pooled is a grey line without a legend entry of its own; relu_he is in
    colour because the verdicts name it the best remedy, and baseline because it is covariance's base."""
    only_covariance = tables["comparisons"][tables["comparisons"].method == "covariance"]
    for figure in ("accuracy_vs_depth", "speed_at_init", "loss_curves", "vanishing_index", "performance_profile"):
        fig = _draw(figure, {**tables, "comparisons": only_covariance})
        assert set(_colors_by_method(fig)) == {"covariance", "baseline", "relu_he"}, figure
        assert [t.get_text() for t in fig.legends[0].get_texts()][-1] == "other methods"
        grey = [line for ax in fig.axes for line in ax.get_lines() if line.get_label() == "_covariance_pooled"]
        grey += [bars.lines[0] for ax in fig.axes for bars in ax.containers if bars.get_label() == "_covariance_pooled"]
        assert grey and all(matplotlib.colors.to_hex(line.get_color()) == "#bfbfbf" for line in grey), figure
    named = only_covariance.assign(best_remedy="tanh_xavier")  # the verdicts' choice, not one made again
    fig = _draw("speed_at_init", {**tables, "comparisons": named})
    assert set(_colors_by_method(fig)) == {"covariance", "baseline"}  # tanh_xavier never ran; relu_he is grey now


def test_figures_are_drawn_at_print_size(tables):
    """No figure is wider than the text block or taller than a page leaves for it, so the paper includes
    each at natural size and its 6-7 pt text prints at 6-7 pt."""
    for figure in draw.FIGURES:
        fig = _draw(figure, tables)
        width, height = fig.get_size_inches()
        assert width <= layout.FULL_WIDTH and height <= layout.MAX_HEIGHT, (figure, width, height)
        plt.close(fig)
    rc = layout.THEME["rc"]
    assert (
        min(size for key, size in rc.items() if key.endswith(("font.size", "fontsize", "labelsize", "titlesize"))) >= 6
    )
