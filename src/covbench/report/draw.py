"""Every figure of the paper by name, drawn from its input tables and saved as the PDF for the paper and the PNG
for the Snakemake report. It gathers the figure modules of covbench.report.figures (results; mechanism: the force
against the gradient; recurrent: the long-memory track), so they need not know each other.

    make("accuracy_vs_depth", {"method_summary": "results/aggregate/method_summary.parquet"},
         "results/figures/accuracy_vs_depth.pdf", "results/figures/accuracy_vs_depth.png", methods)
"""

import matplotlib.pyplot as plt

from covbench import atomic
from covbench.analysis import aggregate
from covbench.report.figures import layout, mechanism, recurrent, results
from covbench.report.palette import method_styles

FIGURES = {**results.FIGURES, **mechanism.FIGURES, **recurrent.FIGURES}


def save(fig: plt.Figure, pdf: str, png: str) -> None:
    """The PDF for the paper, the PNG for the Snakemake report."""
    atomic.write_with(pdf, lambda out: fig.savefig(out, format="pdf"))
    fig.set_layout_engine("none")  # the PNG keeps the PDF's layout instead of solving it again
    atomic.write_with(png, lambda out: fig.savefig(out, format="png", dpi=layout.PNG_DPI))
    plt.close(fig)


def make(
    figure: str,
    inputs: dict[str, str | list[str]],
    pdf: str,
    png: str,
    methods: list[str],
    datasets: list[str] | None = None,
    **options,
) -> None:
    """Draw `figure` from the named input tables (a list of files is concatenated) and save it twice.

    `methods` are all methods of the config: their sorted order fixes each method's style. `datasets` keeps the
    rows of those datasets only (the MLP grid's or the recurrent track's figures).
    """
    frames = {
        name: aggregate.read_frames([paths] if isinstance(paths, str) else list(paths))
        for name, paths in inputs.items()
    }
    if datasets is not None:
        frames = {
            name: frame[frame.dataset.isin(datasets)] if "dataset" in frame else frame for name, frame in frames.items()
        }
    save(FIGURES[figure](**frames, styles=method_styles(methods), **options), pdf, png)
