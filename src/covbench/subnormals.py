"""Subnormal floats, those below float32's smallest normal (1.2e-38). Training processes flush them to zero
(train.configure_process): on x86 every subnormal operand takes a slow path, and a sigmoid net with N(0,1) weights
on cat/not-cat's 12,288 inputs makes its gradients subnormal. Code that relies on IEEE gradual underflow runs
inside `kept()`."""
import contextlib

import torch

SUBNORMAL = 2.0**-130  # 7.3e-40: a float32 subnormal


def flushed() -> bool:
    """Whether this thread flushes subnormals to zero now (torch sets the mode but does not report it)."""
    return bool((torch.full((1,), SUBNORMAL) * 1.0).item() == 0.0)


@contextlib.contextmanager
def kept():
    """Gradual underflow inside the block, the thread's mode as it was after it."""
    was = flushed()
    torch.set_flush_denormal(False)
    try:
        yield
    finally:
        torch.set_flush_denormal(was)


def norm_of(x: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (M,): the L2 norm of each model's slice, its squares summed in float64. Training flushes
    float32 subnormals to zero, and the square of a gradient entry below 1e-19 is one:
    in float32 the norm of a vanishing gradient of 1e-21 per entry would read 0, in float64 it reads its value."""
    return torch.linalg.vector_norm(x.flatten(1), dim=1, dtype=torch.float64).to(x.dtype)


def std_of(x: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (M,): each model's standard deviation, in float64 for the same reason as norm_of."""
    return x.flatten(1).double().std(1).to(x.dtype)

