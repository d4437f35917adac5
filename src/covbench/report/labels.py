"""How the paper writes a dataset, a method and a number in LaTeX: the labels every table, macro and sentence uses.

Split from covbench.report.tables so the prose and the macros take their labels from here, not from the tables.

    method_label("covariance_pooled")  # \\texttt{covariance\\_pooled}
"""

import numpy as np

DATASET_LABELS = {"mnist": "MNIST", "catvnoncat": "cat/non-cat", "smnist": "noise-padded row MNIST"}

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in str(text))


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, tex_escape(dataset))


def method_label(method: str) -> str:
    return r"\texttt{" + tex_escape(method) + "}"


def plain_number(value: float, significant: int = 2) -> str:
    """A positive hyperparameter with `significant` digits and no exponent (0.0081, 0.3, 100)."""
    return np.format_float_positional(value, precision=significant, unique=False, fractional=False, trim="-")
