"""Per-seed splits (covbench.data.splits, docs/design.md#per-seed-splits) on the real cat/not-cat files, and the
training loop reading one split per model."""

import numpy as np
import pytest
import torch

from covbench.data import datasets as data
from covbench.data import splits as resplit
from covbench.training.batches import standardize
from covbench.training.train import train

pytestmark = pytest.mark.usefixtures("mirror")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, mirror):
    path = data.prepare("catvnoncat", mirror, tmp_path_factory.mktemp("cat") / "cat.pt")
    return data.load_splits(path)


@pytest.fixture(scope="module")
def pool(prepared):
    return resplit.pooled(prepared)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in x.numpy()}


def test_pool_holds_every_official_image_once(pool, mirror):
    """Official train #146 and test #17 are the same cat: the pool keeps it once, so no split can put it in both
    train and test."""
    x_train, y_train = data.read_catvnoncat(mirror / "train_catvnoncat.h5")
    x_test, y_test = data.read_catvnoncat(mirror / "test_catvnoncat.h5")
    official = np.concatenate([x_train, x_test]).reshape(259, -1).astype(np.float32) / 255
    assert np.array_equal(official[146], official[209 + 17]) and y_train[146] == y_test[17] == 1
    assert pool["x"].shape == (258, 12288) and pool["sizes"].tolist() == [167, 41, 50]
    assert len(_rows(pool["x"])) == 258 and int(pool["duplicates_removed"]) == 1
    assert _rows(pool["x"]) == _rows(torch.from_numpy(official))
    assert int(pool["y"].sum()) == int(y_train.sum() + y_test.sum()) - 1 == 104


def test_a_seed_gets_the_same_split_every_time(pool):
    (first, record), (again, record_again) = resplit.seed_split(pool, 3, 0), resplit.seed_split(pool, 3, 0)
    assert record == record_again and record["protocol"] == "per_seed" and record["seed"] == 3
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_two_seeds_and_the_split_seed_give_different_splits(pool):
    digests = {resplit.seed_split(pool, seed, split_seed)[1]["sha256"] for seed in range(5) for split_seed in (0, 1)}
    assert len(digests) == 10


@pytest.mark.parametrize("seed", [0, 1, 7, 1000, 1004])
def test_each_split_is_stratified_and_its_parts_disjoint(pool, seed):
    indices = resplit.split_indices(pool["y"].numpy(), (167, 41, 50), seed, 0)
    assert [len(indices[s]) for s in data.SPLITS] == [167, 41, 50]
    together = np.concatenate([indices[s] for s in data.SPLITS])
    assert len(np.unique(together)) == 258  # disjoint, and every image used once
    cat_share = 104 / 258
    for split in data.SPLITS:  # each part's cat count is its share of the pool's, to within one image
        cats = int(pool["y"].numpy()[indices[split]].sum())
        assert abs(cats - cat_share * len(indices[split])) <= 1
    tensors, record = resplit.seed_split(pool, seed, 0)
    assert record["sha256"] == resplit.split_digest(indices)
    assert (record["n_train"], record["pool_size"], record["duplicates_removed"]) == (167, 258, 1)
    assert torch.equal(tensors["y_val"], pool["y"][torch.from_numpy(indices["val"])])
    parts = [_rows(tensors[f"x_{split}"]) for split in data.SPLITS]  # disjoint by content, not only by index
    assert sum(len(part) for part in parts) == len(set().union(*parts)) == 258


def test_official_protocol_shares_the_prepared_split(pool):
    splits = {f"y_{s}": torch.zeros(n, dtype=torch.long) for s, n in zip(data.SPLITS, (168, 41, 50))}
    tuning, tuning_records, seeds, records = resplit.job_splits(splits, "official", 0, [0, 1], [1000])
    assert (
        tuning is splits and seeds is splits and [r["protocol"] for r in tuning_records + records] == ["official"] * 3
    )
    with pytest.raises(ValueError, match="per_seed"):
        resplit.job_splits(splits, "fold", 0, [0], [1000])


def test_per_seed_tuning_draws_one_split_per_tuning_seed(prepared, pool):
    tuning, tuning_records, seeds, records = resplit.job_splits(prepared, "per_seed", 0, [0, 1], [1000, 1001, 1002])
    assert tuning["x_train"].shape[0] == 3 and seeds["x_train"].shape[0] == 2
    assert [r["seed"] for r in tuning_records] == [1000, 1001, 1002] and [r["seed"] for r in records] == [0, 1]
    for k, seed in enumerate([1000, 1001, 1002]):
        alone, record = resplit.seed_split(pool, seed, 0)
        assert tuning_records[k] == record and all(torch.equal(tuning[key][k], alone[key]) for key in alone)


def test_majority_rates():
    y_train, y_val, y_test = torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0, 1]), torch.tensor([1, 1, 1, 0])
    assert resplit.majority_rates(y_train, y_val, y_test) == (0.75, 0.25)


def test_per_model_splits_train_each_model_on_its_own(splits, spec, hp, one_thread):
    """A model trained beside others on its own split gets the numbers it gets trained alone on that split."""
    shuffled = {k: v.flip(0) for k, v in splits.items()}
    together = train(resplit.stacked([splits, shuffled]), spec, hp, 2, [0, 1])
    alone = train(shuffled, spec, hp, 2, [1])
    assert together.test_accuracy[1] == pytest.approx(alone.test_accuracy[0], abs=1e-6)
    assert together.best_val_loss[1] == pytest.approx(alone.best_val_loss[0], rel=1e-5)
    first = train(splits, spec, hp, 2, [0])
    assert together.best_val_loss[0] == pytest.approx(first.best_val_loss[0], rel=1e-5)


def test_standardize_per_model_uses_each_train_part():
    x = torch.stack([torch.arange(12.0).view(3, 4), 10 + 2 * torch.arange(12.0).view(3, 4)])
    splits = {"x_train": x, "y_train": torch.zeros(2, 3, dtype=torch.long), "x_val": x[:, :1], "y_val": x[:, :1, 0]}
    out = standardize(splits)
    for m in range(2):
        assert float(out["x_train"][m].mean()) == pytest.approx(0, abs=1e-6)
        assert float(out["x_train"][m].std()) == pytest.approx(1)


def test_models_on_one_split_are_found_and_share_its_work():
    """distinct_models finds the K distinct splits among trials x K models (tuning's layout), never merges two splits
    that differ in one element (even one the checksum skips), and the shared QR basis and standardization give the
    numbers each model's own computation gives."""
    rng = torch.Generator().manual_seed(0)
    splits = [torch.randn(6, 300, generator=rng) for _ in range(3)]
    x = torch.stack(splits * 4)  # 4 trials x 3 splits, trial-major
    firsts, inverse = resplit.distinct_models(x)
    assert firsts.tolist() == [0, 1, 2] and inverse.tolist() == [0, 1, 2] * 4
    nudged = x.clone()
    nudged[5, 0, 1] += 1.0  # element 1 is not among the checksum's (every 97th)
    assert resplit.distinct_models(nudged)[0].tolist() == [0, 1, 2, 5]
    per_model = {"x_train": x, "x_val": x[:, :2], "y_train": torch.zeros(12, 6, dtype=torch.long)}
    shared = standardize(per_model)["x_train"]
    for m in range(12):
        alone = (x[m] - x[m].mean()) / x[m].std()
        assert torch.equal(shared[m], alone)
