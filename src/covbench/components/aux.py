"""The auxiliary-signal interface, and `aux: none`.

An aux component adds to training without touching the loop: it may own extra trainable tensors, add a
per-model loss term (or a zero-valued term whose gradient adds a force at the hidden activations).
"""
from dataclasses import dataclass
from typing import Callable

from covbench.components import register


@dataclass(frozen=True)
class Aux:
    # (models, depth, width, classes, init_head) -> dict of extra trainable tensors (lists allowed)
    init_params: Callable
    # (acts, logits, labels, correct (M, B) bool, params, spec, progress in [0, 1)) -> (extra loss (M,) or None,
    #  force added to the hidden gradients (M, L, B, n) or None; its norm is taken only at logging steps)
    apply: Callable


def no_params(models, depth, width, classes, init_head):
    return {}


register("aux", "none")(Aux(no_params, lambda *args: (None, None)))

