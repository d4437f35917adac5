"""Atomic writes and verified reads of every file the pipeline reads back (prepared tensors, checkpoints, tuning
records, run files).

A file is written to a temporary file in its own folder and renamed over the target (os.replace), so a reader
finds the old file or the new one, never half of one; a write that fails removes its temporary file. A full disk
becomes one line naming the folder and the space needed. A read verifies what the format can: the CRC32 of every
record of a torch (zip) file, the page CRC32s of a parquet file, the syntax and keys of a JSON record. A file that
fails is removed and reported as `Corrupt`: its producer makes it again (in the same job when it is the reader,
on the next run of the same command otherwise).

    save_torch(state, "results/runs/.../checkpoint.pt")
    state = load_torch("results/runs/.../checkpoint.pt", required=("key", "epoch"))
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch

PART_SUFFIX = ".part"  # temporary files: .<name>.<random>.part beside the target


class StateError(RuntimeError):
    """A file could not be written or read back; the message is one line that names the fix."""


class DiskFull(StateError):
    pass


class Corrupt(StateError):
    """A file failed verification; it has been removed."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(
            f"{path} failed verification ({reason}) and was removed; rerun the same command to make it again"
        )


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000


TERMINAL = []  # where warnings go besides stderr: a Snakemake job's terminal (covbench.jobs.reported)


def warn(message: str) -> None:
    """One line to stderr (a job's log) and to the terminal of a Snakemake job (see TERMINAL)."""
    for stream in [sys.stderr, *TERMINAL]:
        print(f"warning: {message}", file=stream, flush=True)


def storage_error(error: OSError, path: Path, needed: int) -> StateError:
    """A local write failure as one line: a full disk names the folder, the space needed and the space free."""
    folder = path.parent.resolve()
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = size_text(shutil.disk_usage(folder).free)
        except OSError:
            free = "unknown"
        return DiskFull(
            f"disk full: writing {path} needs {size_text(needed)} in {folder} ({free} free); free at "
            f"least {size_text(needed)} there and rerun the same command"
        )
    return StateError(
        f"could not write {path} ({one_line(error)}); check that {folder} is writable and has space, "
        f"then rerun the same command"
    )


def _write(out, data: bytes) -> None:
    """The one place this module's bytes reach the disk (a full disk raises OSError ENOSPC here)."""
    out.write(data)


def write_chunks(
    path: str | os.PathLike, chunks: Iterable[bytes], size_hint: int = 0, check: Callable[[Path], None] | None = None
) -> Path:
    """Write `chunks` to path atomically; `check(temporary file)` may reject the bytes before they replace path.
    Errors raised by the iterator itself (a network source) or by check pass through unchanged; errors of the local
    disk become StateError / DiskFull. The temporary file never outlives a failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PART_SUFFIX)
    except OSError as error:
        raise storage_error(error, path, size_hint) from error
    tmp = Path(tmp_name)
    written = 0
    os.close(fd)
    out = open(tmp, "wb")  # by name: out.name says which file a write failed on
    try:
        for chunk in chunks:  # an error of the source itself passes through as it is
            try:
                _write(out, chunk)
            except OSError as error:
                raise storage_error(error, path, max(size_hint, written + len(chunk))) from error
            written += len(chunk)
        try:
            out.flush()
            os.fsync(out.fileno())
            out.close()
        except OSError as error:
            raise storage_error(error, path, max(size_hint, written)) from error
        if check is not None:
            check(tmp)
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise storage_error(error, path, max(size_hint, written)) from error
    finally:
        try:
            out.close()
        except OSError:  # the buffer of a failed write cannot be flushed either; the error above says why
            pass
        tmp.unlink(missing_ok=True)
    return path


def remove_leftovers(path: str | os.PathLike) -> None:
    """Remove temporary files of path that a killed process left behind (only its own job writes path)."""
    path = Path(path)
    for leftover in path.parent.glob(f".{path.name}.*{PART_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_chunks(path, [data], len(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, record, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(record, indent=indent))


def save_torch(obj, path: str | os.PathLike) -> Path:
    """torch.save into memory, then an atomic write: a full disk is an OSError we can name, not torch's
    `enforce fail at inline_container.cc`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getvalue())


def write_with(path: str | os.PathLike, write: Callable[[io.BytesIO], object]) -> Path:
    """What `write(buffer)` puts into an in-memory buffer, written atomically: for writers that take a file object,
    such as a figure's savefig."""
    buffer = io.BytesIO()
    write(buffer)
    return write_bytes(path, buffer.getvalue())


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Parquet with page checksums (read_parquet verifies them)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, write_page_checksum=True)
    return write_bytes(path, buffer.getvalue())


# --- verified reads ------------------------------------------------------------------------------------------

READ_ERRORS = (
    OSError,
    ValueError,
    RuntimeError,
    EOFError,
    KeyError,
    TypeError,
    IndexError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)


def verified(path: str | os.PathLike, read: Callable[[Path], object]):
    """read(path), or: remove the file and raise Corrupt. A missing file or one we may not read is not corrupt and
    raises as it is."""
    path = Path(path)
    try:
        return read(path)
    except (FileNotFoundError, PermissionError, Corrupt):
        raise
    except READ_ERRORS as error:
        path.unlink(missing_ok=True)
        raise Corrupt(path, one_line(error)) from error


def _require(record, required: Iterable[str]):
    """The record, when it is a mapping holding every required key (nothing required: anything)."""
    required = list(required)
    if required:
        missing = [key for key in required if key not in record] if isinstance(record, dict) else ["a mapping"]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
    return record


def load_torch(path: str | os.PathLike, required: Iterable[str] = ()):
    """torch.load(weights_only=True) after checking the CRC32 of every record of the zip container."""

    def read(path):
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"CRC mismatch in record {bad}")
        return _require(torch.load(path, weights_only=True), required)

    return verified(path, read)


def read_json(path: str | os.PathLike, required: Iterable[str] = ()):
    return verified(path, lambda p: _require(json.loads(p.read_text()), required))


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return verified(path, lambda p: pd.read_parquet(p, page_checksum_verification=True))
