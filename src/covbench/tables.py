"""LaTeX tables of the paper (booktabs), written from the aggregate, comparison and tuning tables.

Every table is a float whose rows are methods (in grid order) and whose columns are depths; a cell stacks
the median over its bootstrap interval. A table wider than the text is scaled down to fit, so a longer depth list
never runs into the margin. Captions name the rule that wrote them.

    write_tables(method_summary, comparisons, chosen, specs, ["mnist"], {"accuracy": "results/tables/accuracy.tex"})
"""
from pathlib import Path

import numpy as np
import pandas as pd

from covbench.aggregate import LEVEL
from covbench.compare import CI_LEVEL

DATASET_LABELS = {"mnist": "MNIST", "catvnoncat": "cat/non-cat"}
VERDICT_MARKS = {"beats": r"$\blacktriangle$", "is beaten by": r"$\triangledown$", "does not beat": ""}
AUX_SYMBOLS = {"cov_lambda": r"\lambda", "aux_weight": "w"}
SUMMARY_PERCENT = f"{100 * LEVEL:g}"  # the aggregate tables' bootstrap intervals
COMPARISON_PERCENT = f"{100 * CI_LEVEL:g}"
TABLES = ("methods", "accuracy", "vanishing_index", "hyperparameters", "verdicts", "verdicts_vanishing")

_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#", "$": r"\$",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in str(text))


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, tex_escape(dataset))


def method_label(method: str) -> str:
    return r"\texttt{" + tex_escape(method) + "}"


def plain_number(value: float, significant: int = 2) -> str:
    """A positive hyperparameter with `significant` digits and no exponent (0.0081, 0.3, 100)."""
    return np.format_float_positional(value, precision=significant, unique=False, fractional=False, trim="-")


def math_number(value: float, decimals: int, signed: bool = False, bold: bool = False) -> str:
    """`$-1.2$` (a true minus sign), `$+1.2$` when signed, `--` for a missing value; never `-0.0`."""
    if value is None or not np.isfinite(value):
        return "--"
    value = round(value, decimals) + 0.0  # -0.0 -> 0.0
    text = f"{value:+.{decimals}f}" if signed and value != 0 else f"{value:.{decimals}f}"
    return f"$\\mathbf{{{text}}}$" if bold else f"${text}$"


def p_value_text(p: float) -> str:
    if not np.isfinite(p):
        return "--"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def interval(low: float, high: float, decimals: int) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return r"\scriptsize[" + math_number(low, decimals) + ", " + math_number(high, decimals) + "]"


def stacked(lines: list[str]) -> str:
    """Lines stacked in one cell, top-aligned with the row's label."""
    lines = [line for line in lines if line]
    return lines[0] if len(lines) == 1 else r"\begin{tabular}[t]{@{}c@{}}" + r"\\".join(lines) + r"\end{tabular}"


def fit_width(tabular: str) -> str:
    """Scale a tabular down to the line width only when it is wider."""
    return r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%" + "\n" + tabular + "}\n"


Cells = dict[str, dict[int, list[str]]]  # method -> depth -> the lines of one cell


def depth_tabular(cells: Cells, row_header: str = "method") -> str:
    """booktabs tabular, methods x depths, of cells given as lines stacked in the cell; `--` where none."""
    depths = sorted({depth for row in cells.values() for depth in row})
    lines = [r"\begin{tabular}{l" + "c" * len(depths) + "}", r"\toprule",
             f"& \\multicolumn{{{len(depths)}}}{{c}}{{depth (hidden layers)}} \\\\",
             f"\\cmidrule(l){{2-{len(depths) + 1}}}",
             row_header + " & " + " & ".join(str(d) for d in depths) + r" \\", r"\midrule"]
    for method, row in cells.items():
        lines.append(" & ".join([method_label(method)] + [stacked(row.get(d, ["--"])) for d in depths])
                     + r" \\ \addlinespace")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def table_float(tabular: str, caption: str, label: str) -> str:
    return "\n".join([r"\begin{table}[tbp]", r"\centering", r"\footnotesize", fit_width(tabular).rstrip(),
                      r"\caption{" + caption + "}", r"\label{" + label + "}", r"\end{table}", ""])


def in_order(frame: pd.DataFrame, column: str, order: list[str]) -> list[str]:
    present = set(frame[column])
    return [m for m in order if m in present]


def summary_cells(method_summary: pd.DataFrame, dataset: str, methods: list[str], metric: str, scale: float,
                  decimals: int, bold_best: bool) -> Cells:
    """Cells 'median / [low, high]' of one metric; with bold_best, the best median of each depth in bold."""
    rows = method_summary[(method_summary.dataset == dataset) & (method_summary.metric == metric)]
    best = rows.groupby("depth")["median"].max()
    cells = {method: {} for method in in_order(rows, "method", methods)}
    for row in rows[rows.method.isin(cells)].itertuples():
        is_best = bold_best and np.isfinite(row.median) and row.median == best[row.depth]
        cells[row.method][row.depth] = [math_number(scale * row.median, decimals, bold=is_best),
                                        interval(scale * row.ci_low, scale * row.ci_high, decimals)]
    return cells


def accuracy_table(method_summary: pd.DataFrame, dataset: str, methods: list[str], rule: str) -> str:
    cells = summary_cells(method_summary, dataset, methods, "final_test_accuracy", 100, 1, bold_best=True)
    caption = (f"Final test accuracy (\\%) on {dataset_label(dataset)}: median over seeds (best per depth in bold) "
               f"and bootstrap {SUMMARY_PERCENT}\\% interval. Rule \\texttt{{{rule}}}.")
    return table_float(depth_tabular(cells), caption, f"tab:accuracy-{dataset}")


def vanishing_table(method_summary: pd.DataFrame, dataset: str, methods: list[str], rule: str) -> str:
    cells = summary_cells(method_summary, dataset, methods, "vanishing_index_init", 1, 2, bold_best=False)
    epoch1 = method_summary[(method_summary.dataset == dataset) & (method_summary.metric == "vanishing_index_epoch1")]
    for row in epoch1[epoch1.method.isin(cells)].itertuples():
        epoch1_line = r"\scriptsize epoch 1: " + math_number(row.median, 2)
        cells[row.method].setdefault(row.depth, ["--"]).append(epoch1_line)
    index = r"$\log_{10}(\lVert \partial C/\partial b_1\rVert / \lVert \partial C/\partial b_L\rVert)$"
    caption = (f"Vanishing index {index} on {dataset_label(dataset)} at initialization: median over seeds and "
               f"bootstrap {SUMMARY_PERCENT}\\% interval; last line: median of the epoch-1 average. Negative: the "
               f"first layer learns slower (vanishing gradient); positive: faster (exploding). "
               f"Rule \\texttt{{{rule}}}.")
    return table_float(depth_tabular(cells), caption, f"tab:vanishing-{dataset}")


def hyperparameter_cells(chosen: pd.DataFrame, dataset: str, methods: list[str]) -> Cells:
    rows = chosen[chosen.dataset == dataset]
    cells = {method: {} for method in in_order(rows, "method", methods)}
    for _, row in rows[rows.method.isin(cells)].iterrows():
        aux = [f"\\scriptsize ${symbol}{{=}}{plain_number(row[name])}$"
               for name, symbol in AUX_SYMBOLS.items() if name in row and np.isfinite(row[name])]
        cells[row.method][row.depth] = [f"${plain_number(row.lr)}$", *aux]
    return cells


def hyperparameter_table(chosen: pd.DataFrame, dataset: str, methods: list[str], rule: str) -> str:
    trials = chosen[chosen.dataset == dataset].trials
    budget = str(int(trials.min())) if trials.min() == trials.max() else f"{int(trials.min())}--{int(trials.max())}"
    caption = (f"Hyperparameters chosen on the {dataset_label(dataset)} validation split ({budget} trials per method "
               f"and depth): learning rate, and below it the covariance strength $\\lambda$ or the deep-supervision "
               f"weight $w$ where the method has one. Rule \\texttt{{{rule}}}.")
    return table_float(depth_tabular(hyperparameter_cells(chosen, dataset, methods)), caption,
                       f"tab:hyperparameters-{dataset}")


def verdict_cells(comparisons: pd.DataFrame, dataset: str, method: str, metric: str, others: list[str],
                  scale: float, decimals: int) -> Cells:
    rows = comparisons[(comparisons.dataset == dataset) & (comparisons.method == method)
                       & (comparisons.metric == metric)]
    cells = {other: {} for other in in_order(rows, "other_method", others)}
    for row in rows[rows.other_method.isin(cells)].itertuples():
        p_line = r"\scriptsize $p_{\mathrm{H}}$ " + p_value_text(row.p_holm) + " " + VERDICT_MARKS[row.verdict]
        cells[row.other_method][row.depth] = [math_number(scale * row.difference, decimals, signed=True),
                                              interval(scale * row.ci_low, scale * row.ci_high, decimals),
                                              p_line.rstrip()]
    return cells


def verdict_table(comparisons: pd.DataFrame, dataset: str, method: str, metric: str, others: list[str],
                  rule: str) -> str:
    if metric == "final_test_accuracy":
        what, scale, decimals, better = "final test accuracy (percentage points)", 100, 1, "higher"
    else:
        what, scale, decimals, better = (r"$\lvert$vanishing index$\rvert$ at initialization (orders of magnitude)",
                                         1, 2, "lower")
    caption = (f"{method_label(method)} minus each other method on {dataset_label(dataset)}: difference in {what}, "
               f"bootstrap {COMPARISON_PERCENT}\\% interval, and Holm-corrected $p$-value $p_{{\\mathrm{{H}}}}$ over "
               f"all comparisons of this metric; $\\blacktriangle$: {method_label(method)} beats the method "
               f"({better} is better), $\\triangledown$: is beaten by it. Rule \\texttt{{{rule}}}.")
    kind = "verdicts" if metric == "final_test_accuracy" else "verdicts-vanishing"
    cells = verdict_cells(comparisons, dataset, method, metric, others, scale, decimals)
    return table_float(depth_tabular(cells, row_header="vs."), caption, f"tab:{kind}-{dataset}-{method}")


def methods_table(specs: dict[str, dict], rule: str) -> str:
    """The composition of every method (DESIGN section 2)."""
    lines = [r"\begin{tabular}{llllll}", r"\toprule",
             r"method & activation & init & norm & residual / clip & auxiliary \\", r"\midrule"]
    for method, spec in specs.items():
        init = spec["init"] + (" (standardized inputs)" if spec.get("standardize_inputs") else "")
        extras = [x for x in ("residual" if spec.get("residual") else "",
                              f"clip {plain_number(spec['grad_clip'])}" if spec.get("grad_clip") else "") if x]
        lines.append(" & ".join([method_label(method), tex_escape(spec["activation"]), tex_escape(init),
                                 tex_escape(spec.get("norm", "none")), ", ".join(extras) or "--",
                                 tex_escape(spec.get("aux", "none"))]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = ("The methods, each a composition of an activation, an initialization, a normalization, optional "
               f"residual connections or gradient clipping, and an auxiliary term. Rule \\texttt{{{rule}}}.")
    return table_float("\n".join(lines), caption, "tab:methods")


def verdict_pairs(comparisons: pd.DataFrame, datasets: list[str], methods: list[str]) -> list[tuple[str, str]]:
    """(dataset, covariance variant) of every verdict table, in grid order: those with comparisons."""
    present = set(zip(comparisons.dataset, comparisons.method))
    return [(d, v) for d in datasets for v in methods if (d, v) in present]


def all_tables(method_summary: pd.DataFrame, comparisons: pd.DataFrame, chosen: pd.DataFrame,
               specs: dict[str, dict], datasets: list[str], rule: str) -> dict[str, str]:
    """Table kind (TABLES) -> LaTeX text: one float per dataset, and per covariance variant for verdicts."""
    methods = list(specs)
    text = {"methods": methods_table(specs, rule)}
    text["accuracy"] = "\n".join(accuracy_table(method_summary, d, methods, rule) for d in datasets)
    text["vanishing_index"] = "\n".join(vanishing_table(method_summary, d, methods, rule) for d in datasets)
    text["hyperparameters"] = "\n".join(hyperparameter_table(chosen, d, methods, rule) for d in datasets)
    for kind, metric in (("verdicts", "final_test_accuracy"), ("verdicts_vanishing", "abs_vanishing_index_init")):
        text[kind] = "\n".join(verdict_table(comparisons, d, v, metric, [m for m in methods if m != v], rule)
                               for d, v in verdict_pairs(comparisons, datasets, methods))
    return text


def write_tables(method_summary_path: str, comparisons_path: str, chosen_path: str, specs: dict[str, dict],
                 datasets: list[str], out_paths: dict[str, str], rule: str = "tables") -> None:
    """Write each kind of TABLES to out_paths[kind]; `specs` are the grid's methods in grid order."""
    text = all_tables(pd.read_parquet(method_summary_path), pd.read_parquet(comparisons_path),
                      pd.read_parquet(chosen_path), specs, datasets, rule)
    for kind, path in out_paths.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text[kind])
