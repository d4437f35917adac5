"""The appendix's course section: the course's settings and reported accuracies (config), our medians over seeds, our
accuracy from the course's own initial weights and the official split's sizes and cat shares (the summary
covbench.report.course writes).

Split from covbench.report.paper, which gathers every section's macros.

    macros = course_macros(config, pd.read_parquet("results/course/accuracy_summary.parquet"))
"""

import pandas as pd

from covbench.report.labels import plain_number
from covbench.report.prose import word_list

NOT_MEASURED = "n/a"


def percent(fraction: float) -> str:
    return f"${100 * fraction:.0f}\\%$"


def network_label(sizes: list[int]) -> str:
    return "$[" + ", ".join(str(size) for size in sizes) + "]$"


def comparison_sentence(summary: pd.DataFrame) -> str:
    """Ours against the course's, per network: 'the median test accuracy over seeds is 70% (range 70% to 74%) for
    [12288, 7, 1], against the course's 72%; and ...', then our accuracy from the course's own draw."""
    parts = [
        f"{percent(r.median_test_accuracy)} (range {percent(r.min_test_accuracy)} to {percent(r.max_test_accuracy)}) "
        f"for ${r.sizes}$, against the course's {percent(r.reported_test_accuracy)}"
        for r in summary.itertuples()
    ]
    listed = parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + "; and " + parts[-1]
    sentence = f"the median test accuracy over seeds is {listed}."
    drawn = summary.dropna(subset=["course_draw_test_accuracy"])
    if not drawn.empty:
        seeds = ", ".join(sorted({str(int(seed)) for seed in drawn.course_draw_seed}))
        accuracies = word_list([f"{percent(r.course_draw_test_accuracy)} for ${r.sizes}$" for r in drawn.itertuples()])
        sentence += (
            f" Started from the course's own initial weights (numpy's generator seeded with {seeds}, as the course "
            f"seeds it), our loop gives a test accuracy of {accuracies}."
        )
    return sentence


def course_macros(config: dict, summary: pd.DataFrame | None) -> dict[str, str]:
    """None summary: the networks were not trained in this build; the measured macros say so."""
    settings = config.get("course")
    if settings is None:
        return {}
    networks = settings["networks"].values()
    macros = {
        "CourseLr": plain_number(settings["lr"]),
        "CourseIterations": f"{settings['iterations']:,}",
        "CourseSeeds": str(len(settings["seeds"])),
        "CourseNetworkList": word_list([network_label(n["sizes"]) for n in networks]),
        "CourseReportedList": word_list([percent(n["reported_test_accuracy"]) for n in networks]),
    }
    if summary is None or summary.empty:
        measured = dict.fromkeys(
            ["CourseTrainImages", "CourseTestImages", "CourseTrainCatShare", "CourseTestCatShare"], NOT_MEASURED
        )
        measured["CourseComparison"] = "the networks were not trained in this build."
        return {**macros, **measured}
    first = summary.iloc[0]
    return {
        **macros,
        "CourseTrainImages": str(int(first.n_train)),
        "CourseTestImages": str(int(first.n_test)),
        "CourseTrainCatShare": percent(first.train_cat_share),
        "CourseTestCatShare": percent(first.test_cat_share),
        "CourseComparison": comparison_sentence(summary),
    }
