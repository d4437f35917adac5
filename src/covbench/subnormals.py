"""Subnormal floats, those below float32's smallest normal (1.2e-38). Training processes flush them to zero
(covbench.training.process.configure_process): on x86 every subnormal operand takes a slow path, and a sigmoid net with N(0,1) weights
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


# Below this a float32 norm or standard deviation may have lost part of its sum of squares to flushed subnormals
# (squares of entries below 1.1e-19); above it the lost part is under 1e-7 of it even for 10^7 entries.
TINY = 1e-12


def norm_of(x: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (M,): the L2 norm of each model's slice. Training flushes float32 subnormals to zero, and the square
    of an entry below 1e-19 is one, so the float32 norm of a vanishing gradient of 1e-21 per entry reads 0; such a
    norm (below TINY) is summed again in float64. On the CPU that check costs no sync; elsewhere the float64 sum is
    always taken (36x slower than float32 on the CPU for a 6M-entry first layer, cheap on a GPU)."""
    return _robust(
        x.flatten(1), lambda v: v.norm(dim=1), lambda v: torch.linalg.vector_norm(v, dim=1, dtype=torch.float64)
    )


def std_of(x: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (M,): each model's standard deviation, re-summed in float64 when tiny, as norm_of."""
    return _robust(x.flatten(1), lambda v: v.std(1), lambda v: v.double().std(1))


def _robust(x: torch.Tensor, single, double) -> torch.Tensor:
    if x.device.type != "cpu":
        return double(x).to(x.dtype)
    value = single(x)
    tiny = value < TINY
    if bool(tiny.any()):
        value = torch.where(tiny, double(x).to(x.dtype), value)
    return value
