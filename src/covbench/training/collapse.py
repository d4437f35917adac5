"""The collapse policy: a network whose training loss ends near what a network ignoring its input would reach
learned (next to) nothing. Tuning ranks such a trial after every trial that learned; run.json records it for each
run (docs/design.md#per-layer-statistics)."""

import torch

# A final training loss above this fraction of the class-prior entropy: collapsed, the network learned (next to)
# nothing. 0.9, not 0.98: on cat/not-cat a trial at 0.95 of the entropy predicts the majority class for nearly
# every image, and its validation loss, close to the prior's, beat every trial that learned.
COLLAPSED_FRACTION = 0.9


def class_prior_entropy(labels: torch.Tensor) -> float:
    """The training loss of a network that ignores its input and predicts the class frequencies: a run that ends
    near it has collapsed to the majority class (or chance) instead of learning."""
    prior = torch.bincount(labels).double() / len(labels)
    prior = prior[prior > 0]
    return float(-(prior * prior.log()).sum())


def collapsed(train_loss, prior_entropy):
    """Whether a final training loss is collapsed for its split's class-prior entropy (scalars or arrays alike)."""
    return train_loss >= COLLAPSED_FRACTION * prior_entropy
