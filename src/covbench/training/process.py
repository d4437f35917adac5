"""The training process: torch's threads, subnormal floats and the allocator set once per process, the device
named in the config, and the versions every run records."""

import ctypes
import platform

import numpy as np
import pandas as pd
import torch

# glibc mallopt parameters and the values configure_process gives them
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
MALLOC_SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))


def configure_process(threads: int) -> dict:
    """Torch threads, subnormal floats flushed to zero, and glibc's allocator told to keep the memory a training
    step frees. -> the settings as they took, for run.json.

    Subnormals: with N(0,1) weights over 12,288 standardized inputs a sigmoid unit's pre-activation has a standard
    deviation near 110, so its derivative and the gradients behind it fall below float32's smallest normal
    (1.2e-38), and on x86 every subnormal operand takes a microcode slow path: a 9-layer sigmoid N(0,1) step on
    cat/not-cat took 26 ms instead of 2.3 ms (BENCHMARKS.md). Flushing turns every value below 1.2e-38 into 0 (and
    reads such inputs as 0); no statistic the grid logs comes near that (tests/test_train.py).

    Allocator: every step allocates and frees the same buffers, activation-sized (0.1 to 2 MB) and, on
    cat/not-cat, gradient-sized (8 trials x 12288 x 100 floats: 39 MB). By default glibc serves them from fresh
    mmap'd pages and trims the heap on free, so each step pays a page fault per 4 KiB touched: that made the
    depth-32 covariance force 5x slower (3.5 ms per call instead of 0.6 ms, BENCHMARKS.md). Raising the mmap
    threshold stops at glibc's 32 MB ceiling, which the 39 MB first-layer gradient of a cat/not-cat tuning rung
    is above (its backward matmul took 32 ms instead of 14 ms), so mmap is turned off: every block comes from
    the heap, which is never trimmed below 1 GiB. Other C libraries are left as they are.
    """
    flushed = torch.set_flush_denormal(True)  # before the thread pool starts; False where the CPU cannot (no SSE3)
    torch.set_num_threads(threads)
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    malloc = glibc and all([ctypes.CDLL("libc.so.6").mallopt(option, value) == 1 for option, value in MALLOC_SETTINGS])
    return {"threads": threads, "flush_denormal": bool(flushed), "malloc_settings": bool(malloc)}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            "config error at 'train.device': 'cuda' requested but torch sees no GPU; use 'cpu' or 'auto'"
        )
    return torch.device(name)


def versions() -> dict:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "covbench": version("covbench"),
        "platform": platform.platform(),
    }
