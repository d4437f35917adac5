"""Tests of covbench.analysis.mechanism and covbench.report.macros.mechanism: the Mechanism section's numbers land in its sentences, missing data reads as a
sentence, and the medians per dataset, method and depth are right."""

import numpy as np
import pandas as pd
import pytest
from test_paper import quick_config, specs_of, synthetic_method_summary

from covbench.analysis.mechanism import note_table
from covbench.report import paper
from covbench.report.macros import mechanism

DEPTH = 32


def grid_config(methods=("baseline", "covariance", "covariance_pooled", "relu_he")) -> dict:
    config = quick_config()
    config["grid"].update(datasets=["mnist"], methods=list(methods), depths=[8, DEPTH], seeds=[0, 1, 2])
    return config


def constructed_tables(config: dict):
    """run_summary, layer_summary and probe_summary with hand-set values at depth 32 on MNIST:

    covariance: cosine 0.25 at layer 1 and -0.5 at layer 32 over the last epoch (0 at init), ratio 0.004 at layer 1
    and 0.3 at layer 32, active on 10%, 20%, 60% of logged steps (median 20%), layer-1 probe gains 0.01, 0.02, 0.03;
    covariance_pooled: no finite force statistic (every run diverged); baseline gains 0.005 (all seeds);
    relu_he, the best remedy on validation, gains 0.3.
    """
    runs, layers, probes = [], [], []
    gains = {
        "baseline": [0.005] * 3,
        "covariance": [0.01, 0.02, 0.03],
        "covariance_pooled": [np.nan] * 3,
        "relu_he": [0.3] * 3,
    }
    active = {"covariance": [0.1, 0.6, 0.2], "covariance_pooled": [np.nan] * 3}
    for method in config["grid"]["methods"]:
        for depth in config["grid"]["depths"]:
            for seed in config["grid"]["seeds"]:
                runs.append(
                    {
                        "dataset": "mnist",
                        "method": method,
                        "depth": depth,
                        "seed": seed,
                        "diverged": method == "covariance_pooled",
                        "collapsed": False,
                        "best_val_accuracy": 0.95 if method == "relu_he" else 0.5,
                        "val_majority_rate": 0.1135,  # MNIST's validation set: its most common class
                        "test_accuracy": 0.9,
                        "active_step_fraction": active.get(method, [np.nan] * 3)[seed],
                        "probe_gain_layer1": gains[method][seed],
                    }
                )
            for layer in range(1, depth + 1):
                for epoch in (0, 1, 2):
                    force = {
                        "covariance": {
                            "force_grad_cosine": {1: 0.25, depth: -0.5}.get(layer, 0.1),
                            "force_grad_ratio": {1: 0.004, depth: 0.3}.get(layer, 0.01),
                            "active_groups": 0.2,
                        }
                    }.get(method)
                    for statistic in ("force_grad_ratio", "force_grad_cosine", "active_groups"):
                        value = np.nan if force is None else force[statistic] * (epoch == 2) + 0.01 * (epoch == 1)
                        layers.append(
                            {
                                "dataset": "mnist",
                                "method": method,
                                "depth": depth,
                                "layer": layer,
                                "epoch": epoch,
                                "statistic": statistic,
                                "median": value,
                            }
                        )
                for epoch in (0, 2):
                    accuracy = 0.6 + (epoch > 0) * (0.3 if method == "relu_he" else 0.02)
                    probes.append(
                        {
                            "dataset": "mnist",
                            "method": method,
                            "depth": depth,
                            "layer": layer,
                            "epoch": epoch,
                            "median": accuracy,
                        }
                    )
    run_summary = pd.DataFrame(runs)
    method_summary = synthetic_method_summary(
        run_summary.assign(vanishing_index_init=0.0, vanishing_index_epoch1=0.0, epochs_to_threshold=np.nan)
    )
    return run_summary, pd.DataFrame(layers), pd.DataFrame(probes), method_summary


def decided(method_summary: pd.DataFrame, depth: int, best: str | None) -> pd.DataFrame:
    """comparisons rows that carry the verdicts' best remedy at `depth` (the sentences read it, never choose it)."""
    return pd.DataFrame({"dataset": ["mnist"], "depth": [depth], "best_remedy": [best]})


def test_numbers_land_in_the_sentences():
    config = grid_config()
    run_summary, layer_summary, probe_summary, method_summary = constructed_tables(config)
    comparisons = decided(method_summary, 32, "relu_he")
    macros = mechanism.mechanism_macros(config, run_summary, layer_summary, probe_summary, comparisons)
    assert macros["MechanismDepth"] == "32"
    assert macros["MechanismCosineFirstMnistCovariance"] == "$0.25$"
    assert macros["MechanismCosineLastMnistCovariance"] == "$-0.50$"
    assert macros["MechanismRatioFirstMnistCovariance"] == r"$4.0 \times 10^{-3}$"
    assert macros["MechanismActiveMnistCovariance"] == r"$20\%$"
    assert macros["MechanismProbeGainMnistCovariance"] == "$+2.0$"
    assert macros["MechanismProbeGainMnistBaseline"] == "$+0.5$"
    assert macros["MechanismProbeGainMnistReluHe"] == "$+30.0$"
    assert macros["MechanismBestRemedyMnist"] == r"\texttt{relu\_he}"
    force = macros["MechanismForceMnist"]
    assert force.startswith(
        r"At depth 32 on MNIST, over the last epoch, the median cosine between the force and the "
        r"gradient it joins at (layer 1, layer 32) is ($0.25$, $-0.50$) for \texttt{covariance}; "
        r"the median ratio of their norms is ($4.0 \times 10^{-3}$, $0.30$) for "
        r"\texttt{covariance}."
    )
    assert (
        r"\texttt{covariance\_pooled} has no finite force statistic over the last epoch at depth 32 on MNIST." in force
    )
    assert r"$20\%$ for \texttt{covariance}" in macros["MechanismActiveMnist"]
    probes = macros["MechanismProbesMnist"]
    assert probes.startswith("At depth 32 on MNIST, the validation accuracy of the first layer's linear probe")
    assert (
        r"$+2.0$ (from $60.0\%$ to $62.0\%$) for \texttt{covariance} and n/a (no finite probe) for "
        r"\texttt{covariance\_pooled}, against $+0.5$ (from $60.0\%$ to $62.0\%$) for their base "
        r"\texttt{baseline}; and $+30.0$ (from $60.0\%$ to $90.0\%$) for the best remedy on validation, "
        r"\texttt{relu\_he}."
    ) in probes
    assert macros["MechanismForceSentences"] == force  # one dataset
    paper.macros_tex(macros)  # every name is a LaTeX macro name


def test_missing_variant_and_missing_tables_give_sentences():
    """relu_he_covariance is in the grid but was not run; its base is missing; no layer or probe summaries."""
    config = grid_config(("baseline", "covariance", "relu_he_covariance"))
    run_summary, _, _, method_summary = constructed_tables(grid_config(("baseline", "covariance", "relu_he")))
    run_summary = run_summary[run_summary.method != "relu_he"]
    macros = mechanism.mechanism_macros(config, run_summary, None, None, decided(method_summary, 32, None))
    assert r"\texttt{relu\_he\_covariance} was not run at depth 32 on MNIST." in macros["MechanismForceMnist"]
    assert r"\texttt{covariance} has no finite force statistic" in macros["MechanismForceMnist"]
    assert "(its base is not in the grid)" in macros["MechanismProbesMnist"]
    assert macros["MechanismCosineFirstMnistReluHeCovariance"] == "n/a"
    assert "not measured for \\texttt{relu\\_he\\_covariance}, which was not run" in macros["MechanismActiveMnist"]
    no_variant = grid_config(("baseline", "relu_he"))
    macros = mechanism.mechanism_macros(no_variant, run_summary, None, None, decided(method_summary, 32, None))
    assert macros["MechanismForceSentences"] == "No covariance variant was run at depth 32 on MNIST."


def test_note_table_at_depths_eight_and_thirty_two():
    config = grid_config()
    run_summary, layer_summary, probe_summary, _ = constructed_tables(config)
    table = note_table(run_summary, layer_summary, specs_of(config), probe_summary=probe_summary)
    assert table.depth.unique().tolist() == [8, 32]
    assert table[table.depth == 32].role.tolist() == ["baseline", "covariance", "covariance_pooled", "best remedy"]
    row = table.set_index(["depth", "role"])
    covariance = row.loc[(32, "covariance")]
    assert covariance[["cosine_layer1", "cosine_layerL", "ratio_layer1", "ratio_layerL"]].tolist() == pytest.approx(
        [0.25, -0.5, 0.004, 0.3]
    )
    assert covariance.active_step_fraction == pytest.approx(0.2) and covariance.runs == 3
    assert covariance.probe_gain_layer1 == pytest.approx(0.02)
    assert row.loc[(8, "covariance"), "cosine_layerL"] == pytest.approx(-0.5)  # layer L = 8 there
    assert row.loc[(32, "best remedy"), "method"] == "relu_he"
    assert row.loc[(32, "best remedy"), "probe_layer1_final"] == pytest.approx(0.9)
    assert np.isnan(row.loc[(32, "baseline"), "cosine_layer1"])  # no force


@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "$0$"),
        (0.004, r"$4.0 \times 10^{-3}$"),
        (0.3, "$0.30$"),
        (2.5, "$2.5$"),
        (0.000996, r"$1.0 \times 10^{-3}$"),
        (1234.0, r"$1.2 \times 10^{3}$"),
        (np.nan, "n/a"),
        (np.inf, "n/a"),
    ],
)
def test_magnitude(value, text):
    assert mechanism.magnitude(value) == text
