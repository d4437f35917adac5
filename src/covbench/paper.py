"""The paper's numbers and verdict sentences as LaTeX macros, and the PDF build.

Every number the text uses is a `\\newcommand` written here from the config and the result tables, so the
text never types one: rerunning the pipeline rewrites the macros and the paper follows. Macro names are
letters only (digits spelled out: depth 32 -> DepthThirtyTwo).

    write_macros(config, "results/aggregate/run_summary.parquet", ..., "results/paper/macros.tex")
    build_pdf("paper/main.tex", "results", "results/paper/main.pdf")
"""
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covbench.aggregate import best_remedy
from covbench.compare import ALPHA, CI_LEVEL, METRICS, N_BOOTSTRAP, covariance_methods
from covbench.config import method_spec
from covbench.tables import dataset_label, method_label, plain_number, verdict_pairs

LATEXMK_MISSING = ("latexmk not found: install LaTeX (Debian: apt-get install -y --no-install-recommends latexmk "
                   "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended "
                   "texlive-science lmodern)")
MAX_OVERFULL_PT = 10.0
AUX_HYPERPARAMETERS = ("cov_lambda", "aux_weight")

_ONES = ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve",
         "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen"]
_TENS = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


@dataclass(frozen=True)
class MetricWords:
    what: str  # what the difference is a difference in
    scale: float
    unit: str
    decimals: int
    short: str  # macro name part


METRIC_WORDS = {
    "final_test_accuracy": MetricWords("final test accuracy", 100, "percentage points", 1, "Accuracy"),
    "abs_vanishing_index_init": MetricWords("absolute vanishing index at initialization", 1, "orders of magnitude",
                                            2, "Vanishing"),
}


# --- names and words ------------------------------------------------------------------------------

def number_words(n: int) -> str:
    """CamelCase English for 0 <= n < 10**6 (32 -> ThirtyTwo), for macro names."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + "Hundred" + (number_words(n % 100) if n % 100 else "")
    return number_words(n // 1000) + "Thousand" + (number_words(n % 1000) if n % 1000 else "")


def macro_name(*parts) -> str:
    """A LaTeX command name from words and numbers: ("verdict", "relu_he", 32) -> VerdictReluHeThirtyTwo."""
    words = []
    for part in parts:
        for token in re.findall(r"[A-Za-z]+|\d+", str(part)):
            words.append(number_words(int(token)) if token.isdigit() else token[0].upper() + token[1:])
    return "".join(words)


def word_list(items: list) -> str:
    """'a', 'a and b', 'a, b and c'; 'none' for no items."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return items[0] if items else "none"
    return ", ".join(items[:-1]) + " and " + items[-1]


def signed(value: float, decimals: int) -> str:
    return f"${value:+.{decimals}f}$" if np.isfinite(value) else "n/a"


def plain(value: float, decimals: int) -> str:
    return f"${value:.{decimals}f}$" if np.isfinite(value) else "n/a"


def p_text(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "$<0.001$" if p < 0.001 else f"${p:.3f}$"


def table_refs(labels: list[str]) -> str:
    """`Table~\\ref{a}`, `Tables~\\ref{a} and~\\ref{b}`, or a range for three or more consecutive floats."""
    if not labels:
        return "no table"
    if len(labels) == 1:
        return rf"Table~\ref{{{labels[0]}}}"
    if len(labels) == 2:
        return rf"Tables~\ref{{{labels[0]}}} and~\ref{{{labels[1]}}}"
    return rf"Tables~\ref{{{labels[0]}}}--\ref{{{labels[-1]}}}"


# --- the comparisons in words ---------------------------------------------------------------------

def base_method(variant: str, specs: dict[str, dict]) -> str | None:
    """The method a covariance variant is added to: the same composition without the auxiliary force."""
    def plain_part(spec):
        return {k: v for k, v in spec.items() if k not in ("aux", *AUX_HYPERPARAMETERS)}
    return next((m for m, s in specs.items() if s["aux"] == "none" and plain_part(s) == plain_part(specs[variant])),
                None)


def verdict_sentence(row) -> str:
    """'X beats Y at depth D on DATA (difference, interval, Holm p).' from one comparisons row."""
    words = METRIC_WORDS[row.metric]
    head = (f"{method_label(row.method)} {row.verdict} {method_label(row.other_method)} at depth {row.depth} "
            f"on {dataset_label(row.dataset)}")
    difference = f"{signed(words.scale * row.difference, words.decimals)} {words.unit} of {words.what}"
    if row.reason:
        return f"{head} ({difference}; no test: {row.reason})."
    return (f"{head} ({difference}, {CI_LEVEL * 100:.0f}\\% interval "
            f"[{plain(words.scale * row.ci_low, words.decimals)}, {plain(words.scale * row.ci_high, words.decimals)}], "
            f"Holm $p$ {p_text(row.p_holm)}).")


def verdict_counts(comparisons: pd.DataFrame, metric: str) -> dict[str, int]:
    rows = comparisons[comparisons.metric == metric]
    return {"comparisons": len(rows), "beats": int((rows.verdict == "beats").sum()),
            "beaten": int((rows.verdict == "is beaten by").sum()),
            "not_beat": int((rows.verdict == "does not beat").sum()), "untested": int((rows.test == "none").sum())}


def find_row(comparisons: pd.DataFrame, metric: str, dataset: str, depth: int, method: str, other: str):
    rows = comparisons[(comparisons.metric == metric) & (comparisons.dataset == dataset) & (comparisons.depth == depth)
                       & (comparisons.method == method) & (comparisons.other_method == other)]
    return next(rows.itertuples(), None)


def summary_paragraph(comparisons: pd.DataFrame, specs: dict[str, dict]) -> str:
    """Counts of verdicts per metric, overall and per covariance variant."""
    sentences = []
    for metric, words in METRIC_WORDS.items():
        counts = verdict_counts(comparisons, metric)
        per_variant = []
        for variant in covariance_methods(specs):
            mine = verdict_counts(comparisons[comparisons.method == variant], metric)
            per_variant.append(f"{method_label(variant)} {mine['beats']} wins and {mine['beaten']} losses")
        sentences.append(
            f"On {words.what}, of {counts['comparisons']} comparisons a covariance variant beats the other method "
            f"in {counts['beats']}, is beaten by it in {counts['beaten']} and does not beat it in "
            f"{counts['not_beat']} ({counts['untested']} of which could not be tested); "
            f"per variant, {'; '.join(per_variant)}.")
    return " ".join(sentences)


def deepest_verdicts(comparisons: pd.DataFrame, method_summary: pd.DataFrame, specs: dict[str, dict],
                     datasets: list[str], max_depth: int) -> str:
    """An itemize: at the deepest depth, each covariance variant against its base method and against the
    remedy with the best median accuracy, per dataset."""
    variants = covariance_methods(specs)
    items = []
    for dataset in datasets:
        best = best_remedy(method_summary, dataset, max_depth, variants)
        for variant in variants:
            base = base_method(variant, specs)
            for other in dict.fromkeys(o for o in (base, best) if o):
                row = find_row(comparisons, "final_test_accuracy", dataset, max_depth, variant, other)
                if row is not None:
                    role = "its base method" if other == base else "the most accurate remedy"
                    items.append(r"\item " + verdict_sentence(row).removesuffix(".") + f"; {role}.")
    if not items:
        return f"No comparison was made at depth {max_depth}."
    return "\n".join([r"\begin{itemize}", *items, r"\end{itemize}"])


def significant_verdicts(comparisons: pd.DataFrame) -> str:
    """An itemize of every comparison that ended in 'beats' or 'is beaten by'."""
    rows = comparisons[comparisons.verdict != "does not beat"]
    if rows.empty:
        return f"No comparison is significant at $\\alpha = {ALPHA}$ after the Holm correction."
    items = [r"\item " + verdict_sentence(row) for row in rows.itertuples()]
    return "\n".join([r"\begin{itemize}\small", *items, r"\end{itemize}"])


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
    }


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


def tuning_macros(config: dict, chosen: pd.DataFrame) -> dict[str, str]:
    tune = config["tune"]
    trials = chosen.trials.astype(int)
    epochs = chosen.groupby("dataset", sort=False).tune_epochs.max().astype(int)
    return {
        "TuneTrials": str(trials.min()) if trials.min() == trials.max() else f"{trials.min()}--{trials.max()}",
        "TuneTrialsTotal": str(int(trials.sum())),
        "TuneCells": str(len(chosen)),
        "TuneSeed": str(tune["seed"]),
        **{macro_name("tune", name, end): plain_number(value)
           for name in ("lr", "cov_lambda", "aux_weight") for end, value in zip(("low", "high"), tune[name])},
        "TuneEpochs": word_list([f"{n} epoch{'' if n == 1 else 's'} on {dataset_label(d)}" for d, n in epochs.items()]),
    }


def headline_macros(comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str],
                    max_depth: int) -> dict[str, str]:
    """The abstract's comparison: the first covariance variant against its base method (else the first other
    method) at the deepest depth of the first dataset."""
    variants = covariance_methods(specs)
    variant = variants[0] if variants else None
    other = variant and (base_method(variant, specs) or next((m for m in specs if m != variant), None))
    row = find_row(comparisons, "final_test_accuracy", datasets[0], max_depth, variant, other) if other else None
    if row is None:
        return {name: "n/a" for name in ("HeadlineMethod", "HeadlineOther", "HeadlineDataset", "HeadlineDepth",
                                         "HeadlineDifference", "HeadlineCiLow", "HeadlineCiHigh", "HeadlinePHolm",
                                         "HeadlineVerdict")} | {"HeadlineSentence": "no comparison was made."}
    words = METRIC_WORDS["final_test_accuracy"]
    return {
        "HeadlineMethod": method_label(variant), "HeadlineOther": method_label(other),
        "HeadlineDataset": dataset_label(datasets[0]), "HeadlineDepth": str(max_depth),
        "HeadlineDifference": signed(words.scale * row.difference, words.decimals),
        "HeadlineCiLow": plain(words.scale * row.ci_low, words.decimals),
        "HeadlineCiHigh": plain(words.scale * row.ci_high, words.decimals),
        "HeadlinePHolm": p_text(row.p_holm),
        "HeadlineVerdict": row.verdict,
        "HeadlineSentence": verdict_sentence(row),
    }


def comparison_macros(comparisons: pd.DataFrame, method_summary: pd.DataFrame, specs: dict[str, dict],
                      datasets: list[str], max_depth: int) -> dict[str, str]:
    macros = {"Alpha": str(ALPHA), "CiLevel": f"{CI_LEVEL * 100:.0f}", "NumBootstrap": str(N_BOOTSTRAP)}
    for metric, words in METRIC_WORDS.items():
        for key, value in verdict_counts(comparisons, metric).items():
            macros[macro_name(words.short, key)] = str(value)
    for row in comparisons.itertuples():
        name = macro_name("verdict", METRIC_WORDS[row.metric].short, row.method, "vs", row.other_method, row.dataset,
                          "depth", row.depth)
        macros[name] = verdict_sentence(row)
    macros["SummaryParagraph"] = summary_paragraph(comparisons, specs)
    macros["DeepestVerdicts"] = deepest_verdicts(comparisons, method_summary, specs, datasets, max_depth)
    macros["SignificantVerdicts"] = significant_verdicts(comparisons)
    return macros


def reference_macros(comparisons: pd.DataFrame, specs: dict[str, dict], datasets: list[str],
                     figure_rules: dict[str, str]) -> dict[str, str]:
    """Lists of table references (their number depends on the grid) and the rule that made each figure."""
    pairs = verdict_pairs(comparisons, datasets, list(specs))
    macros = {
        "AccuracyTables": table_refs([f"tab:accuracy-{d}" for d in datasets]),
        "VanishingTables": table_refs([f"tab:vanishing-{d}" for d in datasets]),
        "HyperparameterTables": table_refs([f"tab:hyperparameters-{d}" for d in datasets]),
        "VerdictTables": table_refs([f"tab:verdicts-{d}-{v}" for d, v in pairs]),
        "VanishingVerdictTables": table_refs([f"tab:verdicts-vanishing-{d}-{v}" for d, v in pairs]),
    }
    for path, rule in figure_rules.items():
        macros[macro_name("rule", path)] = r"\texttt{" + rule.replace("_", r"\_") + "}"
    return macros


def paper_macros(config: dict, run_summary: pd.DataFrame, method_summary: pd.DataFrame, comparisons: pd.DataFrame,
                 chosen: pd.DataFrame, figure_rules: dict[str, str]) -> dict[str, str]:
    """Macro name -> LaTeX text of every number and sentence the paper uses."""
    specs = {m: method_spec(config, m) for m in config["grid"]["methods"]}
    datasets = config["grid"]["datasets"]
    max_depth = max(config["grid"]["depths"])
    groups = [grid_macros(config, run_summary, specs), setup_macros(config), tuning_macros(config, chosen),
              headline_macros(comparisons, specs, datasets, max_depth),
              comparison_macros(comparisons, method_summary, specs, datasets, max_depth),
              reference_macros(comparisons, specs, datasets, figure_rules)]
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
                 chosen_path: str, figure_rules: dict[str, str], out_path: str) -> None:
    macros = paper_macros(config, pd.read_parquet(run_summary_path), pd.read_parquet(method_summary_path),
                          pd.read_parquet(comparisons_path), pd.read_parquet(chosen_path), figure_rules)
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
