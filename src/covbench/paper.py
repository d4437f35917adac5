"""The paper's numbers and verdict sentences as LaTeX macros, and the PDF build.

Every number the text uses is a `\\newcommand` written here from the config and the result tables, so the
text never types one: rerunning the pipeline rewrites the macros and the paper follows. Macro names are
letters only (digits spelled out: depth 32 -> DepthThirtyTwo).

    write_macros(config, "results/aggregate/run_summary.parquet", ..., "results/paper/macros.tex")
    build_pdf("paper/main.tex", "results", "results/paper/main.pdf")
"""
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from covbench.compare import CI_LEVEL, FAMILIES, N_BOOTSTRAP, covariance_methods
from covbench.config import method_spec
from covbench.long_memories import long_memory_macros
from covbench.mechanism import mechanism_macros
from covbench.prose import (METRIC_WORDS, OPPONENT_WORDS, claim, conclusive_verdicts, deepest_verdicts,
                            family_summary, macro_name, opponent_words, p_text, plain, signed, table_refs,
                            verdict_counts, verdict_details, verdict_sentence, word_list)
from covbench.sweep import profile_macros, sweep_macros
from covbench.tables import dataset_label, method_label, plain_number, primary_datasets, verdict_pairs
from covbench.train import COLLAPSED_FRACTION
from covbench.tune import INCLUSION_TOLERANCE, budget_epochs, rung_sizes

LATEXMK_MISSING = ("latexmk not found: install LaTeX (Debian: apt-get install -y --no-install-recommends latexmk "
                   "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended "
                   "texlive-science lmodern)")
MAX_OVERFULL_PT = 10.0
SHALLOW_DEPTH = 4  # depths at which every standard remedy is expected to learn

# --- the macros -----------------------------------------------------------------------------------

def grid_macros(config: dict, run_summary: pd.DataFrame, specs: dict[str, dict]) -> dict[str, str]:
    grid = config["grid"]
    variants = covariance_methods(specs)
    remedies = [m for m in specs if m not in variants]
    planned = len(grid["datasets"]) * len(grid["methods"]) * len(grid["depths"]) * len(grid["seeds"])
    return {
        "NumDatasets": str(len(grid["datasets"])),
        "DatasetList": word_list([dataset_label(d) for d in grid["datasets"]]),
        "NumMethods": str(len(specs)),
        "NumRemedies": str(len(remedies)),
        "RemedyList": word_list([method_label(m) for m in remedies]),
        "NumCovarianceVariants": str(len(variants)),
        "CovarianceVariantList": word_list([method_label(m) for m in variants]),
        "NumDepths": str(len(grid["depths"])),
        "DepthList": word_list(sorted(grid["depths"])),
        "MaxDepth": str(max(grid["depths"])),
        "NumSeeds": str(len(grid["seeds"])),
        "SeedList": word_list(sorted(grid["seeds"])),
        "NumRunsPlanned": str(planned),
        "NumRuns": str(len(run_summary)),
        "NumDivergedRuns": str(int(run_summary.diverged.sum())),
        "DivergedCells": diverged_cells(run_summary),
        "NumCollapsedRuns": str(int(run_summary.collapsed.sum())),
        "CollapsedShallowRemedies": collapsed_remedies(run_summary, remedies, SHALLOW_DEPTH),
    }


def diverged_cells(run_summary: pd.DataFrame) -> str:
    """For figure captions: which cells had diverged runs, and how many, counted at the outcome they had when they
    stopped (the figures mark those cells)."""
    runs = run_summary.groupby(["dataset", "method", "depth"]).diverged.agg(["sum", "size"])
    runs = runs[runs["sum"] > 0]
    if runs.empty:
        return "No run diverged."
    return ("Runs diverged, each counted at the outcome it had when it stopped, in " + word_list(
        [f"{method_label(m)} at depth {d} on {dataset_label(ds)} ({int(n)} of {size})"
         for (ds, m, d), (n, size) in runs.iterrows()]) + ".")


def collapsed_remedies(run_summary: pd.DataFrame, remedies: list[str], max_depth: int) -> str:
    """Which tuned remedies of depth <= max_depth ended collapsed (training loss at the class-prior entropy)."""
    rows = run_summary[run_summary.method.isin(remedies) & (run_summary.depth <= max_depth) & run_summary.collapsed]
    if rows.empty:
        return f"no standard remedy of depth at most {max_depth} ended collapsed"
    cells = rows.groupby(["dataset", "method", "depth"]).size()
    return "these runs of standard remedies of depth at most {} ended collapsed: {}".format(max_depth, word_list(
        [f"{method_label(m)} at depth {d} on {dataset_label(ds)} ({n} of its seeds)" for (ds, m, d), n in cells.items()]))


def setup_macros(config: dict) -> dict[str, str]:
    train = config["train"]
    sentences = []
    for dataset in config["grid"]["datasets"]:
        data = config["datasets"][dataset]
        size = ("the whole training split" if data["train_size"] is None
                else f"a stratified subset of {data['train_size']} training examples")
        held_out = [f"{data[key]} {name}" for key, name in (("val_size", "validation"), ("test_size", "test"))
                    if data.get(key) is not None]
        size += f" ({word_list(held_out)} examples)" if held_out else ""
        if data.get("standardize_inputs"):
            size += ", its pixels standardized for every method with the training split's mean and standard deviation"
        sentences.append(f"on {dataset_label(dataset)}, {size}, "
                         f"{data['epochs']} epochs in mini-batches of {data['batch_size']}, statistics logged every "
                         f"{data.get('log_every', train['log_every'])} steps and a validation-accuracy threshold of "
                         f"{data['val_threshold']}")
    return {
        "Width": str(train["width"]),
        "Momentum": str(train["momentum"]),
        "WeightDecay": str(train["weight_decay"]),
        "DatasetSetup": "; ".join(sentences),
    }


def rung_sentence(trials: int, rung_epochs: list[int], eta: int) -> str:
    """'8 trials train 2 epochs, the best 4 go on to epoch 5 and the best 2 to epoch 10 (38 trial-epochs)'."""
    sizes = rung_sizes(trials, len(rung_epochs), eta)
    first = f"{sizes[0]} trials train {rung_epochs[0]} epoch{'' if rung_epochs[0] == 1 else 's'}"
    later = [f"the best {n} to epoch {end}" for n, end in zip(sizes[1:], rung_epochs[1:])]
    if later:
        later[0] = later[0].replace(" to ", " go on to ", 1)
    return f"{word_list([first, *later])} ({budget_epochs(trials, rung_epochs, eta)} trial-epochs)"


def edge_items(chosen: pd.DataFrame, position: str = "depth {}") -> list[str]:
    """Every choice at an end of its learning-rate range, with what the other trials of its cell did; `position`
    names a cell's depth (a recurrent cell's is its sequence length)."""
    items = []
    for row in chosen[chosen.lr_edge != ""].sort_values(["dataset", "method", "depth"]).itertuples():
        evidence = (f"all {row.trials - 1} other trials diverged" if row.trials_diverged == row.trials - 1
                    else f"{row.trials_diverged} of {row.trials - 1} other trials diverged")
        if row.trials_overfit:
            evidence += (f", {row.trials_overfit} fit the training set more closely but ended with a higher "
                         "validation loss")
        items.append(f"{method_label(row.method)} at {position.format(row.depth)} on {dataset_label(row.dataset)} "
                     f"({row.lr_edge} end, lr {plain_number(row.lr)}; {evidence})")
    return items


def aux_edge_items(chosen: pd.DataFrame, position: str = "depth {}") -> list[str]:
    """Every auxiliary hyperparameter (covariance strength, deep-supervision weight) at an end of its range."""
    items = []
    for row in chosen[chosen.aux_edge != ""].sort_values(["dataset", "method", "depth"]).itertuples():
        name, value = (("$\\lambda$", row.cov_lambda) if not pd.isna(row.cov_lambda) else ("weight", row.aux_weight))
        items.append(f"{method_label(row.method)} at {position.format(row.depth)} on {dataset_label(row.dataset)} "
                     f"({row.aux_edge} end, {name} {plain_number(value)})")
    return items


def aux_edge_sentence(chosen: pd.DataFrame, position: str = "depth {}") -> str:
    items = aux_edge_items(chosen, position)
    if not items:
        return "No auxiliary hyperparameter sits on an end of its range."
    low = int((chosen.aux_edge == "low").sum())
    reason = (" At the low end the validation loss preferred the weakest auxiliary term it was offered (for a method "
              "tuned nested in its base, value 0: none at all): the evidence points towards less of that term rather "
              "than to a range too narrow." if low else "")
    return (f"The auxiliary hyperparameter sits on an end of its range in {len(items)} cells ({low} on the low "
            f"end): {word_list(items)}.{reason}")


def recurrent_edge_macros(chosen: pd.DataFrame) -> dict[str, str]:
    """The recurrent track's tuning choices on an end of a range, listed as the MLPs' are (DESIGN section 6)."""
    if chosen is None or chosen.empty:
        return {"LongMemoryTuneEdges": ""}
    position = "$T$ = {}"
    edges = edge_items(chosen, position)
    lr_sentence = (f"Of its {len(chosen)} tuning choices, no learning rate sits on an end of its range." if not edges
                   else f"Of its {len(chosen)} tuning choices, {len(edges)} learning rates sit on an end of their "
                        f"range: {word_list(edges)}.")
    return {"LongMemoryTuneEdges": f"{lr_sentence} {aux_edge_sentence(chosen, position)}"}


def tuning_macros(config: dict, chosen: pd.DataFrame) -> dict[str, str]:
    tune = config["tune"]
    trials = chosen.trials.astype(int)
    edges = edge_items(chosen)
    ranges = {f"lr_{optimizer}": bounds for optimizer, bounds in tune["lr"].items()}
    ranges.update({name: tune[name] for name in ("cov_lambda", "aux_weight")})
    return {
        "TuneTrials": str(trials.min()) if trials.min() == trials.max() else f"{trials.min()}--{trials.max()}",
        "TuneTrialsTotal": str(int(trials.sum())),
        "TuneCells": str(len(chosen)),
        "TuneSeed": str(tune["seed"]),
        "TuneEta": str(tune["eta"]),
        **{macro_name("tune", name, end): plain_number(value)
           for name, bounds in ranges.items() for end, value in zip(("low", "high"), bounds)},
        "TuneRungs": "; ".join(
            f"on {dataset_label(d)}, {rung_sentence(tune['trials'], config['datasets'][d]['tune_epochs'], tune['eta'])}"
            for d in config["grid"]["datasets"]),
        "TuneSelectedOn": word_list(sorted({"validation loss at the best checkpoint" if s == "best_val_loss" else s for s in chosen.selected_on})),
        "TuneCollapsedChoices": str(int(chosen.collapsed.sum())),
        "CollapsedPercent": f"{100 * COLLAPSED_FRACTION:.0f}",
        "TunePlateauBound": f"{1 / COLLAPSED_FRACTION:.2f}",
        "TuneEdgeCount": str(len(edges)),
        "TuneEdgeLowCount": str(int((chosen.lr_edge == "low").sum())),
        "TuneEdgeHighCount": str(int((chosen.lr_edge == "high").sum())),
        "TuneEdgeList": ("No choice sits on an end of its range." if not edges else
                         f"The choices on an end of their range are: {word_list(edges)}."),
        "TuneAuxEdgeList": aux_edge_sentence(chosen),
        **nested_macros(tune, chosen),
    }


def nested_macros(tune: dict, chosen: pd.DataFrame) -> dict[str, str]:
    """Nested tuning (DESIGN section 6): its grids, how many cells used it and its budget against the base's."""
    nested = chosen[chosen.nested_in.astype(bool)] if "nested_in" in chosen else chosen.iloc[:0]
    ratio = nested.budget_ratio.astype(float) if "budget_ratio" in nested else pd.Series(dtype=float)
    low, high = (ratio.min(), ratio.max()) if len(ratio) else (math.nan, math.nan)
    return {
        "NestedLambdas": word_list([plain_number(v) for v in tune["nested"]["cov_lambda"]]),
        "NestedAuxWeights": word_list([plain_number(v) for v in tune["nested"]["aux_weight"]]),
        "NestedCells": str(len(nested)),
        "NestedBudgetRatio": ("--" if not len(ratio) else f"{low:.2f}" if math.isclose(low, high)
                              else f"{low:.2f}--{high:.2f}"),
        "InclusionTolerancePercent": f"{100 * INCLUSION_TOLERANCE:.0f}",
    }


HEADLINE_NAMES = ("HeadlineMethod", "HeadlineOther", "HeadlineRole", "HeadlineClaim", "HeadlineDetails",
                  "HeadlineDataset",
                  "HeadlineDepth", "HeadlineDifference", "HeadlineCiLow", "HeadlineCiHigh", "HeadlineMargin",
                  "HeadlinePHolm", "HeadlinePEquivalence", "HeadlineVerdict")


def headline_macros(comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str],
                    max_depth: int) -> dict[str, str]:
    """The abstract's comparison, from the primary family: the first covariance variant against its base (else
    the best remedy) at the deepest depth of the first dataset."""
    variants = covariance_methods(specs)
    rows = comparisons[(comparisons.family == "primary") & (comparisons.metric == "test_accuracy")
                       & (comparisons.dataset == datasets[0]) & (comparisons.depth == max_depth)
                       & (comparisons.method == (variants[0] if variants else None))]
    row = next(rows.sort_values("role", key=lambda r: r.map({"base": 0, "best_remedy": 1})).itertuples(), None)
    if row is None:
        return {name: "n/a" for name in HEADLINE_NAMES} | {"HeadlineSentence": "no comparison was made."}
    words = METRIC_WORDS["test_accuracy"]
    return {
        "HeadlineMethod": method_label(row.method), "HeadlineOther": method_label(row.other_method),
        "HeadlineRole": opponent_words(row),
        "HeadlineClaim": claim(row.method, row.verdict, row.other_method, f", {opponent_words(row)},").rstrip(","),
        "HeadlineDetails": verdict_details(row),
        "HeadlineDataset": dataset_label(row.dataset), "HeadlineDepth": str(max_depth),
        "HeadlineDifference": signed(words.scale * row.difference, words.decimals),
        "HeadlineCiLow": plain(words.scale * row.ci_low, words.decimals),
        "HeadlineCiHigh": plain(words.scale * row.ci_high, words.decimals),
        "HeadlineMargin": plain(words.scale * row.margin, words.decimals),
        "HeadlinePHolm": p_text(row.p_holm),
        "HeadlinePEquivalence": p_text(row.p_equivalence_holm),
        "HeadlineVerdict": row.verdict,
        "HeadlineSentence": verdict_sentence(row),
    }


def comparison_macros(config: dict, comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str],
                      max_depth: int) -> dict[str, str]:
    """The test settings, verdict counts per family and metric, and the verdicts in words."""
    settings = config["compare"]
    macros = {"Alpha": str(settings["alpha"]), "CiLevel": f"{CI_LEVEL * 100:.0f}", "NumBootstrap": str(N_BOOTSTRAP),
              "VanishingMargin": plain_number(settings["vanishing_margin"]),
              "PrimaryOpponents": word_list([OPPONENT_WORDS[o] for o in settings["primary_opponents"]]),
              "EquivalenceMargins": word_list([f"$\\pm${100 * settings['equivalence_margin'][d]:g} percentage "
                                               f"point{'' if settings['equivalence_margin'][d] == 0.01 else 's'} on "
                                               f"{dataset_label(d)}" for d in datasets])}
    for dataset, margin in settings["equivalence_margin"].items():
        macros[macro_name("margin", dataset)] = f"{100 * margin:g}"
    for family in FAMILIES:
        rows = comparisons[comparisons.family == family]
        tested = rows.p_value.notna().sum() + rows.p_equivalence.notna().sum()
        macros[macro_name(family, "hypotheses")] = str(int(tested))
        for metric, words in METRIC_WORDS.items():
            for key, value in verdict_counts(rows[rows.metric == metric]).items():
                macros[macro_name(family, words.short, key)] = str(value)
    for row in comparisons.itertuples():
        name = macro_name("verdict", METRIC_WORDS[row.metric].short, row.method, "vs", row.other_method, row.dataset,
                          "depth", row.depth)
        macros[name] = verdict_sentence(row)
    macros["PrimarySummary"] = family_summary(comparisons, specs, "primary")
    macros["SecondarySummary"] = family_summary(comparisons, specs, "secondary")
    macros["DeepestVerdicts"] = deepest_verdicts(comparisons, max_depth)
    macros["SecondaryVerdicts"] = conclusive_verdicts(comparisons, "secondary")
    return macros


def reference_macros(comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str],
                     figure_rules: dict[str, str]) -> dict[str, str]:
    """Lists of table references (their number depends on the grid) and the rule that made each figure."""
    pairs = verdict_pairs(comparisons, datasets, list(specs))
    macros = {
        "AccuracyTables": table_refs([f"tab:accuracy-{d}" for d in datasets]),
        "VanishingTables": table_refs([f"tab:vanishing-{d}" for d in datasets]),
        "HyperparameterTables": table_refs([f"tab:hyperparameters-{d}" for d in datasets]),
        "VerdictTables": table_refs([f"tab:verdicts-{d}" for d in primary_datasets(comparisons, datasets)]),
        "SecondaryVerdictTables": table_refs([f"tab:verdicts-secondary-{d}-{v}" for d, v in pairs]),
        "VanishingVerdictTables": table_refs([f"tab:verdicts-vanishing-{d}-{v}" for d, v in pairs]),
    }
    for path, rule in figure_rules.items():
        macros[macro_name("rule", path)] = r"\texttt{" + rule.replace("_", r"\_") + "}"
    return macros


def paper_macros(config: dict, run_summary: pd.DataFrame, method_summary: pd.DataFrame, comparisons: pd.DataFrame,
                 chosen: pd.DataFrame, figure_rules: dict[str, str], sweep_summary: pd.DataFrame | None = None,
                 layer_summary: pd.DataFrame | None = None, probe_summary: pd.DataFrame | None = None,
                 lambda_profile: pd.DataFrame | None = None) -> dict[str, str]:
    """Macro name -> LaTeX text of every number and sentence the paper uses: one group per section or concern,
    so a new section's macros are one more line in `groups` (names must not clash across groups). The recurrent
    track's rows (its own datasets) go to its own section only."""
    specs = {m: method_spec(config, m) for m in config["grid"]["methods"]}
    datasets = config["grid"]["datasets"]
    max_depth = max(config["grid"]["depths"])
    recurrent = (method_summary, comparisons)

    def mlp_rows(frame):
        return frame if frame is None or "dataset" not in frame else frame[frame.dataset.isin(datasets)]

    recurrent_chosen = None if chosen is None else chosen[~chosen.dataset.isin(datasets)]
    profile = profile_macros(lambda_profile, layer_summary)  # every track's nested cells
    run_summary, method_summary, comparisons, chosen, layer_summary, probe_summary = (
        mlp_rows(f) for f in (run_summary, method_summary, comparisons, chosen, layer_summary, probe_summary))
    groups = [grid_macros(config, run_summary, specs), setup_macros(config), tuning_macros(config, chosen),
              headline_macros(comparisons, specs, datasets, max_depth),
              comparison_macros(config, comparisons, specs, datasets, max_depth),
              reference_macros(comparisons, specs, datasets, figure_rules),
              sweep_macros(config, sweep_summary), profile,
              mechanism_macros(config, run_summary, layer_summary, probe_summary, method_summary),
              long_memory_macros(config, *recurrent), recurrent_edge_macros(recurrent_chosen)]
    macros = {}
    for group in groups:
        clash = macros.keys() & group.keys()
        if clash:
            raise ValueError(f"macro defined twice: {sorted(clash)}")
        macros.update(group)
    return macros


def macros_tex(macros: dict[str, str]) -> str:
    for name in macros:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"not a LaTeX macro name: {name!r}")
    lines = ["% Generated by covbench.paper.write_macros from the config and the result tables: do not edit."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    return "\n".join(lines) + "\n"


def write_macros(config: dict, run_summary_path: str, method_summary_path: str, comparisons_path: str,
                 chosen_path: str, figure_rules: dict[str, str], out_path: str,
                 sweep_summary_path: str | None = None, layer_summary_path: str | None = None,
                 probe_summary_path: str | None = None, lambda_profile_path: str | None = None) -> None:
    optional = [pd.read_parquet(path) if path else None
                for path in (sweep_summary_path, layer_summary_path, probe_summary_path, lambda_profile_path)]
    macros = paper_macros(config, pd.read_parquet(run_summary_path), pd.read_parquet(method_summary_path),
                          pd.read_parquet(comparisons_path), pd.read_parquet(chosen_path), figure_rules, *optional)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(macros_tex(macros))


# --- the build ------------------------------------------------------------------------------------

class LatexNotFound(RuntimeError):
    pass


def build_pdf(main_tex: str, results_dir: str, out_pdf: str) -> str:
    """latexmk main_tex into out_pdf's folder; returns the LaTeX log text.

    `\\input{tables/x}` and `\\includegraphics{figures/y}` resolve against results_dir, then the folder of
    main_tex (TEXINPUTS); the bibliography is looked up beside main_tex.
    """
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        raise LatexNotFound(LATEXMK_MISSING)
    source = Path(main_tex).resolve().parent
    out_dir = Path(out_pdf).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TEXINPUTS": f"{Path(results_dir).resolve()}:{source}:", "BIBINPUTS": f"{source}:",
           "max_print_line": "100000"}
    command = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={out_dir}",
               f"-jobname={Path(out_pdf).stem}", Path(main_tex).name]
    result = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
    log_path = out_dir / (Path(out_pdf).stem + ".log")
    log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if result.returncode != 0:
        lines = log_text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith("!")), None)
        context = " | ".join(lines[first:first + 4]) if first is not None else result.stdout[-2000:]
        raise RuntimeError(f"latexmk failed ({result.returncode}) on {main_tex}: {context}")
    return log_text


def latex_problems(log_text: str, max_overfull_pt: float = MAX_OVERFULL_PT) -> list[str]:
    """Undefined references or citations, floats too large, and lines overfull by more than max_overfull_pt."""
    problems = re.findall(r"(?:LaTeX|Package natbib) Warning: (?:Reference|Citation) `[^']*' on page \S+ undefined",
                          log_text)
    problems += re.findall(r"LaTeX Warning: Float too large for page[^\n]*", log_text)
    for match in re.finditer(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)[^\n]*", log_text):
        if float(match.group(1)) > max_overfull_pt:
            problems.append(match.group(0))
    return problems


def build(main_tex: str, results_dir: str, out_pdf: str) -> list[str]:
    """Build the PDF and report what a reader would see as '??' or text in the margin (on stderr)."""
    problems = latex_problems(build_pdf(main_tex, results_dir, out_pdf))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return problems
