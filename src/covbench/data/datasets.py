"""Fetch, verify and prepare the datasets of docs/design.md#datasets-and-splits.

Every raw file is checked against a pinned SHA256 before anything reads it, because look-alikes
(Git LFS pointers, saved HTML pages, re-saved HDF5 variants) circulate under the same names.

    download("mnist", "results/raw", mirror="/work/shared/data")
    prepare("mnist", "results/raw", "results/data/mnist.pt", train_size=1000)
    splits = load_splits("results/data/mnist.pt")
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from covbench import atomic

SPLITS = ("train", "val", "test")
CATVNONCAT_VAL_SIZE = 41  # of the 209 official training images: 168 train / 41 validation
CATVNONCAT_SPLIT_SEED = 0  # fixed, so every run and seed sees the same validation images

_MNIST_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://raw.githubusercontent.com/ramakris/coursera-deeplearning/"
    "c79617ebb9ff38e765e821f80352adee93f19357/Improving-DeepNN/MNIST_data/",
)
_CATVNONCAT_BASES = (
    "https://raw.githubusercontent.com/ramakris/coursera-deeplearning/"
    "c79617ebb9ff38e765e821f80352adee93f19357/neuralnetworks/week2/datasets/",
    "https://raw.githubusercontent.com/Hiren2002/Logistic-Regression/"
    "a6139a838a0e624f4ab923377df0c5d3386fdf1f/datasets/",
)


class DataError(RuntimeError):
    """A dataset problem; the message is one line that names the fix."""


@dataclass(frozen=True)
class RawFile:
    name: str
    dataset: str
    size: int  # bytes
    sha256: str
    urls: tuple[str, ...]  # canonical sources, tried in this order


def _raw(name: str, dataset: str, size: int, sha256: str) -> RawFile:
    bases = _MNIST_BASES if dataset == "mnist" else _CATVNONCAT_BASES
    return RawFile(name, dataset, size, sha256, tuple(base + name for base in bases))


# Sizes and SHA256s from /work/shared/data/README.md (the published values).
RAW_FILES: dict[str, RawFile] = {
    f.name: f
    for f in (
        _raw(
            "train-images-idx3-ubyte.gz",
            "mnist",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        _raw(
            "train-labels-idx1-ubyte.gz",
            "mnist",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        _raw(
            "t10k-images-idx3-ubyte.gz",
            "mnist",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        _raw(
            "t10k-labels-idx1-ubyte.gz",
            "mnist",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
        _raw(
            "train_catvnoncat.h5",
            "catvnoncat",
            2572022,
            "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242",
        ),
        _raw(
            "test_catvnoncat.h5",
            "catvnoncat",
            616958,
            "6a9d39ce52fa85953c5834695b8534a30ed8cfd54971fb2f080b5a24d002b951",
        ),
    )
}
DATASETS = ("mnist", "catvnoncat", "smnist")
# Datasets built from another's raw files: noise-padded row MNIST (covbench.data.sequences) reads MNIST's images, its
# sequences made per sequence length in the training process, so it has no download of its own.
SOURCE = {"smnist": "mnist"}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _files_of(dataset: str) -> list[RawFile]:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    return [f for f in RAW_FILES.values() if f.dataset == SOURCE.get(dataset, dataset)]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks_of_file(path: Path):
    def chunks():
        with open(path, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")

    return chunks


def _chunks_of_url(url: str, timeout_s: float):
    def chunks():
        request = urllib.request.Request(url, headers={"User-Agent": "covbench"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            yield from iter(lambda: response.read(1 << 20), b"")

    return chunks


def _place(spec: RawFile, dest: Path, source: str, chunks) -> Path:
    """Write the source's bytes beside dest, verify them, then rename them into place (covbench.atomic).

    dest therefore only ever holds a verified file; a bad copy is deleted, never left to be read. Errors of the
    source (the network, the mirror) pass through as they are; a failure of the local disk is a StateError
    (atomic.DiskFull when it is full), which no retry from another source can fix.
    """

    def check(tmp: Path) -> None:
        size, actual = tmp.stat().st_size, sha256_of(tmp)
        if size != spec.size or actual != spec.sha256:
            raise DataError(
                f"{spec.name} from {source} failed verification (deleted): expected SHA256 "
                f"{spec.sha256} ({spec.size} bytes), got {actual} ({size} bytes); "
                f"point the data.mirror config option to a directory holding verified copies"
            )

    return atomic.write_chunks(dest, chunks(), spec.size, check)


def fetch(
    name: str,
    raw_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    retries: int = 3,
    timeout_s: float = 60.0,
) -> Path:
    """Return raw_dir/name, verified; fetch it (mirror first, then the canonical URLs) only if needed.

    A file already there that fails its SHA256 (truncated, corrupted, a look-alike) is removed and fetched again.
    Only network errors are retried; an error of the local disk stops at once with one line naming the fix.
    """
    spec = RAW_FILES.get(name)
    if spec is None:
        raise DataError(f"unknown raw file {name!r}; use one of {', '.join(RAW_FILES)}")
    raw_dir = Path(raw_dir)
    dest = raw_dir / name
    replaced = None
    if dest.is_file():
        actual = sha256_of(dest)
        if actual == spec.sha256:
            return dest
        replaced = dest.stat()
        atomic.warn(
            f"{dest} fails its SHA256 check ({replaced.st_size} of {spec.size} bytes, SHA256 "
            f"{actual[:12]}...): removed, fetching it again"
        )
        dest.unlink()
    path = _fetch(spec, dest, mirror, retries, timeout_s)
    if replaced is not None:  # the same verified bytes as before: outputs made from it stay up to date
        os.utime(path, ns=(replaced.st_atime_ns, replaced.st_mtime_ns))
    return path


def _fetch(spec: RawFile, dest: Path, mirror: str | os.PathLike | None, retries: int, timeout_s: float) -> Path:
    name = spec.name

    tried = []
    if mirror is not None:
        source = Path(mirror) / name
        if not Path(mirror).is_dir():
            tried.append(f"{source} (no such directory {Path(mirror).resolve()})")
        elif source.is_file():
            try:
                return _place(spec, dest, str(source), _chunks_of_file(source))
            except OSError as error:  # an unreadable mirror copy: the URLs may still serve it
                tried.append(f"{source} ({_one_line(error)})")
        else:
            tried.append(f"{source} (missing)")
    for url in spec.urls:
        for attempt in range(max(retries, 1)):
            if attempt:
                time.sleep(2**attempt)  # back off: 2 s, 4 s, ...
            try:
                return _place(spec, dest, url, _chunks_of_url(url, timeout_s))
            except (OSError, http.client.HTTPException) as error:  # URLError is an OSError; a local one is not
                reason = _one_line(error)
        tried.append(f"{url} ({reason})")
    missing_mirror = mirror is not None and not Path(mirror).is_dir()
    raise DataError(
        (f"the data.mirror directory {Path(mirror).resolve()} does not exist, and " if missing_mirror else "")
        + f"could not fetch {name} (SHA256 {spec.sha256}); tried {'; '.join(tried) or 'nothing'}; "
        f"set the data.mirror config option (make MIRROR=dir) to a directory holding verified copies"
    )


def download(dataset: str, raw_dir: str | os.PathLike, mirror: str | os.PathLike | None = None) -> list[Path]:
    """Fetch and verify every raw file of a dataset."""
    return [fetch(f.name, raw_dir, mirror) for f in _files_of(dataset)]


_IDX_NDIM = {0x00000801: 1, 0x00000803: 3}  # uint8 labels / uint8 images


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip or plain) into a uint8 array of its declared shape."""
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if gzipped else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: unreadable gzip ({_one_line(error)}); delete it and fetch it again") from error
    magic = int.from_bytes(raw[:4], "big")
    ndim = _IDX_NDIM.get(magic)
    if ndim is None or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: not a uint8 IDX file (magic {magic:#010x}); delete it and fetch it again")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(
            f"{path}: header says {shape} = {int(np.prod(shape))} values but holds "
            f"{data.size}; delete it and fetch it again"
        )
    return data.reshape(shape)


def read_catvnoncat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 64, 64, 3) and labels int64 (N,) (1 = cat) of a train or test .h5 file."""
    try:
        with h5py.File(path, "r") as f:
            split = next((s for s in ("train", "test") if f"{s}_set_x" in f and f"{s}_set_y" in f), None)
            if split is None:
                raise DataError(f"{path}: no train_set_x/y or test_set_x/y datasets; delete it and fetch it again")
            x, y = f[f"{split}_set_x"][()], f[f"{split}_set_y"][()]
    except OSError as error:
        raise DataError(
            f"{path}: not a readable HDF5 file ({_one_line(error)}); delete it and fetch it again"
        ) from error
    if x.ndim != 4 or x.shape[1:] != (64, 64, 3) or y.shape != (len(x),):
        raise DataError(f"{path}: unexpected shapes x {x.shape}, y {y.shape}; delete it and fetch it again")
    return x.astype(np.uint8, copy=False), y.astype(np.int64, copy=False)


def _stratified_take(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `size` examples, each class in proportion (largest remainder, exact total)."""
    classes, counts = np.unique(y, return_counts=True)
    take, remainder = np.divmod(size * counts, len(y))  # integer arithmetic: no float ties
    order = np.argsort(-remainder, kind="stable")
    take[order[: size - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(y == c), k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks))


def _verified(raw_dir: Path, name: str, mirror: str | os.PathLike | None) -> Path:
    """raw_dir/name after its SHA256 check; a missing or failing file is fetched (again) first."""
    return fetch(name, raw_dir, mirror)


def _official_splits(
    dataset: str, raw_dir: Path, mirror: str | os.PathLike | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(images, labels) of train, val and test, before subsampling."""
    _files_of(dataset)  # rejects unknown names
    if SOURCE.get(dataset, dataset) == "mnist":
        x_train, y_train, x_test, y_test = (
            read_idx(_verified(raw_dir, f, mirror))
            for f in (
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            )
        )
        return {
            "train": (x_train[:50_000], y_train[:50_000]),
            "val": (x_train[50_000:], y_train[50_000:]),  # the last 10k of the official train set
            "test": (x_test, y_test),
        }
    x_train, y_train = read_catvnoncat(_verified(raw_dir, "train_catvnoncat.h5", mirror))
    x_test, y_test = read_catvnoncat(_verified(raw_dir, "test_catvnoncat.h5", mirror))
    val = _stratified_take(y_train, CATVNONCAT_VAL_SIZE, np.random.default_rng(CATVNONCAT_SPLIT_SEED))
    train = np.setdiff1d(np.arange(len(y_train)), val)
    return {"train": (x_train[train], y_train[train]), "val": (x_train[val], y_train[val]), "test": (x_test, y_test)}


def prepare(
    dataset: str,
    raw_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    mirror: str | os.PathLike | None = None,
) -> Path:
    """Build the train/val/test tensors of docs/design.md#datasets-and-splits from verified raw files and save them.

    x is float32 (N, D) = pixels / 255, flattened in the files' own order; y is int64 (N,).
    A size subsamples that split, stratified by class and seeded; None keeps it whole. A raw file that is missing
    or fails its SHA256 is fetched (again) from `mirror` or the canonical URLs first.
    """
    splits = _official_splits(dataset, Path(raw_dir), mirror)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    tensors = {}
    for k, split in enumerate(SPLITS):
        x, y = splits[split]
        size = sizes[split]
        if size is not None:
            if not 1 <= size <= len(y):
                raise DataError(
                    f"{split}_size={size} is outside 1..{len(y)}, the size of the {dataset} "
                    f"{split} split; set {split}_size for {dataset} in the config within it "
                    f"(null keeps it whole)"
                )
            keep = _stratified_take(y, size, np.random.default_rng([seed, k]))  # one stream per split
            x, y = x[keep], y[keep]
        tensors[f"x_{split}"] = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
        tensors[f"y_{split}"] = torch.from_numpy(y.astype(np.int64))
    return atomic.save_torch(tensors, out_path)  # readers never see a half-written file


def prepare_settings(config: dict, dataset: str) -> dict:
    """prepare's keyword arguments for a dataset of the config (rule `prepare`, and a job remaking its input)."""
    settings = config["datasets"][dataset]
    return {
        **{k: settings.get(k) for k in ("train_size", "val_size", "test_size")},
        "seed": config["data"]["split_seed"],
        "mirror": config["data"]["mirror"],
    }


def remake(config: dict, dataset: str, out_path: str | os.PathLike) -> Path:
    """Prepare out_path again as rule `prepare` does, raw files from its sibling folder raw/."""
    return prepare(dataset, Path(out_path).parent / "raw", out_path, **prepare_settings(config, dataset))


def _check_splits(splits) -> dict[str, torch.Tensor]:
    expected = {f"{xy}_{split}" for split in SPLITS for xy in "xy"}
    if not isinstance(splits, dict) or set(splits) != expected:
        raise ValueError(
            f"holds {sorted(splits) if isinstance(splits, dict) else type(splits).__name__}, "
            f"not the six tensors {sorted(expected)}"
        )
    for split in SPLITS:
        x, y = splits[f"x_{split}"], splits[f"y_{split}"]
        if x.dtype != torch.float32 or y.dtype != torch.int64 or len(x) != len(y):
            raise ValueError(f"{split}: x {x.dtype} {tuple(x.shape)}, y {y.dtype} {tuple(y.shape)}")
    return splits


def load_splits(path: str | os.PathLike, remake: Callable[[], object] | None = None) -> dict[str, torch.Tensor]:
    """The six tensors saved by prepare, verified (zip CRCs, keys, dtypes, lengths); weights_only=True unpickles
    nothing but tensors. A file failing verification is removed and, given `remake` (e.g. a partial of `remake`
    above), made again and read; without it, atomic.Corrupt says to rerun the command that makes it."""
    before = os.stat(path)
    try:
        return atomic.verified(path, lambda p: _check_splits(atomic.load_torch(p)))
    except atomic.Corrupt as error:
        if remake is None:
            raise
        atomic.warn(f"{error.path} failed verification ({error.reason}): removed, preparing it again")
    remake()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tensors: the jobs they fed stay done
    return atomic.verified(path, lambda p: _check_splits(atomic.load_torch(p)))
