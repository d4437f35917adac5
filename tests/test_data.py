"""Tests of covbench.data.datasets against the verified copies in shared/data (the values in its README)."""

import dataclasses
import gzip

import numpy as np
import pytest
import torch

from covbench.data import datasets as data
from covbench.data.datasets import DataError

pytestmark = pytest.mark.usefixtures("mirror")

UNREACHABLE = ("http://127.0.0.1:9/x",)  # discard port: refused at once
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _no_urls(monkeypatch, name):
    spec = data.RAW_FILES[name]
    monkeypatch.setitem(data.RAW_FILES, name, dataclasses.replace(spec, urls=UNREACHABLE))


# --- parsing -------------------------------------------------------------------------------------


def test_raw_files_match_readme(mirror):
    assert len(data.RAW_FILES) == 6
    for spec in data.RAW_FILES.values():
        assert (mirror / spec.name).stat().st_size == spec.size
        assert data.sha256_of(mirror / spec.name) == spec.sha256
        assert all(url.endswith("/" + spec.name) for url in spec.urls)
    assert len(data.RAW_FILES["t10k-labels-idx1-ubyte.gz"].urls) == 4
    assert data.RAW_FILES["t10k-labels-idx1-ubyte.gz"].urls[0].startswith("https://ossci-datasets")
    assert len(data.RAW_FILES["train_catvnoncat.h5"].urls) == 2


def test_read_idx_t10k(mirror):
    labels = data.read_idx(mirror / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == T10K_COUNTS
    images = data.read_idx(mirror / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert abs(images.mean() / 255 - 0.1325) < 5e-4
    assert abs((images / 255).std() - 0.3105) < 5e-4


def test_read_idx_train_labels(mirror):
    labels = data.read_idx(mirror / "train-labels-idx1-ubyte.gz")
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first digits
    assert np.bincount(labels).tolist() == TRAIN_COUNTS


def test_read_idx_plain_and_malformed(tmp_path, mirror):
    plain = tmp_path / "labels-idx1-ubyte"
    plain.write_bytes(gzip.decompress((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    assert np.bincount(data.read_idx(plain)).tolist() == T10K_COUNTS

    truncated = tmp_path / "truncated"
    truncated.write_bytes(plain.read_bytes()[:-1])
    with pytest.raises(DataError, match="holds 9999"):
        data.read_idx(truncated)
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x00\x00\x08\x02" + plain.read_bytes()[4:])
    with pytest.raises(DataError, match="magic 0x00000802"):
        data.read_idx(bad_magic)


def test_read_catvnoncat(mirror):
    x, y = data.read_catvnoncat(mirror / "train_catvnoncat.h5")
    assert x.shape == (209, 64, 64, 3) and x.dtype == np.uint8
    assert y.shape == (209,) and y.dtype == np.int64
    assert (int(y.sum()), int((y == 0).sum())) == (72, 137)
    x, y = data.read_catvnoncat(mirror / "test_catvnoncat.h5")
    assert x.shape == (50, 64, 64, 3)
    assert (int(y.sum()), int((y == 0).sum())) == (33, 17)


def test_read_catvnoncat_rejects_html(tmp_path):
    page = tmp_path / "train_catvnoncat.h5"
    page.write_text("<!DOCTYPE html><html></html>")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        data.read_catvnoncat(page)


# --- fetching ------------------------------------------------------------------------------------

NAME = "t10k-labels-idx1-ubyte.gz"


def test_fetch_from_mirror_places_verified_file(tmp_path, mirror):
    raw = tmp_path / "raw"
    path = data.fetch(NAME, raw, mirror=mirror)
    assert path == raw / NAME
    assert data.sha256_of(path) == data.RAW_FILES[NAME].sha256
    assert sorted(p.name for p in raw.iterdir()) == [NAME]  # no temporary file left behind


def test_fetch_twice_does_not_fetch_again(tmp_path, monkeypatch, mirror):
    raw = tmp_path / "raw"
    first = data.fetch(NAME, raw, mirror=mirror).stat()
    _no_urls(monkeypatch, NAME)  # any fetch attempt would now fail
    again = data.fetch(NAME, raw, mirror=tmp_path / "nowhere").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def test_fetch_replaces_bad_existing_file(tmp_path, mirror):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / NAME).write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # an LFS pointer
    path = data.fetch(NAME, raw, mirror=mirror)
    assert data.sha256_of(path) == data.RAW_FILES[NAME].sha256


def test_fetch_rejects_corrupted_mirror_copy(tmp_path, monkeypatch, mirror):
    bad_mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    bad_mirror.mkdir()
    corrupted = bytearray((mirror / NAME).read_bytes())
    corrupted[100] ^= 0xFF  # same size, one byte flipped
    (bad_mirror / NAME).write_bytes(corrupted)
    _no_urls(monkeypatch, NAME)
    with pytest.raises(DataError) as caught:
        data.fetch(NAME, raw, mirror=bad_mirror)
    message = str(caught.value)
    assert data.RAW_FILES[NAME].sha256 in message
    assert data.sha256_of(bad_mirror / NAME) in message
    assert NAME in message and "\n" not in message
    assert list(raw.iterdir()) == []  # nothing left for the next step to read


def test_fetch_unreachable_names_the_fix(tmp_path, monkeypatch):
    _no_urls(monkeypatch, NAME)
    sleeps = []
    monkeypatch.setattr(data.time, "sleep", sleeps.append)
    raw = tmp_path / "raw"
    with pytest.raises(DataError) as caught:
        data.fetch(NAME, raw, mirror=tmp_path / "empty_mirror", retries=3)
    message = str(caught.value)
    assert "\n" not in message
    for part in (
        NAME,
        data.RAW_FILES[NAME].sha256,
        UNREACHABLE[0],
        "data.mirror",
        str(tmp_path / "empty_mirror" / NAME),
    ):
        assert part in message
    assert sleeps == [2, 4]  # retried with backoff
    assert list(raw.iterdir()) == []


def test_download_fetches_every_file_of_a_dataset(tmp_path, mirror):
    paths = data.download("catvnoncat", tmp_path, mirror=mirror)
    assert sorted(p.name for p in paths) == ["test_catvnoncat.h5", "train_catvnoncat.h5"]
    with pytest.raises(DataError, match="unknown dataset"):
        data.download("cifar10", tmp_path, mirror=mirror)


# --- prepare -------------------------------------------------------------------------------------


def _catvnoncat(tmp_path, mirror, **sizes):
    return data.load_splits(data.prepare("catvnoncat", mirror, tmp_path / "cat.pt", **sizes))


def _rows(x):
    return {row.tobytes() for row in (x.numpy() * 255).round().astype(np.uint8)}


def test_prepare_catvnoncat_split(tmp_path, mirror):
    splits = _catvnoncat(tmp_path, mirror)
    assert sorted(splits) == ["x_test", "x_train", "x_val", "y_test", "y_train", "y_val"]
    assert [len(splits[f"y_{s}"]) for s in data.SPLITS] == [168, 41, 50]
    assert splits["x_train"].shape == (168, 12288) and splits["x_train"].dtype == torch.float32
    assert splits["y_train"].dtype == torch.int64
    # stratified: 72/209 cats overall -> 14 of 41 in validation, the other 58 in train
    assert int(splits["y_val"].sum()) == 14 and int(splits["y_train"].sum()) == 58
    # train and validation partition the official train set; test is the official test set in order
    x_official, _ = data.read_catvnoncat(mirror / "train_catvnoncat.h5")
    official = _rows(torch.from_numpy(x_official.reshape(209, -1) / 255))
    assert _rows(splits["x_train"]) | _rows(splits["x_val"]) == official
    assert not _rows(splits["x_train"]) & _rows(splits["x_val"])
    x_test, y_test = data.read_catvnoncat(mirror / "test_catvnoncat.h5")
    assert torch.equal(splits["x_test"], torch.from_numpy(x_test.reshape(50, -1).astype(np.float32) / 255))
    assert torch.equal(splits["y_test"], torch.from_numpy(y_test))


def test_prepare_catvnoncat_is_deterministic(tmp_path, mirror):
    a = _catvnoncat(tmp_path / "a", mirror)
    b = _catvnoncat(tmp_path / "b", mirror, seed=7)  # the train/val split does not depend on the run seed
    assert all(torch.equal(a[k], b[k]) for k in a)
    small = [_catvnoncat(tmp_path / d, mirror, train_size=30, seed=s) for d, s in (("c", 1), ("d", 1), ("e", 2))]
    assert torch.equal(small[0]["x_train"], small[1]["x_train"])
    assert not torch.equal(small[0]["x_train"], small[2]["x_train"])
    assert int(small[0]["y_train"].sum()) == 10  # round(30 * 58/168) = 10 cats


def test_prepare_rejects_too_large_size(tmp_path, mirror):
    with pytest.raises(DataError, match="train_size=169"):
        data.prepare("catvnoncat", mirror, tmp_path / "cat.pt", train_size=169)
    with pytest.raises(DataError, match="test_size=51"):
        data.prepare("catvnoncat", mirror, tmp_path / "cat.pt", test_size=51)
    assert not (tmp_path / "cat.pt").exists()


def test_prepare_fetches_missing_raw_files_and_names_the_fix_when_it_cannot(tmp_path, monkeypatch, mirror):
    for name in ("train_catvnoncat.h5", "test_catvnoncat.h5"):
        _no_urls(monkeypatch, name)
    monkeypatch.setattr(data.time, "sleep", lambda s: None)
    with pytest.raises(DataError, match="could not fetch train_catvnoncat.h5.*data.mirror"):
        data.prepare("catvnoncat", tmp_path / "raw", tmp_path / "cat.pt", mirror=tmp_path)
    assert not (tmp_path / "cat.pt").exists()
    data.prepare("catvnoncat", tmp_path / "raw", tmp_path / "cat.pt", mirror=mirror)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["test_catvnoncat.h5", "train_catvnoncat.h5"]


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory, mirror):
    out = tmp_path_factory.mktemp("mnist") / "mnist.pt"
    return data.load_splits(data.prepare("mnist", mirror, out, train_size=1000, seed=3))


def test_prepare_mnist(mnist_small, mirror):
    s = mnist_small
    assert [tuple(s[f"x_{k}"].shape) for k in data.SPLITS] == [(1000, 784), (10000, 784), (10000, 784)]
    for k in data.SPLITS:
        x, y = s[f"x_{k}"], s[f"y_{k}"]
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(x) == len(y)
        assert 0 <= float(x.min()) and float(x.max()) <= 1
    # stratified by the class fractions of the 50k train split
    train_labels = data.read_idx(mirror / "train-labels-idx1-ubyte.gz")
    expected = 1000 * np.bincount(train_labels[:50_000], minlength=10) / 50_000
    assert np.all(np.abs(np.bincount(s["y_train"].numpy(), minlength=10) - expected) <= 1)
    # validation is the last 10k of the official train set, test the official test set, both whole
    assert torch.equal(s["y_val"], torch.from_numpy(train_labels[50_000:].astype(np.int64)))
    assert np.bincount(s["y_test"].numpy()).tolist() == T10K_COUNTS
    assert abs(float(s["x_test"].mean()) - 0.1325) < 5e-4
