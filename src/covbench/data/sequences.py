"""Noise-padded row MNIST (`smnist`, docs/design.md#the-recurrent-track): depth in time instead of depth in layers.

An image is read one row per step (28 steps of 28 pixels), then `length - 28` steps of Gaussian noise that
carry no information; the class is read from the last hidden state. The information is fixed and only the
distance the gradient must travel grows with `length` (the padded-sequence design of Chang et al. 2019).
The pixels are standardized with the train split's mean and std so that image rows and noise share a scale.
"""

import torch

ROWS = 28  # steps that carry the image, one row of 28 pixels each
SPLITS = ("train", "val", "test")


def padded_rows(splits: dict[str, torch.Tensor], length: int, seed: int) -> dict[str, torch.Tensor]:
    """Flat images (N, 784) -> sequences (N, length, 28). The padding of split k is drawn once, example by
    example in the split's order, from a generator seeded (seed, k): an example's noise depends only on the
    seed, its split, its position and `length`, never on batches, epochs or the model."""
    if length < ROWS:
        raise ValueError(f"sequence length {length} is shorter than the {ROWS} image rows; use lengths >= {ROWS}")
    mean, std = splits["x_train"].mean(), splits["x_train"].std()
    out = dict(splits)
    for k, split in enumerate(SPLITS):
        if f"x_{split}" not in splits:
            continue
        images = ((splits[f"x_{split}"] - mean) / std).view(-1, ROWS, ROWS)
        generator = torch.Generator().manual_seed(seed * len(SPLITS) + k)
        noise = torch.randn((len(images), length - ROWS, ROWS), generator=generator)
        out[f"x_{split}"] = torch.cat([images, noise], dim=1)
    return out
