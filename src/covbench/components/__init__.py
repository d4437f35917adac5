"""Registries of method components (docs/design.md#methods-as-compositions).

A method is a composition: one registered name per component kind. A new component is one new module
that calls `register(kind, name)` on its function(s), plus its import at the bottom of this file.
"""

KINDS = ("activation", "init", "norm", "residual", "aux", "optimizer")  # an MLP method names one of each
# a recurrent method's (docs/design.md#the-recurrent-track)
RECURRENT_KINDS = ("cell", "recurrent_init", "aux", "optimizer")
REGISTRY: dict[str, dict[str, object]] = {kind: {} for kind in KINDS + RECURRENT_KINDS}


def register(kind: str, name: str):
    """Decorator: make `obj` available to methods as `kind: name`."""

    def decorate(obj):
        REGISTRY[kind][name] = obj
        return obj

    return decorate


def get(kind: str, name: str):
    return REGISTRY[kind][name]


def names(kind: str) -> list[str]:
    return sorted(REGISTRY[kind])


# Importing the modules registers their components.
from covbench.components import (  # noqa: E402,F401
    activation,
    aux,
    cell,
    clipping,
    covariance,
    deep_supervision,
    init,
    norm,
    optimizer,
    residual,
)
