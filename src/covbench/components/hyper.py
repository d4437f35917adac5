"""Hyperparameters that may differ between the models trained together (tuning trials batched as one model)."""

import torch


def per_model(value, like: torch.Tensor, dims: int) -> torch.Tensor | float:
    """A value shared by all models (a number), or one per model (a list) shaped to broadcast against a
    tensor with `dims` dimensions whose first is the model dimension (dtype and device of `like`)."""
    if not isinstance(value, list):
        return value
    return torch.tensor(value, dtype=like.dtype, device=like.device).view(-1, *([1] * (dims - 1)))
