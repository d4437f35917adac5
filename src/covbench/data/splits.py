"""Per-seed splits (docs/design.md#per-seed-splits): a small dataset's prepared train, validation and test images
pooled, exact duplicates kept once, and each seed drawing its own stratified split: validation and test of the prepared
sizes, train the rest. Tuning draws K splits of its own, one per tuning seed (docs/design.md#tuning-splits).

Why: cat/not-cat's official training set is 34 % cat and its test set 66 % cat, so one fixed split puts every verdict
on the same held-out images, with a shift of class prior between them, while the seeds vary only the initialisation.
Drawing the split with the seed puts the variance of the data into the seeds (Bouthillier et al. 2021).

    pool = pooled(load_splits("results/data/catvnoncat.pt"))
    one, record = seed_split(pool, seed=3, split_seed=0)  # six tensors of one split, and its run.json record
    batch = stacked([seed_split(pool, s, 0) for s in seeds])  # a leading model dimension: one split per seed
"""

import hashlib

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from covbench.data.datasets import SPLITS

PROTOCOLS = ("official", "per_seed")


def pooled(splits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The prepared splits concatenated in the order train, val, test, each image once (the first of exact duplicates
    by pixel hash: cat/not-cat's official train file #146 is test file #17, so a split could put the same image in
    train and test), with the sizes a per-seed split takes: validation and test as prepared, train the rest."""
    x = torch.cat([splits[f"x_{split}"] for split in SPLITS])
    y = torch.cat([splits[f"y_{split}"] for split in SPLITS])
    first = first_occurrences(x)
    n_val, n_test = len(splits["y_val"]), len(splits["y_test"])
    return {
        "x": x.index_select(0, first),
        "y": y.index_select(0, first),
        "sizes": torch.tensor([len(first) - n_val - n_test, n_val, n_test]),
        "duplicates_removed": torch.tensor(len(y) - len(first)),
    }


def first_occurrences(x: torch.Tensor) -> torch.Tensor:
    """Ascending row indices of `x` that keep the first of every set of rows with the same bytes (pixel hash)."""
    seen, keep = set(), []
    for i, row in enumerate(x.contiguous().numpy()):
        digest = hashlib.sha256(row.tobytes()).digest()
        if digest not in seen:
            seen.add(digest)
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def split_indices(y: np.ndarray, sizes: tuple[int, int, int], seed: int, split_seed: int) -> dict[str, np.ndarray]:
    """Sorted pool indices of a stratified train / val / test split of `sizes` for `seed`: test first, then
    validation from the rest, both with scikit-learn's stratified shuffle. The stream is seeded by (split_seed, seed),
    so a seed gets the same split every time and the data's own split_seed moves all of them at once."""
    n_train, n_val, n_test = sizes
    random_state = int(np.random.SeedSequence([split_seed, seed]).generate_state(1)[0])
    everything = np.arange(len(y))
    rest, test = train_test_split(everything, test_size=n_test, stratify=y, random_state=random_state)
    train, val = train_test_split(
        rest, test_size=n_val, train_size=n_train, stratify=y[rest], random_state=random_state
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def split_digest(indices: dict[str, np.ndarray]) -> str:
    """SHA256 of a split's indices (train, val, test in turn, int64): recorded in run.json, it names the split."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(split.encode())
        digest.update(np.asarray(indices[split], dtype=np.int64).tobytes())
    return digest.hexdigest()


def seed_split(pool: dict[str, torch.Tensor], seed: int, split_seed: int) -> tuple[dict[str, torch.Tensor], dict]:
    """-> (the six tensors of `seed`'s split, its record for run.json: protocol, seed, sizes, sha256, and the pool's
    size and duplicates removed)."""
    sizes = tuple(int(n) for n in pool["sizes"])
    indices = split_indices(pool["y"].numpy(), sizes, seed, split_seed)
    tensors = {}
    for split in SPLITS:
        index = torch.from_numpy(indices[split])
        tensors[f"x_{split}"] = pool["x"].index_select(0, index)
        tensors[f"y_{split}"] = pool["y"].index_select(0, index)
    record = {
        "protocol": "per_seed",
        "seed": seed,
        **{f"n_{split}": len(indices[split]) for split in SPLITS},
        "sha256": split_digest(indices),
        "pool_size": len(pool["y"]),
        "duplicates_removed": int(pool["duplicates_removed"]),
    }
    return tensors, record


def official_record(splits: dict[str, torch.Tensor], split_seed: int) -> dict:
    """The run.json record of the one fixed split every seed shares."""
    return {"protocol": "official", "seed": split_seed, **{f"n_{split}": len(splits[f"y_{split}"]) for split in SPLITS}}


def stacked(per_model: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One split per model stacked on a leading model dimension: x (M, n, ...), y (M, n). The training loop reads a
    2-D y_train as per-model splits (covbench.training.train)."""
    return {key: torch.stack([split[key] for split in per_model]) for key in per_model[0]}


def distinct_models(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model inputs x (M, ...) -> (the first model of each distinct x, every model's position among those).
    Models on one split share what is computed from its inputs alone (a QR basis, standardization statistics): in
    tuning each trial repeats the K tuning splits, so M = trials x K models hold only K distinct ones. A model is
    matched on a checksum of every 97th element, then confirmed equal element for element."""
    checksums = x.flatten(1)[:, ::97].double().sum(1).tolist()
    firsts, inverse = [], []
    for m, checksum in enumerate(checksums):
        match = next((j for j, f in enumerate(firsts) if checksums[f] == checksum and torch.equal(x[f], x[m])), None)
        if match is None:
            match = len(firsts)
            firsts.append(m)
        inverse.append(match)
    return torch.tensor(firsts), torch.tensor(inverse)


def is_per_model(splits: dict[str, torch.Tensor]) -> bool:
    """Whether the splits carry a model dimension (labels (M, n) instead of (n,))."""
    return splits["y_train"].dim() == 2


def majority_rates(y_train: torch.Tensor, y_val: torch.Tensor, y_test: torch.Tensor | None) -> tuple[float, float]:
    """(share of validation's most common class, test accuracy of the constant answer of training's most common
    class): the rates a constant predictor gets, which a best remedy must beat (docs/design.md#the-best-remedy)."""
    val_rate = float(torch.bincount(y_val).max()) / len(y_val)
    if y_test is None:
        return val_rate, float("nan")
    majority = int(torch.bincount(y_train).argmax())
    return val_rate, float((y_test == majority).double().mean())


def seed_data(
    splits: dict[str, torch.Tensor], protocol: str, split_seed: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict]:
    """The one call a method written as a rule makes for a grid seed (docs/methods.md, "Methods as rules"): -> (the six
    tensors of the seed's split under the dataset's `protocol`, the run.json keys that name it: `split` (its record)
    and the constant predictor's `val_majority_rate` and `test_majority_rate`). `splits`: the prepared tensors
    (covbench.data.datasets.load_splits); the same seed gets the same split as the generic `train` rule gives it."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if protocol == "official":
        tensors, record = splits, official_record(splits, split_seed)
    else:
        tensors, record = seed_split(pooled(splits), seed, split_seed)
    val_rate, test_rate = majority_rates(tensors["y_train"], tensors["y_val"], tensors["y_test"])
    return tensors, {"split": record, "val_majority_rate": val_rate, "test_majority_rate": test_rate}


def drawn_splits(
    splits: dict[str, torch.Tensor], protocol: str, split_seed: int, seeds: list[int]
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """-> (the splits of `seeds` as the training loop takes them, one run.json record per seed). `official`: every
    seed shares the prepared split; `per_seed`: each draws its own from the pool, stacked on a leading model
    dimension."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if protocol == "official":
        return splits, [official_record(splits, split_seed)] * len(seeds)
    pool = pooled(splits)
    drawn = [seed_split(pool, seed, split_seed) for seed in seeds]
    return stacked([tensors for tensors, _ in drawn]), [record for _, record in drawn]


def job_splits(
    splits: dict[str, torch.Tensor], protocol: str, split_seed: int, seeds: list[int], tuning_seeds: list[int]
) -> tuple[dict[str, torch.Tensor], list[dict], dict[str, torch.Tensor], list[dict]]:
    """-> (the tuning splits and their records, the seeds' splits and theirs), each as `drawn_splits` gives them:
    `tuning_seeds` (covbench.config.tuning_seeds: one under `official`, tune.splits under `per_seed`) draw theirs
    as the grid's seeds do."""
    return (
        *drawn_splits(splits, protocol, split_seed, tuning_seeds),
        *drawn_splits(splits, protocol, split_seed, seeds),
    )
