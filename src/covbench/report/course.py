"""The course's cat classifiers in the paper: per network, the median and range over seeds of our test accuracy, our
test accuracy from the course's own initial weights, the course's reported one, and the cat share of each official
split beside them, from the tidy table covbench.training.course writes.

    write_table("results/course/accuracy.parquet", "accuracy_summary.parquet", "accuracy_summary.tex")
"""

import pandas as pd

from covbench import atomic

CONSTANT_PER_NETWORK = ["sizes", "iterations", "reported_test_accuracy", "n_train", "n_test"]
SPLIT_SHARES = ["train_cat_share", "test_cat_share"]  # the same for every network: the official split's


def summary(accuracy: pd.DataFrame) -> pd.DataFrame:
    """One row per network, in the table's order: over the torch seeds the median and range of test accuracy and the
    medians of train accuracy, final cost and wall time; the test accuracy from the course's own draw (NaN where it
    was not run); the course's number and each split's cat share."""
    grouped = accuracy[accuracy.draw == "torch"].groupby("network", sort=False)
    rows = grouped[CONSTANT_PER_NETWORK + SPLIT_SHARES].first()
    for column in CONSTANT_PER_NETWORK + SPLIT_SHARES:
        if (grouped[column].nunique() > 1).any():
            raise ValueError(f"course accuracy table: {column} differs between seeds of one network")
    stats = grouped.agg(
        n_seeds=("seed", "count"),
        median_test_accuracy=("test_accuracy", "median"),
        min_test_accuracy=("test_accuracy", "min"),
        max_test_accuracy=("test_accuracy", "max"),
        median_train_accuracy=("train_accuracy", "median"),
        median_final_cost=("final_cost", "median"),
        median_wall_s=("wall_s", "median"),
    )
    course_draw = accuracy[accuracy.draw == "numpy"].set_index("network")
    stats["course_draw_seed"] = course_draw.seed.reindex(stats.index).astype("Int64")
    stats["course_draw_test_accuracy"] = course_draw.test_accuracy.reindex(stats.index)
    table = rows.join(stats).reset_index()
    table["test_accuracy_gap"] = table.median_test_accuracy - table.reported_test_accuracy
    return table


def percent(fraction: float, decimals: int = 0) -> str:
    return f"${100 * fraction:.{decimals}f}$" if pd.notna(fraction) else "--"


def latex_table(table: pd.DataFrame) -> str:
    """booktabs tabular: one row per network; accuracies and shares in percent, the seeds' median [min, max]."""
    seeds = sorted(table.n_seeds.unique())
    iterations = sorted(table.iterations.unique())
    lines = [
        f"% Written by covbench.report.course.write_table: {', '.join(map(str, seeds))} seeds, "
        f"{', '.join(map(str, iterations))} iterations; median [min, max] over seeds.",
        r"\begin{tabular}{lcccccc}",
        r"\toprule",
        r"& \multicolumn{4}{c}{accuracy (\%)} & \multicolumn{2}{c}{cats (\%)} \\",
        r"\cmidrule(lr){2-5} \cmidrule(l){6-7}",
        r"& \multicolumn{2}{c}{ours, seeds} & ours, course's weights & course & & \\",
        r"network & train & test & test & test & test & train \\",
        r"\midrule",
    ]
    for row in table.itertuples():
        test = (
            f"{percent(row.median_test_accuracy)} [{percent(row.min_test_accuracy)}, {percent(row.max_test_accuracy)}]"
        )
        cells = [
            f"${row.sizes}$",
            percent(row.median_train_accuracy, 1),
            test,
            percent(row.course_draw_test_accuracy),
            percent(row.reported_test_accuracy),
            percent(row.test_cat_share),
            percent(row.train_cat_share),
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(accuracy_path: str, summary_path: str, tex_path: str) -> None:
    table = summary(pd.read_parquet(accuracy_path))
    atomic.write_parquet(table, summary_path)
    atomic.write_text(tex_path, latex_table(table))
