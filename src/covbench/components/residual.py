"""Residual connections (He et al. 2016): a hidden block outputs x + f(x) where shapes match."""
import torch


def residual_add(block_input: torch.Tensor, block_output: torch.Tensor) -> torch.Tensor:
    """The first hidden layer changes width (input -> hidden), so it has no skip connection."""
    if block_input.shape != block_output.shape:
        return block_output
    return block_input + block_output
