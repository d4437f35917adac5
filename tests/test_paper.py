"""Tests of the paper's generated parts: macros follow the results, tables are well formed, the PDF builds.

The inputs are synthetic tables in the agreed formats (tmp_path), so the tests need no training run.
"""

import os
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from covbench.analysis.compare import compare, run  # noqa: E402
from covbench.config import covariance_methods, method_spec  # noqa: E402
from covbench.report import legibility, paper, prose  # noqa: E402
from covbench.report.macros import setup  # noqa: E402
from covbench.report.tables import TABLES, all_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = [
    "forest",
    "lambda_profile",
    "speed_at_init",
    "speed_over_training",
    "vanishing_index",
    "accuracy_vs_depth",
    "loss_curves",
    "saturation",
    "accuracy_heatmap",
    "performance_profile",
    "lambda_sweep",
    "nielsen_speed",
    "force_vs_gradient",
    "active_groups",
    "probe_accuracy",
    "accuracy_vs_length",
    "hidden_grad_over_time",
    "temporal_vanishing_index",
]
SUMMARY_METRICS = [
    "test_accuracy",
    "best_val_accuracy",
    "vanishing_index_init",
    "vanishing_index_epoch1",
    "epochs_to_threshold",
    "val_majority_rate",
    "test_majority_rate",
]
SPLIT_PROTOCOLS = {"mnist": "official", "catvnoncat": "per_seed"}  # cat/not-cat: a split per seed


# --- synthetic results in the agreed formats -------------------------------------------------------


def quick_config() -> dict:
    """config/config.yaml with the grid of config/quick.yaml (what the paper must build with)."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["grid"].update(yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())["grid"])
    return config


def synthetic_run_summary(config: dict, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in config["grid"]["datasets"]:
        for method in config["grid"]["methods"]:
            for depth in config["grid"]["depths"]:
                for s in config["grid"]["seeds"]:
                    rows.append(
                        {
                            "dataset": dataset,
                            "method": method,
                            "depth": depth,
                            "seed": s,
                            "diverged": False,
                            "collapsed": s == 0 and depth == max(config["grid"]["depths"]),
                            "test_accuracy": float(np.clip(0.7 + rng.normal(0, 0.02), 0, 1)),
                            "best_val_accuracy": float(rng.uniform(0.5, 0.9)),
                            "final_train_loss": float(rng.uniform()),
                            "epochs_to_threshold": np.nan,
                            "reached_threshold": False,
                            "vanishing_index_init": float(-0.1 * depth + rng.normal(0, 0.1)),
                            "vanishing_index_epoch1": float(-0.05 * depth + rng.normal(0, 0.1)),
                            "active_step_fraction": (float(rng.uniform()) if "covariance" in method else np.nan),
                            "probe_gain_layer1": float(rng.uniform(-0.05, 0.2)),
                            "val_majority_rate": 0.6 if dataset == "catvnoncat" else 0.11,
                            "test_majority_rate": 0.64 if dataset == "catvnoncat" else 0.11,
                            "split_protocol": SPLIT_PROTOCOLS[dataset],
                            "n_train": 168.0 if dataset == "catvnoncat" else 50_000.0,
                            "n_val": 41.0 if dataset == "catvnoncat" else 5_000.0,
                            "n_test": 50.0 if dataset == "catvnoncat" else 10_000.0,
                            "split_sha256": f"split of seed {s}" if dataset == "catvnoncat" else None,
                            "wall_s": 1.0,
                        }
                    )
    return pd.DataFrame(rows)


def synthetic_layer_summary(config: dict, epochs: int = 2) -> pd.DataFrame:
    """The force statistics of layer_summary: for covariance variants ratio 10 ** -layer, cosine 0.1 (0 at init) and
    active groups 0.5 (0 at init); NaN for the other methods."""
    rows = []
    for dataset in config["grid"]["datasets"]:
        for method in config["grid"]["methods"]:
            force = "covariance" in method
            for depth in config["grid"]["depths"]:
                for layer in range(1, depth + 1):
                    for epoch in range(epochs + 1):
                        for statistic, value in (
                            ("force_grad_ratio", 10.0**-layer),
                            ("force_grad_cosine", 0.1),
                            ("active_groups", 0.5),
                        ):
                            value = (value if epoch else 0.0) if force else np.nan
                            rows.append(
                                {
                                    "dataset": dataset,
                                    "method": method,
                                    "depth": depth,
                                    "layer": layer,
                                    "epoch": epoch,
                                    "statistic": statistic,
                                    "median": value,
                                    "ci_low": value,
                                    "ci_high": value,
                                    "n_seeds": len(config["grid"]["seeds"]),
                                }
                            )
    return pd.DataFrame(rows)


def synthetic_probe_summary(config: dict, epochs: int = 2) -> pd.DataFrame:
    rows = [
        {
            "dataset": dataset,
            "method": method,
            "depth": depth,
            "layer": layer,
            "epoch": epoch,
            "median": 0.5 + 0.1 * (epoch > 0),
            "ci_low": 0.45,
            "ci_high": 0.65,
            "n_seeds": 2,
        }
        for dataset in config["grid"]["datasets"]
        for method in config["grid"]["methods"]
        for depth in config["grid"]["depths"]
        for layer in range(1, depth + 1)
        for epoch in (0, epochs)
    ]
    return pd.DataFrame(rows)


def synthetic_method_summary(run_summary: pd.DataFrame) -> pd.DataFrame:
    metrics = [m for m in SUMMARY_METRICS if m in run_summary]  # test_mechanism's runs have no majority rates
    long = run_summary.melt(["dataset", "method", "depth", "seed"], metrics, var_name="metric")
    grouped = long.groupby(["dataset", "method", "depth", "metric"]).value
    table = grouped.agg(median="median", mean="mean", ci_low="min", ci_high="max", n_seeds="count").reset_index()
    return table


def synthetic_chosen(config: dict) -> pd.DataFrame:
    rows = []
    for dataset in config["grid"]["datasets"]:
        for method in config["grid"]["methods"]:
            aux = method_spec(config, method)["aux"]
            for depth in config["grid"]["depths"]:
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "depth": depth,
                        "lr": 0.03,
                        "cov_lambda": 3.2 if aux.startswith("covariance") else np.nan,
                        "aux_weight": 0.3 if aux == "deep_supervision" else np.nan,
                        "selected_on": "best_val_loss",
                        "val_loss": 0.5,
                        "val_accuracy": 0.8,
                        "lr_edge": "low" if depth == max(config["grid"]["depths"]) else "",
                        "aux_edge": "",
                        "trials": config["tune"]["trials"],
                        "trials_diverged": 1,
                        "trials_overfit": 2,
                        "collapsed": False,
                        "tune_epochs": config["datasets"][dataset]["tune_epochs"][-1],
                        "nested_in": "baseline" if aux.startswith("covariance") else "",
                    }
                )
    return pd.DataFrame(rows)


def specs_of(config: dict) -> dict[str, dict]:
    return {m: method_spec(config, m) for m in config["grid"]["methods"]}


def comparisons_of(config: dict, run_summary: pd.DataFrame) -> pd.DataFrame:
    return compare(run_summary, specs_of(config), config["compare"], split_protocols=SPLIT_PROTOCOLS)


FIGURE_RULES = {
    **{f"figures/{name}": "figures" for name in FIGURES},
    "nielsen/speed_at_init": "nielsen",
    "course/accuracy_summary": "course_table",
}


def write_results(results: Path, config: dict, run_summary: pd.DataFrame) -> None:
    """Everything rule `paper` reads, under results/, as the pipeline would leave it."""
    comparisons = comparisons_of(config, run_summary)
    method_summary, chosen = synthetic_method_summary(run_summary), synthetic_chosen(config)
    for kind, text in all_tables(
        method_summary, comparisons, chosen, specs_of(config), config["grid"]["datasets"], "tables"
    ).items():
        (results / "tables").mkdir(parents=True, exist_ok=True)
        (results / "tables" / f"{kind}.tex").write_text(text)
    macros = paper.paper_macros(
        config,
        run_summary,
        method_summary,
        comparisons,
        chosen,
        FIGURE_RULES,
        layer_summary=synthetic_layer_summary(config),
        probe_summary=synthetic_probe_summary(config),
    )
    (results / "paper").mkdir(parents=True, exist_ok=True)
    (results / "paper" / "macros.tex").write_text(paper.macros_tex(macros))
    (results / "figures").mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.plot([1, 2, 3], [3, 1, 2])
        axis.set_title(name)
        figure.savefig(results / "figures" / f"{name}.pdf")
        plt.close(figure)
    (results / "nielsen").mkdir(parents=True, exist_ok=True)
    (results / "nielsen" / "speed_at_init.tex").write_text(
        "\\begin{tabular}{lrr}\n\\toprule\nnetwork & layer 1 & layer 2 \\\\\n\\midrule\n"
        "$[784, 30, 30, 10]$ & $0.0110 \\pm 0.0010$ & $0.110 \\pm 0.010$ \\\\\n\\bottomrule\n\\end{tabular}\n"
    )
    (results / "course").mkdir(parents=True, exist_ok=True)
    (results / "course" / "accuracy_summary.tex").write_text(
        "\\begin{tabular}{lcc}\n\\toprule\nnetwork & test, ours & test, course \\\\\n\\midrule\n"
        "$[12288, 7, 1]$ & $72$ [$70$, $74$] & $72$ \\\\\n\\bottomrule\n\\end{tabular}\n"
    )


# --- macro names and sentences ----------------------------------------------------------------------


def test_macro_names_are_letters_only():
    assert prose.number_words(32) == "ThirtyTwo"
    assert prose.number_words(1000) == "OneThousand"
    assert prose.number_words(215) == "TwoHundredFifteen"
    name = prose.macro_name("verdict", "accuracy", "relu_he_covariance", "vs", "baseline", "mnist", "depth", 32)
    assert name == "VerdictAccuracyReluHeCovarianceVsBaselineMnistDepthThirtyTwo"
    with pytest.raises(ValueError):
        paper.macros_tex({"Depth32": "x"})


def macro(text: str, macro_name: str) -> str:
    return re.search(r"\\newcommand\{\\" + macro_name + r"\}\{(.*)\}$", text, re.MULTILINE).group(1)


def test_macros_and_verdict_sentence_follow_the_results(tmp_path):
    """Raising covariance's accuracy in run_summary flips its regenerated primary verdict against its base;
    putting it a tenth of a point above its base with a tight spread makes it equivalent, margin in the text."""
    config = quick_config()
    config["grid"]["seeds"] = [0, 1, 2, 3, 4]  # two seeds cannot survive a Holm correction over the family
    run_summary = synthetic_run_summary(config)
    chosen, depth = synthetic_chosen(config), max(config["grid"]["depths"])
    name = prose.macro_name("verdict", "accuracy", "covariance", "vs", "baseline", "mnist", "depth", depth)

    def macros_from(summary: pd.DataFrame, tuned: pd.DataFrame = chosen) -> str:
        summary.to_parquet(tmp_path / "run_summary.parquet")
        synthetic_method_summary(summary).to_parquet(tmp_path / "method_summary.parquet")
        tuned.to_parquet(tmp_path / "chosen.parquet")
        run(
            *(str(tmp_path / f"{t}.parquet") for t in ("run_summary", "chosen", "comparisons", "remedies")),
            specs_of(config),
            config["compare"],
        )
        paper.write_macros(
            config,
            *(str(tmp_path / f"{t}.parquet") for t in ("run_summary", "method_summary", "comparisons", "chosen")),
            FIGURE_RULES,
            str(tmp_path / "macros.tex"),
        )
        return (tmp_path / "macros.tex").read_text()

    covariance = (run_summary.method == "covariance") & (run_summary.dataset == "mnist")
    baseline = (run_summary.method == "baseline") & (run_summary.dataset == "mnist")
    before = macros_from(run_summary)
    better = run_summary.copy()
    better.loc[covariance, "test_accuracy"] = 0.99 - 0.001 * better.loc[covariance, "seed"]
    after = macros_from(better)
    equal = run_summary.copy()
    equal.loc[covariance, "test_accuracy"] = (
        equal.loc[baseline, "test_accuracy"].to_numpy()
        + equal.loc[covariance, "seed"]
        .map(  # +0.02 points
            [0.001, -0.001, 0.0005, -0.0005, 0.001].__getitem__
        )
        .to_numpy()
    )
    equivalent = macros_from(equal)

    assert r"\texttt{covariance} against \texttt{baseline} at depth 32 on MNIST is inconclusive" in macro(before, name)
    assert r"\texttt{covariance} beats \texttt{baseline} at depth" in macro(after, name)
    assert r"\texttt{covariance} is equivalent to \texttt{baseline} at depth" in macro(equivalent, name)
    assert r"margin $\pm$$1.0$" in macro(equivalent, name)
    assert int(macro(after, "PrimaryAccuracyBeats")) > int(macro(before, "PrimaryAccuracyBeats"))
    assert int(macro(equivalent, "PrimaryAccuracyEquivalent")) > int(macro(before, "PrimaryAccuracyEquivalent"))
    # the abstract's headline is this primary comparison: covariance against its base at the deepest MNIST depth
    assert macro(equivalent, "HeadlineVerdict") == "is equivalent to"
    assert macro(equivalent, "HeadlineMargin") == "$1.0$" and macro(equivalent, "HeadlineOther") == r"\texttt{baseline}"
    assert macro(equivalent, "HeadlineRole").startswith("its base")
    # where covariance's runs are its base's (its tuning chose lambda = 0) the headline is its best-remedy verdict
    same = run_summary.copy()
    same.loc[covariance, "test_accuracy"] = same.loc[baseline, "test_accuracy"].to_numpy()
    zero = (chosen.method == "covariance") & (chosen.dataset == "mnist") & (chosen.depth == depth)
    identical = macros_from(same, chosen.assign(cov_lambda=chosen.cov_lambda.where(~zero, 0.0)))
    assert macro(identical, name).startswith(r"\texttt{covariance} is identical to \texttt{baseline}")
    assert macro(identical, "HeadlineRole").startswith("the best remedy")
    assert macro(before, "NumRuns") == str(len(run_summary))
    assert macro(before, "EquivalenceMargins") == (
        r"$\pm$1 percentage point on MNIST and $\pm$5 percentage points "
        "on cat/non-cat"
    )


def test_grid_with_nothing_to_compare_still_gives_every_macro():
    """A grid of one covariance method (a method added through config alone) has no comparison to report."""
    config = quick_config()
    config["grid"]["methods"] = ["covariance"]
    run_summary = synthetic_run_summary(config)
    comparisons = comparisons_of(config, run_summary)
    macros = paper.paper_macros(
        config, run_summary, synthetic_method_summary(run_summary), comparisons, synthetic_chosen(config), FIGURE_RULES
    )
    assert comparisons.empty and macros["PrimaryAccuracyComparisons"] == "0" and macros["VerdictTables"] == "no table"
    assert macros["HeadlineSentence"] == "no comparison was made."


def test_no_three_verdict_wording_left():
    """'Does not beat' conflates no evidence with evidence of no effect (docs/design.md#the-four-verdicts): gone from
    the text, the macros and the tables."""
    config = quick_config()
    run_summary = synthetic_run_summary(config)
    comparisons = comparisons_of(config, run_summary)
    macros = paper.paper_macros(
        config, run_summary, synthetic_method_summary(run_summary), comparisons, synthetic_chosen(config), FIGURE_RULES
    )
    tables = all_tables(
        synthetic_method_summary(run_summary),
        comparisons,
        synthetic_chosen(config),
        specs_of(config),
        config["grid"]["datasets"],
        "tables",
    )
    texts = [(ROOT / "paper" / "main.tex").read_text(), paper.macros_tex(macros), *tables.values()]
    assert not any(re.search(r"does not beat|NotBeat", text, re.IGNORECASE) for text in texts)


@pytest.mark.parametrize("measured", [True, False], ids=["measured", "no-mechanism-tables"])
def test_every_macro_the_text_uses_is_generated(measured):
    config = quick_config()
    run_summary = synthetic_run_summary(config)
    comparisons = comparisons_of(config, run_summary)
    mechanism = (
        {"layer_summary": synthetic_layer_summary(config), "probe_summary": synthetic_probe_summary(config)}
        if measured
        else {}
    )
    macros = paper.paper_macros(
        config,
        run_summary,
        synthetic_method_summary(run_summary),
        comparisons,
        synthetic_chosen(config),
        FIGURE_RULES,
        **mechanism,
    )
    text = (ROOT / "paper" / "main.tex").read_text()
    defined_in_text = set(re.findall(r"\\(?:newcommand|setlength)\{\\(\w+)\}", text))  # our commands, LaTeX's lengths
    used = {name for name in re.findall(r"\\([A-Z][A-Za-z]*)", text)} - defined_in_text
    assert used <= set(macros), f"used in main.tex but not generated: {sorted(used - set(macros))}"


def test_no_typed_numbers_in_the_text():
    """Outside equations, citations, labels and names (Nielsen's chapter 5, his network2), the text holds no digits:
    numbers come from macros."""
    text = (ROOT / "paper" / "main.tex").read_text()
    body = text[text.index(r"\begin{document}") :]
    body = re.sub(r"%.*", "", body)
    body = re.sub(r"\\begin\{equation\}.*?\\end\{equation\}|\$[^$]*\$", "", body, flags=re.DOTALL)
    body = re.sub(r"\\(cite[pt]?|ref|label|input|figurefile|includegraphics)(\[[^\]]*\])*\{[^}]*\}", "", body)
    body = re.sub(r"[Cc]hapter[- ]5|network2", "", body)  # names, not results
    body = re.sub(r"\\resizebox\{[^}]*\}|[0-9.]+\\(text|line)(height|width)", "", body)
    assert re.findall(r"\d+", body) == []


# --- tables ----------------------------------------------------------------------------------------


def test_tables_are_booktabs_with_one_row_per_method():
    config = quick_config()
    run_summary = synthetic_run_summary(config)
    comparisons = comparisons_of(config, run_summary)
    tables = all_tables(
        synthetic_method_summary(run_summary),
        comparisons,
        synthetic_chosen(config),
        specs_of(config),
        config["grid"]["datasets"],
        "tables",
    )
    assert set(tables) == set(TABLES)
    accuracy = tables["accuracy"]
    assert accuracy.count(r"\begin{longtable}") == len(config["grid"]["datasets"])
    assert accuracy.count(r"\toprule") == accuracy.count(r"\bottomrule") == len(config["grid"]["datasets"])
    for method in config["grid"]["methods"]:
        assert r"\texttt{" + method.replace("_", r"\_") + "}" in accuracy
    assert r"\lambda{=}3.2" in tables["hyperparameters"]
    variants = covariance_methods(specs_of(config))
    datasets = config["grid"]["datasets"]
    assert tables["verdicts"].count(r"\begin{longtable}") == len(datasets)  # the primary family, one per dataset
    for kind in ("verdicts_secondary", "verdicts_vanishing"):
        assert tables[kind].count(r"\begin{longtable}") == len(variants) * len(datasets)
    primary = tables["verdicts"].split(r"\end{longtable}")[0]
    for variant in variants:  # a row per variant and opponent, the best remedy named in its cells
        assert primary.count(r"\texttt{" + variant.replace("_", r"\_") + r"}\\vs.\ ") == 2
    best = comparisons[
        (comparisons.family == "primary") & (comparisons.role == "best_remedy") & (comparisons.dataset == datasets[0])
    ].other_method
    assert all(r"\scriptsize \texttt{" + m.replace("_", r"\_") + "}" in primary for m in best)


# --- the LaTeX build -------------------------------------------------------------------------------


def test_log_scan_finds_undefined_references_and_wide_lines():
    log = "\n".join(
        [
            "LaTeX Warning: Reference `fig:x' on page 3 undefined on input line 12.",
            "Package natbib Warning: Citation `lee2015' on page 1 undefined on input line 40.",
            r"Overfull \hbox (25.3pt too wide) in paragraph at lines 10--12",
            r"Overfull \hbox (2.1pt too wide) in paragraph at lines 20--22",
        ]
    )
    problems = paper.latex_problems(log)
    assert len(problems) == 3
    assert not any("2.1pt" in p for p in problems)


def test_missing_latexmk_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(paper.LatexNotFound) as error:
        paper.build_pdf(str(ROOT / "paper" / "main.tex"), str(tmp_path), str(tmp_path / "main.pdf"))
    assert "\n" not in str(error.value) and str(error.value).startswith("latexmk not found: install LaTeX")


@pytest.mark.skipif(
    shutil.which("latexmk") is None and os.environ.get("CI") != "true",
    reason="latexmk not installed (the paper build test runs whenever CI=true)",
)
@pytest.mark.parametrize("grid", ["quick", "default"])
def test_paper_builds_without_undefined_references_or_wide_tables(tmp_path, grid):
    """The quick grid's depths, and the default grid's five (the tables in blocks of depths fit the text
    width unscaled, so none of their text prints under 5 pt)."""
    config = quick_config()
    if grid == "default":
        config["grid"]["depths"] = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["grid"]["depths"]
    results = tmp_path / "results"
    write_results(results, config, synthetic_run_summary(config))
    log = paper.build_pdf(str(ROOT / "paper" / "main.tex"), str(results), str(results / "paper" / "main.pdf"))
    assert (results / "paper" / "main.pdf").stat().st_size > 10_000
    assert paper.latex_problems(log) == []
    assert "There were undefined references" not in log
    if shutil.which("pdftotext") or os.environ.get("CI") == "true":
        assert max(legibility.small_words_per_page(results / "paper" / "main.pdf")) <= legibility.MAX_SMALL_WORDS


def test_tuning_macros_count_and_name_the_choices_on_an_edge():
    config = quick_config()
    chosen = synthetic_chosen(config)
    macros = setup.tuning_macros(config, chosen)
    on_edge = chosen[chosen.lr_edge != ""]
    assert macros["TuneEdgeCount"] == str(len(on_edge)) == macros["TuneEdgeLowCount"] and len(on_edge) > 0
    first = on_edge.iloc[0]
    assert f"at depth {first.depth} on" in macros["TuneEdgeList"] and "low end" in macros["TuneEdgeList"]
    assert setup.tuning_macros(config, chosen.assign(lr_edge=""))["TuneEdgeList"].startswith("No choice")
    assert "the best" in macros["TuneRungs"] and "trial-epochs" in macros["TuneRungs"]


def test_collapsed_remedies_are_named():
    config = quick_config()
    runs = synthetic_run_summary(config)
    assert setup.collapsed_remedies(runs, list(config["grid"]["methods"]), 4).startswith("no standard remedy")
    runs.loc[(runs.depth == min(config["grid"]["depths"])) & (runs.method == "baseline"), "collapsed"] = True
    text = setup.collapsed_remedies(runs, ["baseline"], 4)
    assert "Baseline" in text or "baseline" in text


# --- the answer in words, the constant predictor and the corrected test -------------------------


def answer_rows() -> pd.DataFrame:
    """Primary rows: covariance loses to the best remedy on MNIST at depths 2 and 4, is equivalent on cat/non-cat at
    depth 2, and cat/non-cat at depth 4 has no remedy that learned (only the base comparison)."""
    rows = [
        ("mnist", 2, "relu_he", "best_remedy", "relu_he", "is beaten by"),
        ("mnist", 4, "relu_he", "best_remedy", "relu_he", "is beaten by"),
        ("mnist", 2, "baseline", "base", "relu_he", "inconclusive"),
        ("catvnoncat", 2, "baseline", "base", "baseline", "is equivalent to"),
        ("catvnoncat", 4, "baseline", "base", None, "beats"),
    ]
    return pd.DataFrame(
        [
            {
                "dataset": d,
                "depth": depth,
                "method": "covariance",
                "other_method": other,
                "role": role,
                "best_remedy": best,
                "verdict": verdict,
                "family": "primary",
                "metric": "test_accuracy",
                "val_majority_rate": 0.62,
            }
            for d, depth, other, role, best, verdict in rows
        ]
    )


def test_the_answer_says_where_covariance_loses_matches_and_wins_against_the_best_remedy():
    from covbench.report.macros.answer import answer_macros

    macros = answer_macros(answer_rows())
    assert macros["AnswerPerceptrons"] == (
        r"Against the best standard remedy (chosen on validation at each depth), \texttt{covariance} loses on MNIST "
        "at every depth (2--4) and is equivalent (within the margin) on cat/non-cat at depth 2, and it wins nowhere; no "
        "remedy learned on cat/non-cat at depth 4, so there is no best remedy there."
    )
    assert macros["AnswerRecurrent"].endswith("no comparison was made.")
    assert "No standard remedy learned beyond noise on cat/non-cat at depth 4" in macros["NoBestRemedyCells"]
    assert r"$62.0$\,\%" in macros["NoBestRemedyCells"]


def test_the_abstract_answers_per_dataset_in_words():
    """A sentence per dataset says whether a variant beats the best remedy, where it loses or matches it,
    and where the data cannot tell, with the smallest difference the design could detect; a verdict it does not know
    is named, not dropped."""
    from covbench.report.macros.answer import answer_macros

    rows = answer_rows().assign(min_detectable_difference=[0.01, 0.02, 0.03, 0.04, 0.05])
    assert answer_macros(rows)["AnswerDatasets"] == (
        "On MNIST, no covariance variant beats the best standard remedy; the variant loses to it at every depth (2--4). "
        "On cat/non-cat, no covariance variant beats the best standard remedy; the variant is equivalent to it at depth "
        "2; no remedy learned at depth 4, so there is no best remedy there."
    )
    two = pd.concat([rows, rows.assign(method="covariance_pooled")], ignore_index=True)
    two.loc[(two.method == "covariance_pooled") & (two.dataset == "mnist") & (two.depth == 2), "verdict"] = "beats"
    two.loc[two.dataset == "catvnoncat", "verdict"] = "inconclusive"
    two.loc[(two.dataset == "catvnoncat") & (two.method == "covariance"), "verdict"] = "both collapsed"
    answer = answer_macros(two)["AnswerDatasets"]
    assert answer.startswith(
        r"On MNIST, the best standard remedy is beaten by \texttt{covariance\_pooled} at depth 2; a variant loses to it "
        "at every depth (2--4) (every variant at depth 4)."
    )
    assert (
        "On cat/non-cat, no covariance variant beats the best standard remedy; the verdict is ``both collapsed'' at "
        in (answer)
    )
    assert "depth 2; the rest are inconclusive (smallest detectable difference $4.0$ points)" in answer
    assert answer_macros(two, ["catvnoncat", "mnist"])["AnswerDatasets"].startswith("On cat/non-cat, ")
    every_open = rows.assign(verdict="inconclusive")
    assert answer_macros(every_open)["AnswerDatasets"].startswith(
        "On MNIST the data cannot tell: every comparison with the best standard remedy is inconclusive (smallest "
        "detectable difference $1.0$--$2.0$ points)."
    )


def test_abstract_and_conclusion_answer_in_words_and_results_give_the_counts():
    text = (ROOT / "paper" / "main.tex").read_text()
    abstract = text[text.index(r"\begin{abstract}") : text.index(r"\end{abstract}")]
    assert r"\AnswerDatasets" in abstract and r"\AnswerRecurrentDatasets" in abstract and "fig:forest" in abstract
    assert not re.search(r"\\(PrimaryAccuracy|PrimarySummary|Headline|LongMemoryVerdicts|AnswerPerceptrons)", abstract)
    conclusion = text[text.index(r"\section{Conclusion}") : text.index(r"\bibliographystyle")]
    assert conclusion.index(r"\AnswerDatasets") < conclusion.index(r"\PrimaryAccuracyBeats")
    results = text[text.index(r"\section{Results}") : text.index(r"\section{Mechanism}")]
    assert r"\AnswerPerceptrons" in results and r"\PrimarySummary" in results


def test_the_corrected_test_is_stated_with_its_factor_and_tables_show_the_constant_predictor():
    config = quick_config()
    run_summary = synthetic_run_summary(config)
    comparisons = comparisons_of(config, run_summary)
    macros = paper.paper_macros(
        config, run_summary, synthetic_method_summary(run_summary), comparisons, synthetic_chosen(config), FIGURE_RULES
    )
    seeds = len(config["grid"]["seeds"])
    assert macros["CorrectedDatasets"] == "cat/non-cat"
    sentence = macros["CorrectionSentence"]
    assert f"{50 / 168:.3f}$ and $J = {seeds}$" in sentence
    assert f"the variance is ${1 + seeds * 50 / 168:.2f}$ times" in sentence and r"\citep{nadeau2003" in sentence
    assert comparisons.corrected.eq(comparisons.dataset == "catvnoncat").all()
    text = all_tables(
        synthetic_method_summary(run_summary),
        comparisons,
        synthetic_chosen(config),
        specs_of(config),
        config["grid"]["datasets"],
        "tables",
    )
    assert text["accuracy"].count(r"\emph{majority class} & $64.0$") == 1  # cat/non-cat's row
    assert text["verdicts"].count("corrected resampled $t$-test") == 1  # cat/non-cat's caption, not MNIST's
    config["datasets"]["catvnoncat"]["split"] = "per_seed"  # the setup text follows the config's declaration
    assert "pools its official training and test images" in setup.split_setup(config)
    config["datasets"]["catvnoncat"]["split"] = "official"
    assert "keeps its official test set" in setup.split_setup(config)


# --- legible as printed -------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("pdftotext") is None and os.environ.get("CI") != "true",
    reason="pdftotext not installed (poppler-utils, make latex)",
)
def test_legibility_counts_the_abstract_and_the_small_words_of_each_page(tmp_path):
    """On a PDF of known text: five words of abstract, 25 words in 3 pt type (too many) on page 1, 25 in 7 pt on page 2,
    the references on page 2 below text of the main part."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    pdf = tmp_path / "paper.pdf"
    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(pdf) as pages:  # TrueType: boxes from the font's own metrics
        first = plt.figure(figsize=(6, 8))
        first.text(0.1, 0.9, "Abstract", fontsize=10)
        first.text(0.1, 0.85, "one two three four five", fontsize=10)
        first.text(0.1, 0.8, "1 Introduction", fontsize=10)
        first.text(0.1, 0.5, " ".join(["tiny"] * 25), fontsize=3)
        second = plt.figure(figsize=(6, 8))
        second.text(0.1, 0.5, " ".join(["small"] * 25), fontsize=7)
        second.text(0.1, 0.3, "References", fontsize=10)
        for figure in (first, second):
            pages.savefig(figure)
            plt.close(figure)
    assert legibility.abstract_words(pdf) == 5
    assert legibility.small_words_per_page(pdf) == [25, 0]
    assert legibility.main_text_pages(pdf) == 2  # text precedes the references on their page
    assert legibility.problems(pdf) == [f"page 1 has 25 words under 5 pt (at most {legibility.MAX_SMALL_WORDS})"]


def test_a_dataset_whose_verdicts_are_out_of_reach_is_called_exploratory_with_its_numbers():
    """cat/not-cat (per-seed splits, 50 test images, 5 seeds): no comparison could show equivalence within 5 points,
    so the paper says its verdicts are exploratory, with the SD the margin would need (from TOST at the family's
    strictest Holm level and the corrected factor) and the smallest SD any pair has; MNIST (tight) is not."""
    rng = np.random.default_rng(2)
    specs = {"baseline": {"aux": "none"}, "covariance": {"aux": "covariance"}}
    rows = []
    for dataset, spread, n_train, n_test in (("mnist", 0.001, 50_000, 10_000), ("catvnoncat", 0.06, 167, 50)):
        for method in specs:
            for seed in range(5):
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "depth": 2,
                        "seed": seed,
                        "diverged": False,
                        "collapsed": False,
                        "test_accuracy": 0.8 + rng.normal(0, spread),
                        "best_val_accuracy": 0.8,
                        "val_majority_rate": 0.6,
                        "vanishing_index_epoch1": -1.0,
                        "n_train": float(n_train),
                        "n_test": float(n_test),
                        "split_sha256": f"split {seed}",
                    }
                )
    settings = {"alpha": 0.05, "primary_opponents": ["base"], "equivalence_margin": {"mnist": 0.01, "catvnoncat": 0.05}}
    settings["vanishing_margin"] = 0.25
    table = compare(pd.DataFrame(rows), specs, settings, split_protocols={"catvnoncat": "per_seed"})
    sentence = prose.exploratory_datasets(table)
    assert sentence.startswith("On cat/non-cat the verdicts are exploratory") and "MNIST" not in sentence
    cat = table[(table.dataset == "catvnoncat") & (table.family == "primary")].iloc[0]
    factor = 1 / 5 + 50 / 167
    needed = 0.05 / (stats.t.ppf(1 - cat.holm_level, 4) * np.sqrt(factor))
    observed = cat.se_difference / np.sqrt(factor)
    assert f"under ${100 * needed:.1f}$ points" in sentence and f"any pair is ${100 * observed:.1f}$," in sentence
    # identical runs (no spread, no hypothesis) do not make equivalence look reachable
    same = table[(table.dataset == "catvnoncat") & (table.family == "primary")].head(1)
    same = same.assign(test="identical runs", p_value=np.nan, p_equivalence=np.nan, se_difference=0.0)
    assert prose.exploratory_datasets(pd.concat([table, same.assign(equivalence_reachable=True)])) == sentence
