"""The auxiliary-signal interface, and `aux: none`.

An aux component adds to training without touching the loop: it may own extra trainable tensors, add a
per-model loss term, and add a force to the gradient arriving at each hidden activation (the loop seeds the
forces into backpropagation beside the loss, so they flow on to earlier layers like the ordinary gradient).
"""

from collections.abc import Callable
from dataclasses import dataclass

from covbench.components import register


@dataclass(frozen=True)
class Aux:
    # (models, depth, width, classes, init_head) -> dict of extra trainable tensors (lists allowed)
    init_params: Callable
    # (acts, logits, labels, correct (M, B) bool, params, spec, progress in [0, 1)) -> (extra loss (M,) or None,
    #  forces: one (M, B, n) per hidden layer, added to the gradient arriving at that layer's activations, or None,
    #  active groups: (M,) fraction of the force's groups acting on this batch, or None without a force)
    apply: Callable


def no_params(models, depth, width, classes, init_head):
    return {}


register("aux", "none")(Aux(no_params, lambda *args: (None, None, None)))
