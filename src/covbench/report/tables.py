"""LaTeX tables of the paper (booktabs), written from the aggregate, comparison and tuning tables.

Every table's rows are methods (in grid order) and its columns depths; a cell stacks the median over its bootstrap
interval. Tables are set at print size, never scaled: a `longtable` that runs on over pages when its rows
outgrow one, its depths in blocks of at most SUMMARY_COLUMNS or VERDICT_COLUMNS columns, one under the other, so a
longer depth list never runs into the margin. Captions name the rule that wrote them. The verdict tables follow the comparisons'
families (docs/design.md#families): one primary table per dataset (main text), and per dataset and covariance variant
one secondary table per metric (appendix), each cell marked with one of the four verdicts. Labels of datasets,
methods and numbers come from covbench.report.labels.

    write_tables(method_summary, comparisons, chosen, specs, ["mnist"], {"accuracy": "results/tables/accuracy.tex"})
"""

import numpy as np
import pandas as pd

from covbench import atomic
from covbench.analysis.aggregate import LEVEL, constant_predictor, diverged_counts
from covbench.analysis.compare import CI_LEVEL, POWER
from covbench.report.labels import dataset_label, method_label, plain_number, tex_escape

VERDICT_MARKS = {
    "beats": r"$\blacktriangle$",
    "is beaten by": r"$\triangledown$",
    "is equivalent to": r"$\approx$",
    "is identical to": r"$\equiv$",
    "both collapsed": r"$\varnothing$",
    "inconclusive": "?",
}
WITHIN_MARGIN_MARK = r"$^{\mathrm{m}}$"  # a significant difference smaller than the equivalence margin
VERDICT_LEGEND = (
    r"$\blacktriangle$ beats, $\triangledown$ is beaten by ($^{\mathrm{m}}$: within the margin), $\approx$ "
    r"equivalent, $\equiv$ identical (tuned to the base), $\varnothing$ both collapsed, ? inconclusive"
)
AUX_SYMBOLS = {"cov_lambda": r"\lambda", "aux_weight": "w"}
SUMMARY_PERCENT = f"{100 * LEVEL:g}"  # the aggregate tables' bootstrap intervals
COMPARISON_PERCENT = f"{100 * CI_LEVEL:g}"
TABLES = (
    "methods",
    "accuracy",
    "vanishing_index",
    "hyperparameters",
    "verdicts",
    "verdicts_secondary",
    "verdicts_vanishing",
    "recurrent",
)
DEPTH_AXIS = "depth (hidden layers)"
LENGTH_AXIS = "sequence length $T$ (time steps)"  # the recurrent track's depth (docs/design.md#the-recurrent-track)
ROLE_LABELS = {"base": "base", "best_remedy": "best remedy"}
CONSTANT_ROW = "constant predictor"  # the accuracy tables' last row: answering the training set's majority class


def row_label_of(key: str) -> str:
    """A method's label, or the constant predictor's row as words."""
    return r"\emph{majority class}" if key == CONSTANT_ROW else method_label(key)


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


Cells = dict[str, dict[int, list[str]]]  # row (a method) -> depth -> the lines of one cell
SUMMARY_COLUMNS = 5  # depth columns per block of a summary table (median over interval): at 8 pt they fit the text
VERDICT_COLUMNS = 3  # depth columns per block of a verdict table, whose cells carry p-values and a power line


def depth_blocks(depths: list[int], columns: int) -> list[list[int]]:
    """The depths in blocks of at most `columns`: five depths in threes -> [2, 4, 8], [16, 32]."""
    return [depths[i : i + columns] for i in range(0, len(depths), columns)] or [[]]


def depth_table(
    cells: Cells,
    caption: str,
    label: str,
    row_header: str = "method",
    row_label=method_label,
    axis: str = DEPTH_AXIS,
    columns: int = SUMMARY_COLUMNS,
) -> str:
    """A booktabs longtable at footnotesize, rows x depths, of cells given as lines stacked in the cell (`--` where
    none), its depths in blocks of at most `columns`, each block under its own header; it breaks across pages
    rather than shrink. Rows are labelled by `row_label(key)` (a method name by default)."""
    depths = sorted({depth for row in cells.values() for depth in row})
    blocks = depth_blocks(depths, columns)
    width = max(len(block) for block in blocks)
    lines = [
        r"{\footnotesize",
        r"\begin{longtable}{l" + "c" * width + "}",
        r"\caption{" + caption + r"}\label{" + label + r"}\\",
        r"\endfirsthead",
        f"\\multicolumn{{{width + 1}}}{{l}}{{\\emph{{Table~\\thetable, continued}}}} \\\\",
        r"\endhead",
        r"\bottomrule",
        r"\endlastfoot",
    ]
    for i, block in enumerate(blocks):
        pad = " &" * (width - len(block))
        lines += [
            r"\toprule" if i == 0 else r"\midrule",
            f"& \\multicolumn{{{len(block)}}}{{c}}{{{axis}}}{pad} \\\\",
            f"\\cmidrule(l){{2-{len(block) + 1}}}",
            row_header + " & " + " & ".join(str(d) for d in block) + pad + r" \\",
            r"\midrule",
        ]
        for key, row in cells.items():
            cells_of_block = [stacked(row.get(d, ["--"])) for d in block]
            lines.append(" & ".join([row_label(key), *cells_of_block]) + pad + r" \\ \addlinespace")
    lines += [r"\end{longtable}", "}", ""]
    return "\n".join(lines)


def table_float(tabular: str, caption: str, label: str) -> str:
    """A small table (the methods) as a float, at footnotesize like the others."""
    return "\n".join(
        [
            r"\begin{table}[tbp]",
            r"\centering",
            r"\footnotesize",
            tabular,
            r"\caption{" + caption + "}",
            r"\label{" + label + "}",
            r"\end{table}",
            "",
        ]
    )


def in_order(frame: pd.DataFrame, column: str, order: list[str]) -> list[str]:
    present = set(frame[column])
    return [m for m in order if m in present]


def summary_cells(
    method_summary: pd.DataFrame,
    dataset: str,
    methods: list[str],
    metric: str,
    scale: float,
    decimals: int,
    bold_best: bool,
) -> Cells:
    """Cells 'median / [low, high]' of one metric; with bold_best, the best median of each depth in bold."""
    rows = method_summary[(method_summary.dataset == dataset) & (method_summary.metric == metric)]
    best = rows.groupby("depth")["median"].max()
    cells = {method: {} for method in in_order(rows, "method", methods)}
    for row in rows[rows.method.isin(cells)].itertuples():
        is_best = bold_best and np.isfinite(row.median) and row.median == best[row.depth]
        cells[row.method][row.depth] = [
            math_number(scale * row.median, decimals, bold=is_best),
            interval(scale * row.ci_low, scale * row.ci_high, decimals),
        ]
    return cells


def diverged_sentence(counts: pd.DataFrame, what: str = "accuracy") -> str:
    """A caption's account of the diverged runs of the cells it shows: counts (dataset, method, depth, n_diverged,
    n_seeds), from aggregate.diverged_counts or comparison_diverged."""
    rows = counts[counts.n_diverged > 0].sort_values(["method", "depth"])
    if rows.empty:
        return "No run diverged."
    cells = [f"{method_label(r.method)} at depth {r.depth} ({r.n_diverged} of {r.n_seeds})" for r in rows.itertuples()]
    return (
        f"Runs diverged in {len(cells)} cell{'s' if len(cells) > 1 else ''}, each counted at the {what} it had "
        f"when it stopped (marked ``diverged'' in its cell): {', '.join(cells)}."
    )


def mark_diverged(cells: Cells, counts: pd.DataFrame) -> Cells:
    """A last line `k/n diverged` in every cell with diverged runs."""
    for row in counts[counts.n_diverged > 0].itertuples():
        if row.depth in cells.get(row.method, {}):
            cells[row.method][row.depth].append(f"\\scriptsize {row.n_diverged}/{row.n_seeds} diverged")
    return cells


def shown_counts(method_summary: pd.DataFrame, dataset: str, methods: list[str]) -> pd.DataFrame:
    counts = diverged_counts(method_summary)
    return counts[(counts.dataset == dataset) & counts.method.isin(methods)]


def accuracy_table(
    method_summary: pd.DataFrame, dataset: str, methods: list[str], rule: str, axis: str = DEPTH_AXIS
) -> str:
    counts = shown_counts(method_summary, dataset, methods)
    cells = mark_diverged(
        summary_cells(method_summary, dataset, methods, "test_accuracy", 100, 1, bold_best=True), counts
    )
    constant = constant_predictor(method_summary)
    constant = constant[constant.dataset == dataset]
    if len(constant):
        cells[CONSTANT_ROW] = {row.depth: [math_number(100 * row.median, 1)] for row in constant.itertuples()}
    column = "depth" if axis == DEPTH_AXIS else "length"
    caption = (
        f"Best-checkpoint test accuracy (\\%) on {dataset_label(dataset)}: median over seeds (best per {column} in bold) "
        f"and bootstrap {SUMMARY_PERCENT}\\% interval."
        + (
            " Last row (majority class): the constant predictor that answers its training set's most common class, "
            "median over seeds of its test accuracy; a method at or below it has learned nothing the class prior "
            "does not give."
            if len(constant)
            else ""
        )
        + f" {diverged_sentence(counts)} Rule \\texttt{{{rule}}}."
    )
    return depth_table(cells, caption, f"tab:accuracy-{dataset}", row_label=row_label_of, axis=axis)


def vanishing_table(method_summary: pd.DataFrame, dataset: str, methods: list[str], rule: str) -> str:
    cells = summary_cells(method_summary, dataset, methods, "vanishing_index_init", 1, 2, bold_best=False)
    epoch1 = method_summary[(method_summary.dataset == dataset) & (method_summary.metric == "vanishing_index_epoch1")]
    for row in epoch1[epoch1.method.isin(cells)].itertuples():
        epoch1_line = r"\scriptsize epoch 1: " + math_number(row.median, 2)
        cells[row.method].setdefault(row.depth, ["--"]).append(epoch1_line)
    counts = shown_counts(method_summary, dataset, methods)
    mark_diverged(cells, counts)
    index = r"$\log_{10}(\lVert \partial C/\partial b_1\rVert / \lVert \partial C/\partial b_L\rVert)$"
    caption = (
        f"Vanishing index {index} on {dataset_label(dataset)} at initialization: median over seeds and "
        f"bootstrap {SUMMARY_PERCENT}\\% interval; last line: median of the epoch-1 average. Negative: the "
        f"first layer learns slower (vanishing gradient); positive: faster (exploding). "
        f"{diverged_sentence(counts, 'statistics')} Rule \\texttt{{{rule}}}."
    )
    return depth_table(cells, caption, f"tab:vanishing-{dataset}")


def hyperparameter_cells(chosen: pd.DataFrame, dataset: str, methods: list[str]) -> Cells:
    rows = chosen[chosen.dataset == dataset]
    cells = {method: {} for method in in_order(rows, "method", methods)}
    for _, row in rows[rows.method.isin(cells)].iterrows():
        aux = [
            f"\\scriptsize ${symbol}{{=}}{plain_number(row[name])}$"
            for name, symbol in AUX_SYMBOLS.items()
            if name in row and np.isfinite(row[name])
        ]
        edge = {"low": "^{\\downarrow}", "high": "^{\\uparrow}"}.get(row.get("lr_edge", ""), "")
        cells[row.method][row.depth] = [f"${plain_number(row.lr)}{edge}$", *aux]
    return cells


def hyperparameter_table(chosen: pd.DataFrame, dataset: str, methods: list[str], rule: str) -> str:
    trials = chosen[chosen.dataset == dataset].trials
    budget = str(int(trials.min())) if trials.min() == trials.max() else f"{int(trials.min())}--{int(trials.max())}"
    caption = (
        f"Hyperparameters chosen on the {dataset_label(dataset)} validation split ({budget} trials per method "
        f"and depth): learning rate, and below it the covariance strength $\\lambda$ or the deep-supervision "
        f"weight $w$ where the method has one; $\\downarrow$ / $\\uparrow$: the lowest / highest learning rate "
        f"searched (the choice sits on an end of its range). Chosen by successive halving on validation "
        f"cross-entropy. Rule \\texttt{{{rule}}}."
    )
    return depth_table(hyperparameter_cells(chosen, dataset, methods), caption, f"tab:hyperparameters-{dataset}")


VERDICT_METRICS = {  # metric -> (what is compared, scale, decimals, which way is better)
    "test_accuracy": ("best-checkpoint test accuracy (percentage points)", 100, 1, "higher"),
    "abs_vanishing_index_epoch1": (
        r"$\lvert$vanishing index$\rvert$ averaged over epoch 1 (orders of magnitude)",
        1,
        2,
        "lower",
    ),
}


def verdict_lines(row, scale: float, decimals: int, mark_primary: bool = False) -> list[str]:
    """A comparison's cell: signed difference with its verdict mark, interval, and one line with the Holm p of the
    difference and of equivalence; a dagger on the difference when `mark_primary` and the row is primary; a last
    line `diverged k / j` (runs of the variant / of the other method) when either had diverged runs."""
    dagger = r"$^{\dagger}$" if mark_primary and row.family == "primary" else ""
    diverged = (getattr(row, "diverged_method", 0), getattr(row, "diverged_other", 0))
    return [
        math_number(scale * row.difference, decimals, signed=True)
        + dagger
        + " "
        + VERDICT_MARKS[row.verdict]
        + (WITHIN_MARGIN_MARK if getattr(row, "within_margin", False) else ""),
        interval(scale * row.ci_low, scale * row.ci_high, decimals),
        r"$p_{\mathrm{H}}$ "  # at the table's 8 pt, so that the subscripts print at 6 pt
        + p_value_text(row.p_holm)
        + r", $p_{\mathrm{eq}}$ "
        + p_value_text(row.p_equivalence_holm),
    ] + ([f"\\scriptsize diverged {diverged[0]} / {diverged[1]}"] if any(diverged) else [])


def comparison_diverged(rows: pd.DataFrame) -> pd.DataFrame:
    """The diverged-run counts of every cell the comparison rows touch (dataset, method, depth, n_diverged, n_seeds)."""
    if "diverged_method" not in rows:
        return pd.DataFrame(columns=["dataset", "method", "depth", "n_diverged", "n_seeds"])
    sides = [
        rows[["dataset", "method", "depth", "diverged_method", "n_method"]].set_axis(
            ["dataset", "method", "depth", "n_diverged", "n_seeds"], axis=1
        ),
        rows[["dataset", "other_method", "depth", "diverged_other", "n_other"]].set_axis(
            ["dataset", "method", "depth", "n_diverged", "n_seeds"], axis=1
        ),
    ]
    return pd.concat(sides).drop_duplicates(["dataset", "method", "depth"])


def no_remedy_sentence(rows: pd.DataFrame, axis: str = DEPTH_AXIS) -> str:
    """A caption's list of the depths where no remedy learned (compare: none above the validation majority-class rate),
    so there is no best-remedy comparison; '' where every depth has one."""
    depths = sorted(set(rows.depth[rows.best_remedy.isna()]))
    if not depths:
        return ""
    unit = "depth" if axis == DEPTH_AXIS else "length"
    where = f"{unit}{'s' if len(depths) > 1 else ''} {', '.join(map(str, depths))}"
    return (
        f"At {where} no standard remedy learned beyond noise (most seeds not collapsed, best validation accuracy above "
        "the validation majority-class rate by a one-sided paired $t$-test): no best-remedy comparison there. "
    )


def correction_sentence(rows: pd.DataFrame) -> str:
    """A caption's account of the corrected resampled t-test where the rows used it (compare: a split per seed), ''
    where none did."""
    corrected = rows[rows.corrected.astype(bool)] if "corrected" in rows else rows.iloc[:0]
    if corrected.empty:
        return ""
    ratio = float(corrected.test_train_ratio.median())
    factor = float(corrected.variance_factor.mode().iloc[0])
    return (
        f"Each seed has its own split of {dataset_label(corrected.dataset.iloc[0])}, so the tests are the corrected "
        f"resampled $t$-test (variance of the paired differences times $1/J + n_{{\\mathrm{{test}}}}/"
        f"n_{{\\mathrm{{train}}}}$, $n_{{\\mathrm{{test}}}}/n_{{\\mathrm{{train}}}} = {ratio:.3f}$: "
        f"{factor:.2f} times the plain test's variance), and so is the interval. "
    )


def margin_text(comparisons: pd.DataFrame, scale: float, decimals: int) -> str:
    """The equivalence margin of the rows, `$\\pm 1.0$` (one per dataset and metric)."""
    margins = sorted(set(comparisons.margin))
    return " / ".join(r"$\pm " + math_number(scale * m, decimals).strip("$") + "$" for m in margins) or "--"


def secondary_verdict_cells(
    comparisons: pd.DataFrame, dataset: str, method: str, metric: str, others: list[str], scale: float, decimals: int
) -> Cells:
    rows = comparisons[
        (comparisons.dataset == dataset) & (comparisons.method == method) & (comparisons.metric == metric)
    ]
    cells = {other: {} for other in in_order(rows, "other_method", others)}
    for row in rows[rows.other_method.isin(cells)].itertuples():
        cells[row.other_method][row.depth] = verdict_lines(row, scale, decimals, mark_primary=True)
    return cells


def secondary_verdict_table(
    comparisons: pd.DataFrame, dataset: str, method: str, metric: str, others: list[str], rule: str
) -> str:
    """Every comparison of one variant on one metric (appendix); cells of the primary family carry a dagger."""
    what, scale, decimals, better = VERDICT_METRICS[metric]
    mine = comparisons[(comparisons.dataset == dataset) & (comparisons.metric == metric)]
    caption = (
        f"{method_label(method)} minus each other method on {dataset_label(dataset)}: difference in {what} "
        f"({better} is better) with its $t$ {COMPARISON_PERCENT}\\% interval (unadjusted); Holm-adjusted "
        f"$p$-values of the difference ($p_{{\\mathrm{{H}}}}$) and of equivalence within "
        f"{margin_text(mine, scale, decimals)} ($p_{{\\mathrm{{eq}}}}$, two one-sided tests), adjusted within "
        f"the secondary family. {correction_sentence(mine)}{VERDICT_LEGEND}. "
        f"$^{{\\dagger}}$: a primary comparison, its $p$-values adjusted within the primary family. "
        f"{diverged_sentence(comparison_diverged(mine[mine.method == method]), 'outcome')} "
        f"Rule \\texttt{{{rule}}}."
    )
    kind = "verdicts-secondary" if metric == "test_accuracy" else "verdicts-vanishing"
    cells = secondary_verdict_cells(comparisons, dataset, method, metric, others, scale, decimals)
    return depth_table(cells, caption, f"tab:{kind}-{dataset}-{method}", row_header="vs.", columns=VERDICT_COLUMNS)


def power_line(row, scale: float, decimals: int) -> str:
    """`MDD 1.2, eq. reachable`: what a primary comparison could have found (compare.power_columns)."""
    mdd = row.min_detectable_difference
    shown = math_number(scale * mdd, decimals) if np.isfinite(mdd) else "--"
    return r"\scriptsize MDD " + shown + ", eq.\\ " + ("reachable" if row.equivalence_reachable else "out of reach")


def primary_row_label(key: tuple[str, str, str | None]) -> str:
    """The variant over its opponent, two lines, so that three depth columns fit beside it."""
    variant, role, base = key
    opponent = f"base {method_label(base)}" if role == "base" else "best remedy"
    return r"\begin{tabular}[t]{@{}l@{}}" + method_label(variant) + r"\\vs.\ " + opponent + r"\end{tabular}"


def primary_verdict_table(
    comparisons: pd.DataFrame,
    dataset: str,
    variants: list[str],
    rule: str,
    family: str = "primary",
    axis: str = DEPTH_AXIS,
) -> str:
    """The primary family on one dataset (main text): a row per covariance variant and opponent role; the best
    remedy, chosen per depth, is named in its cell. The recurrent track's is family `recurrent_primary`, by T."""
    what, scale, decimals, better = VERDICT_METRICS["test_accuracy"]
    rows = comparisons[(comparisons.dataset == dataset) & (comparisons.family == family)]
    cells: dict[tuple, dict[int, list[str]]] = {}
    for variant in in_order(rows, "method", variants):
        mine = rows[rows.method == variant]
        for role in [r for r in ROLE_LABELS if r in set(mine.role)]:
            opponents = mine[mine.role == role]
            base = opponents.other_method.iloc[0] if role == "base" else None
            cells[(variant, role, base)] = {
                row.depth: verdict_lines(row, scale, decimals)
                + [power_line(row, scale, decimals)]
                + ([r"\scriptsize " + method_label(row.other_method)] if role == "best_remedy" else [])
                for row in opponents.itertuples()
            }
        best_row = cells.get((variant, "best_remedy", None))
        for row in mine[(mine.role == "base") & (mine.other_method == mine.best_remedy)].itertuples():
            if best_row is not None:  # the base is also the best remedy: one comparison, shown in the base row
                best_row.setdefault(row.depth, [r"\scriptsize its base"])
        for depth in mine.depth[mine.best_remedy.isna()]:
            if best_row is not None:  # no remedy learned there: no best-remedy comparison
                best_row.setdefault(depth, [r"\scriptsize no remedy learned"])
    caption = (
        f"Primary comparisons on {dataset_label(dataset)}: each covariance variant minus its base (the same "
        f"network without the force) and minus the best standard remedy at that depth (the other method with "
        f"the highest mean validation accuracy among those that learned beyond noise, named in the cell), in {what} ({better} is better): difference "
        f"of means over seeds with its $t$ {COMPARISON_PERCENT}\\% interval (the test's own, unadjusted for "
        f"multiplicity); Holm-adjusted $p$-values of the difference ($p_{{\\mathrm{{H}}}}$) and of equivalence within {margin_text(rows, scale, decimals)} "
        f"points ($p_{{\\mathrm{{eq}}}}$, two one-sided tests), adjusted together within the "
        f"{family.replace('_', ' ')} family of {dataset_label(dataset)} only; MDD: the minimum detectable difference at the family's "
        f"strictest Holm level (power {100 * POWER:.0f}\\,\\% given the observed spread of the paired differences), and "
        f"whether equivalence within the margin was reachable at that level (eq.\\ reachable) or not "
        f"(eq.\\ out of reach). {no_remedy_sentence(rows, axis)}{correction_sentence(rows)}{VERDICT_LEGEND}. "
        f"{diverged_sentence(comparison_diverged(rows), 'outcome')} Rule \\texttt{{{rule}}}."
    )
    return depth_table(
        cells,
        caption,
        f"tab:verdicts-{dataset}",
        row_header="comparison",
        row_label=primary_row_label,
        axis=axis,
        columns=VERDICT_COLUMNS,
    )


def methods_table(specs: dict[str, dict], rule: str) -> str:
    """The composition of every method (docs/design.md#methods-as-compositions)."""
    lines = [
        r"\begin{tabular}{llllll}",
        r"\toprule",
        r"method & activation & init & norm & residual / clip & auxiliary \\",
        r"\midrule",
    ]
    for method, spec in specs.items():
        if "rule" in spec:  # provided by a rule of workflow/rules/methods/: its own description, no components
            what = tex_escape(spec.get("description", "a method of its own")) + f" (rule {method_label(spec['rule'])})"
            lines.append(f"{method_label(method)} & \\multicolumn{{5}}{{l}}{{{what}}} \\\\")
            continue
        init = spec["init"] + (" (standardized inputs)" if spec.get("standardize_inputs") else "")
        extras = [
            x
            for x in (
                f"{spec['residual']} residual" if spec.get("residual", "none") != "none" else "",
                f"clip {plain_number(spec['grad_clip'])}" if spec.get("grad_clip") else "",
            )
            if x
        ]
        lines.append(
            " & ".join(
                [
                    method_label(method),
                    tex_escape(spec["activation"]),
                    tex_escape(init),
                    tex_escape(spec.get("norm", "none")),
                    ", ".join(extras) or "--",
                    tex_escape(spec.get("aux", "none")),
                ]
            )
            + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = (
        "The methods, each a composition of an activation, an initialization, a normalization, optional "
        f"residual connections or gradient clipping, and an auxiliary term. Rule \\texttt{{{rule}}}."
    )
    return table_float("\n".join(lines), caption, "tab:methods")


def verdict_pairs(comparisons: pd.DataFrame, datasets: list[str], methods: list[str]) -> list[tuple[str, str]]:
    """(dataset, covariance variant) of every secondary verdict table, in grid order: those with comparisons."""
    present = set(zip(comparisons.dataset, comparisons.method))
    return [(d, v) for d in datasets for v in methods if (d, v) in present]


def primary_datasets(comparisons: pd.DataFrame, datasets: list[str]) -> list[str]:
    """The datasets of the primary verdict tables, in grid order: those with a primary comparison."""
    present = set(comparisons.dataset[comparisons.family == "primary"])
    return [d for d in datasets if d in present]


def all_tables(
    method_summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    chosen: pd.DataFrame,
    specs: dict[str, dict],
    datasets: list[str],
    rule: str,
    recurrent_specs: dict[str, dict] | None = None,
    recurrent_datasets: tuple[str, ...] = (),
) -> dict[str, str]:
    """Table kind (TABLES) -> LaTeX text: one float per dataset, and per covariance variant for secondary verdicts;
    `recurrent`: the recurrent track's accuracy and primary verdicts per dataset, by sequence length."""
    recurrent_methods = list(recurrent_specs or {})
    text = {
        "recurrent": "\n".join(
            accuracy_table(method_summary, d, recurrent_methods, rule, axis=LENGTH_AXIS)
            + (
                primary_verdict_table(
                    comparisons, d, recurrent_methods, rule, family="recurrent_primary", axis=LENGTH_AXIS
                )
                if ((comparisons.dataset == d) & (comparisons.family == "recurrent_primary")).any()
                else ""
            )
            for d in recurrent_datasets
            if d in set(method_summary.dataset)
        )
    }
    methods = list(specs)
    text["methods"] = methods_table(specs, rule)
    text["accuracy"] = "\n".join(accuracy_table(method_summary, d, methods, rule) for d in datasets)
    text["vanishing_index"] = "\n".join(vanishing_table(method_summary, d, methods, rule) for d in datasets)
    text["hyperparameters"] = "\n".join(hyperparameter_table(chosen, d, methods, rule) for d in datasets)
    text["verdicts"] = "\n".join(
        primary_verdict_table(comparisons, d, methods, rule) for d in primary_datasets(comparisons, datasets)
    )
    for kind, metric in (("verdicts_secondary", "test_accuracy"), ("verdicts_vanishing", "abs_vanishing_index_epoch1")):
        text[kind] = "\n".join(
            secondary_verdict_table(comparisons, d, v, metric, [m for m in methods if m != v], rule)
            for d, v in verdict_pairs(comparisons, datasets, methods)
        )
    return text


def write_tables(
    method_summary_path: str,
    comparisons_path: str,
    chosen_path: str,
    specs: dict[str, dict],
    datasets: list[str],
    out_paths: dict[str, str],
    rule: str = "tables",
    recurrent_specs: dict[str, dict] | None = None,
    recurrent_datasets: tuple[str, ...] = (),
) -> None:
    """Write each kind of TABLES to out_paths[kind]; `specs` are the grid's methods in grid order (the recurrent
    track's in recurrent_specs)."""
    text = all_tables(
        pd.read_parquet(method_summary_path),
        pd.read_parquet(comparisons_path),
        pd.read_parquet(chosen_path),
        specs,
        datasets,
        rule,
        recurrent_specs,
        tuple(recurrent_datasets),
    )
    for kind, path in out_paths.items():
        atomic.write_text(path, text[kind])
