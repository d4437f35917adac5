"""Fair hyperparameter selection (docs/design.md#tuning): the same budget for every (dataset, method, depth).

Every method tries the same log-spaced learning rates of its optimizer's range; a method with an auxiliary
hyperparameter (covariance's lambda, deep supervision's weight) pairs each learning rate with one value of a
log-spaced grid in a seeded random order (a Latin hypercube on log scales), so it gets no extra trials.

Trials are chosen by successive halving (Jamieson & Talwalkar 2016): all trials train together as one batched
model (tuning seed, train split) to the first rung's epoch, the best 1/eta by validation cross-entropy go on
to the next rung, and so on; the trial with the lowest validation loss at the last rung wins. A trial's validation
loss is that of its best checkpoint so far (the lowest over its epochs, docs/design.md#best-checkpoint): a net that
learned and then overfit the 168 cat/not-cat images is scored where it was best, not where it ended (trials that
collapsed to the class prior rank after those that learned, and a rung promotes the collapsed ones by learning rate: see
`ranking`). Survivors continue where they stopped, so a rung costs only its extra epochs. Two epochs cannot tell a
method that starts on a plateau (a sigmoid net at chance for several epochs before it learns) from one that never
learns; later rungs can. Selection is on loss, not accuracy: at depth many trials sit at chance accuracy, where an
accuracy argmax picks noise. A diverged or non-finite trial scores +inf; ties go to the smaller learning
rate. Test data is never given to the trials.

Where each seed draws its own split (per_seed, cat/not-cat), a trial trains on K tuning splits, one per tuning seed
(covbench.config.tuning_seeds), each model with its seed's split, initialisation and data order, trials x K batched
as one model; a trial's score is the mean of its K best validation losses (+inf if any diverged or is non-finite),
it collapsed if most of its models did. Why: one split's 41 validation images give a mean cross-entropy with a
standard error of 0.08-0.16 nats, the whole gap between a net that learned and the constant predictor. With one
split (official) a trial is one model, as before.

A method that contains another (a covariance variant is its base at lambda = 0, deep supervision at weight 0) is
tuned nested in it when the base's tuning record is given (`nested_grid`; docs/design.md#nested-tuning, Choi et al.
2019): the base's chosen learning rate and its neighbours on the base's grid, crossed with the config's `tune.nested`
values of its hyperparameter, the first of which is 0. The trials share the base's tuning seeds and splits, so the
initial weights, batches and data are the base's, and the incumbent (base lr, value 0) is the base's chosen trial
itself, computed again (on one CPU the same numbers; the optimizers update each batched model on its own slices); no
rung cuts it. So the choice is never worse than the base's (`check_inclusion`, run over every record by tune_summary). A
small positive first value would not do: some trajectories are chaotic, and cat/not-cat relu_he_covariance at depth 2
and lambda 1e-4 collapsed where its base learned.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from covbench import atomic
from covbench.config import AUX_HYPERPARAMETER, METHOD_DEFAULTS
from covbench.data.splits import is_per_model
from covbench.training.collapse import COLLAPSED_FRACTION, class_prior_entropy, collapsed
from covbench.training.state import select_models
from covbench.training.train import train_until

NO_LOGGING = 1 << 62  # a log_every no trial reaches
# How much worse than its base's a nested method's chosen validation loss may be (relative): none on one CPU, where the
# incumbent repeats the base's numbers; jobs run on CPUs that sum in another order differ in the last digits. Beyond it
# the nesting is broken.
INCLUSION_TOLERANCE = 0.01


class InclusionError(ValueError):
    pass


@dataclass(frozen=True)
class Search:
    """What every rung of one tuning trains: the tuning splits (no test data), the method's spec and hyperparameters at
    one depth, the tuning settings, the tuning seeds (one per split where the splits are per model) and the device."""

    splits: dict[str, torch.Tensor]
    spec: dict
    hp: dict
    depth: int
    tune: dict
    seeds: list[int]
    device: str


def log_grid(low: float, high: float, n: int) -> list[float]:
    if n == 1:
        return [math.sqrt(low * high)]
    return [float(v) for v in np.geomspace(low, high, n)]


def lr_range(spec: dict, tune: dict) -> list[float]:
    """Each optimizer searches its own range (Adam's step sizes are not SGD's)."""
    return tune["lr"][spec.get("optimizer", METHOD_DEFAULTS["optimizer"])]


def trial_grid(spec: dict, tune: dict) -> list[dict]:
    """The trials of one method: [{"lr": ..., <aux hyperparameter>: ...}] * tune["trials"], lr ascending."""
    n = tune["trials"]
    trials = [{"lr": lr} for lr in log_grid(*lr_range(spec, tune), n)]
    name = AUX_HYPERPARAMETER.get(spec["aux"])
    if name and name not in spec:  # a value given in the method's config is fixed, not tuned
        values = log_grid(*tune[name], n)
        order = np.random.default_rng(tune["seed"]).permutation(n)
        for trial, i in zip(trials, order):
            trial[name] = values[i]
    return trials


def nested_grid(spec: dict, tune: dict, base: dict) -> tuple[list[dict], int]:
    """The trials of a method nested in its base (`base`: the base's tuning record), lr ascending then the
    hyperparameter ascending, and the position of the incumbent (the base's lr with the first value, 0: the base itself)."""
    name = AUX_HYPERPARAMETER[spec["aux"]]
    base_lrs = sorted({trial["lr"] for trial in base["trials"]})
    at = base_lrs.index(base["chosen"]["lr"])
    values = tune["nested"][name]
    trials = [{"lr": lr, name: value} for lr in base_lrs[max(at - 1, 0) : at + 2] for value in values]
    return trials, trials.index({"lr": base["chosen"]["lr"], name: values[0]})


def lambda_profile(trials: list[dict], name: str) -> list[dict]:
    """Per value of the nested hyperparameter, its best trial as selection ranks them (`ranking`): diverged or
    non-finite last, then the furthest rung, the ones that learned before the collapsed, the lowest validation loss,
    the smaller lr: so the chosen trial is its value's best. -> {name, lr, rung, val_loss, val_accuracy, collapsed,
    diverged}."""
    profile = []
    for value in sorted({t[name] for t in trials}):
        best = min(
            (t for t in trials if t[name] == value),
            key=lambda t: (
                t["diverged"] or not math.isfinite(t["val_loss"]),
                -t["rung"],
                t["collapsed"],
                t["val_loss"] if math.isfinite(t["val_loss"]) else math.inf,
            ),
        )
        profile.append(
            {name: value, **{k: best[k] for k in ("lr", "rung", "val_loss", "val_accuracy", "collapsed", "diverged")}}
        )
    return profile


def rung_sizes(trials: int, rungs: int, eta: int) -> list[int]:
    """How many trials train in each rung: all of them, then ceil(1/eta) of the previous rung's."""
    sizes = [trials]
    for _ in range(rungs - 1):
        sizes.append(math.ceil(sizes[-1] / eta))
    return sizes


def budget_epochs(trials: int, rung_epochs: list[int], eta: int) -> int:
    """Trial-epochs one cell spends on tuning (diverged trials stop early and spend less)."""
    starts = [0, *rung_epochs[:-1]]
    return sum(
        n * (end - start) for n, start, end in zip(rung_sizes(trials, len(rung_epochs), eta), starts, rung_epochs)
    )


def ranking(
    val_loss: np.ndarray, diverged: np.ndarray, collapsed: np.ndarray, plateau: np.ndarray | None = None
) -> np.ndarray:
    """Trial positions best first: lowest validation loss among the trials that learned, then the collapsed
    ones (training loss still at the class-prior entropy), then the diverged or non-finite; ties to the smaller
    learning rate (trials are in ascending lr order and the sorts are stable).

    Why collapsed trials come after the others: on cat/not-cat's 41 validation images, a network that predicts
    the majority class for every image scores a validation cross-entropy (about 0.64) below that of any network
    that learned (0.7 to 1.7, as they grow confident), so loss alone would choose the networks that learned
    nothing: they score 0.34 on the test split, where the classes are the other way round.

    A rung that promotes gives `plateau`: the collapsed trials whose validation loss is still near the class-prior
    entropy. They rank first among the collapsed by learning rate, largest first, not by loss: on the plateau
    every validation loss is the prior entropy plus noise, and the least-moved network (the smallest lr) scores
    best by a hair, so loss would promote exactly the trials least able to leave the plateau before the last
    rung. (A sigmoid + Xavier net of depth 4 on 8k MNIST images sits at chance until epoch 7 at lr 0.19 and is
    at 83 % validation accuracy at epoch 10; ranked by loss at epochs 2 and 5 it was cut, and the choice never
    learned.) The final choice, and collapsed trials off the plateau (too large a step), rank by loss.
    """
    scores = np.where(diverged | ~np.isfinite(val_loss), np.inf, val_loss)
    tier = np.where(np.isfinite(scores), collapsed.astype(int), 2)
    if plateau is not None:
        on_plateau = (tier == 1) & plateau
        scores = np.where(on_plateau, -np.arange(len(scores)), scores)
        tier = np.where((tier == 1) & ~on_plateau, 1.5, tier)
    return np.lexsort((scores, tier))


def edge(chosen: float, values: list[float]) -> str | None:
    """'low' or 'high' when the choice is the smallest or largest value searched (the range may be wrong)."""
    if len(values) < 2:
        return None
    return "low" if chosen == min(values) else "high" if chosen == max(values) else None


def is_nested(spec: dict, base: dict | None) -> bool:
    """Whether the method tunes nested in its base: a base record is given and its aux hyperparameter is not fixed."""
    return base is not None and AUX_HYPERPARAMETER.get(spec["aux"]) not in (None, *spec)


def survivors(order: np.ndarray, size: int, alive: list[int], incumbent: int | None) -> list[int]:
    """Positions in `alive` of the `size` best by `order` (a rung's ranking), ascending so still in lr order; the
    incumbent, when there is one, always goes on (in the last place kept)."""
    kept = [int(i) for i in order[:size]]
    if incumbent is not None and alive.index(incumbent) not in kept:
        kept[-1] = alive.index(incumbent)
    return sorted(kept)


def split_count(splits: dict[str, torch.Tensor]) -> int:
    """K, the tuning splits every trial trains on: the leading dimension of per-model splits, else 1 (one split)."""
    return splits["y_train"].shape[0] if is_per_model(splits) else 1


def model_rows(positions: list[int], k: int) -> list[int]:
    """The batched models of the trials at `positions`: a trial's K models sit side by side (trial-major)."""
    return [p * k + i for p in positions for i in range(k)]


def train_rung(search: Search, trials: list[dict], alive: list[int], state, until: int):
    """The `alive` trials as one batched model, each trial once per tuning seed (on that seed's split where the
    splits are per model), from `state` to epoch `until`."""
    splits, seeds, k = search.splits, search.seeds, len(search.seeds)
    trial_spec = dict(search.spec)
    for name in trials[0]:
        if name != "lr":
            trial_spec[name] = [trials[t][name] for t in alive for _ in seeds]
    if is_per_model(splits):
        splits = {key: tensor.repeat(len(alive), *[1] * (tensor.dim() - 1)) for key, tensor in splits.items()}
    # no per-layer statistics beyond step 0: nothing reads a trial's, and at depth they cost time
    trial_hp = {
        **search.hp,
        "epochs": search.tune["rung_epochs"][-1],
        "lr": [trials[t]["lr"] for t in alive for _ in range(k)],
        "log_every": NO_LOGGING,
    }
    return train_until(splits, trial_spec, trial_hp, search.depth, seeds * len(alive), until, state, search.device)


def prior_entropies(splits: dict[str, torch.Tensor]) -> np.ndarray:
    """(K,) the class-prior entropy of each tuning split's train part (the collapse line of its models)."""
    labels = splits["y_train"] if is_per_model(splits) else splits["y_train"].unsqueeze(0)
    return np.array([class_prior_entropy(y) for y in labels])


def rung_outcome(result, prior_entropy: np.ndarray, rung: int) -> list[dict]:
    """What each of a rung's batched models reached, in their order: validation loss at its best checkpoint so far
    (docs/design.md#best-checkpoint), whether it diverged or collapsed (`prior_entropy`: each model's split's)."""
    last = result.epochs.groupby("model").tail(1).set_index("model").sort_index()
    diverged = result.epochs.groupby("model").diverged.any().sort_index().to_numpy()
    val_loss = result.best_val_loss.astype(float)
    at_best = result.epochs.set_index(["model", "epoch"]).val_accuracy
    collapsed_models = collapsed(last.train_loss.to_numpy(float), prior_entropy)
    reached = []
    for m in range(len(val_loss)):
        best_epoch = int(result.best_epoch[m])
        reached.append(
            {
                "rung": rung + 1,
                "epochs": int(last.epoch.iloc[m]),
                "best_epoch": best_epoch,
                "val_loss": float(val_loss[m]),
                "val_accuracy": float(at_best.get((m, best_epoch), np.nan)),
                "last_val_loss": float(last.val_loss.iloc[m]),
                "train_loss": float(last.train_loss.iloc[m]),
                "diverged": bool(diverged[m]),
                "collapsed": bool(collapsed_models[m]),
            }
        )
    return reached


def trial_outcome(models: list[dict]) -> dict:
    """One trial's record from its K models' (one per tuning split): validation loss and accuracy, last validation
    and training loss are means over the K (the per-split ones kept in `val_losses`, `val_accuracies`,
    `best_epochs`); it diverged if any model did (ranking then scores it +inf), collapsed if most did; `epochs` is
    the furthest any got, `best_epoch` the median of the K (rounded down). With K = 1, the model's own record."""
    best_epochs = [m["best_epoch"] for m in models]
    return {
        "rung": models[0]["rung"],
        "epochs": max(m["epochs"] for m in models),
        "best_epoch": int(np.median(best_epochs)),
        **{key: float(np.mean([m[key] for m in models])) for key in ("val_loss", "val_accuracy", "last_val_loss")},
        "train_loss": float(np.mean([m["train_loss"] for m in models])),
        "diverged": any(m["diverged"] for m in models),
        "collapsed": 2 * sum(m["collapsed"] for m in models) > len(models),
        "val_losses": [m["val_loss"] for m in models],
        "val_accuracies": [m["val_accuracy"] for m in models],
        "best_epochs": best_epochs,
    }


def successive_halving(search: Search, trials: list[dict], incumbent: int | None) -> tuple[int, dict[int, dict], float]:
    """Every rung in turn, the best 1/eta going on, each trial trained once per tuning seed and ranked on its mean:
    (the winning trial, trial -> what it reached at its last rung, the last rung's wall seconds)."""
    tune, rung_epochs, k = search.tune, search.tune["rung_epochs"], len(search.seeds)
    prior_entropy = prior_entropies(search.splits)
    alive = list(range(len(trials)))  # trial indices still training, in ascending lr order
    reached = {}
    state, order = None, None
    for rung, (size, until) in enumerate(zip(rung_sizes(len(trials), len(rung_epochs), tune["eta"]), rung_epochs)):
        if rung:
            positions = survivors(order, size, alive, incumbent)
            alive = [alive[i] for i in positions]
            state = select_models(state, model_rows(positions, k))
        result = train_rung(search, trials, alive, state, until)
        state = result.state
        models = rung_outcome(result, np.tile(prior_entropy, len(alive)), rung)
        outcomes = [trial_outcome(models[at : at + k]) for at in range(0, len(models), k)]
        reached.update(zip(alive, outcomes))
        val_loss, diverged, collapsed = (
            np.array([o[key] for o in outcomes]) for key in ("val_loss", "diverged", "collapsed")
        )
        promoting = rung + 1 < len(rung_epochs)
        plateau = val_loss <= float(np.mean(prior_entropy)) / COLLAPSED_FRACTION if promoting else None
        order = ranking(val_loss, diverged, collapsed, plateau)
    return alive[int(order[0])], reached, result.wall_s


def nesting_record(spec: dict, tune: dict, base: dict, trials: list[dict], incumbent: int) -> dict:
    """A nested record's keys: its base, incumbent and budget ratio (`nested`), and its `lambda_profile`."""
    budget = budget_epochs(len(trials), tune["rung_epochs"], tune["eta"])
    return {
        "nested": {
            "base": base["method"],
            "base_lr": base["chosen"]["lr"],
            "base_val_loss": base["val_loss"],
            "base_collapsed": base["collapsed"],
            "incumbent": trials[incumbent],
            "budget_ratio": budget / base["budget_epochs"],
        },
        "lambda_profile": lambda_profile(trials, AUX_HYPERPARAMETER[spec["aux"]]),
    }


def select(
    splits: dict[str, torch.Tensor],
    spec: dict,
    hp: dict,
    depth: int,
    tune: dict,
    device: str = "cpu",
    base: dict | None = None,
    split_records: list[dict] | None = None,
) -> dict:
    """Successive halving over the method's trials; with `base` (its base's tuning record) nested in the base.
    `splits`: one split (tune.seed trains every trial on it), or K per-model tuning splits
    (covbench.data.splits.job_splits) with `split_records`, whose seeds are the tuning seeds: each split's model
    starts from its seed's initialisation and data order. The record names the splits (`tuning_splits`)."""
    nested = is_nested(spec, base)
    seeds = [record["seed"] for record in split_records] if is_per_model(splits) else [tune["seed"]]
    if nested and base["tuning_splits"] != split_records:
        raise ValueError(
            f"{spec['aux']} at depth {depth} tunes nested in {base['method']}, whose tuning splits "
            f"{split_names(base['tuning_splits'])} are not its own {split_names(split_records)}: tune the base again "
            f"on this data"
        )
    trials, incumbent = nested_grid(spec, tune, base) if nested else (trial_grid(spec, tune), None)
    rung_epochs, eta = tune["rung_epochs"], tune["eta"]
    no_test = {k: v for k, v in splits.items() if not k.endswith("_test")}
    search = Search(no_test, spec, hp, depth, tune, seeds, device)
    best, reached, wall_s = successive_halving(search, trials, incumbent)
    chosen = trials[best]
    trials = [{**t, **reached[i]} for i, t in enumerate(trials)]
    return {
        "chosen": chosen,
        "selected_on": "best_val_loss",
        "collapsed": reached[best]["collapsed"],
        "val_loss": reached[best]["val_loss"],
        "val_accuracy": reached[best]["val_accuracy"],
        "lr_edge": edge(chosen["lr"], [t["lr"] for t in (base["trials"] if nested else trials)]),
        "aux_edge": next((edge(chosen[k], [t[k] for t in trials]) for k in chosen if k != "lr"), None),
        "lr_range": list(lr_range(spec, tune)),
        "budget": len(trials),
        "rung_epochs": list(rung_epochs),
        "eta": eta,
        "budget_epochs": budget_epochs(len(trials), rung_epochs, eta),
        "tune_seed": tune["seed"],
        "tune_seeds": seeds,
        "tuning_splits": split_records,
        "wall_s": wall_s,
        **(nesting_record(spec, tune, base, trials, incumbent) if nested else {}),
        "trials": trials,
    }


def split_names(records: list[dict] | None) -> list[str] | None:
    """Tuning splits as an error names them: the first 12 hex digits of each digest (the protocol where none)."""
    return records and [record.get("sha256", record["protocol"])[:12] for record in records]


def apply_choice(spec: dict, hp: dict, chosen: dict) -> tuple[dict, dict]:
    """The final runs' spec and hyperparameters with the tuned values (a record's "chosen") filled in."""
    hp = {**hp, "lr": chosen["lr"]}
    spec = {**spec, **{k: v for k, v in chosen.items() if k != "lr"}}
    return spec, hp


def overfit_trials(record: dict) -> int:
    """Other trials that fit the training set more closely than the choice yet ended with a higher validation loss:
    why a choice can sit on the low end of its range (on 168 cat/not-cat images every fitting net overfits)."""
    chosen = max((t for t in record["trials"] if t["lr"] == record["chosen"]["lr"]), key=lambda t: t["rung"])
    if chosen["diverged"]:
        return 0
    return sum(
        not t["diverged"]
        and t is not chosen
        and t["train_loss"] < chosen["train_loss"]
        and t["val_loss"] > chosen["val_loss"]
        for t in record["trials"]
    )


def check_inclusion(record: dict, base: dict) -> None:
    """A nested method's choice is no worse than its base's (docs/design.md#nested-tuning): one that learned beats a
    collapsed one, and within the same kind its validation loss is at most (1 + INCLUSION_TOLERANCE) times the
    base's."""
    if base["collapsed"] and not record["collapsed"]:
        return
    if record["collapsed"] == base["collapsed"] and record["val_loss"] <= base["val_loss"] * (1 + INCLUSION_TOLERANCE):
        return
    kind = " collapsed where its base learned, and" if record["collapsed"] else ""
    raise InclusionError(
        f"inclusion check failed for {record['dataset']}, {record['method']}, depth {record['depth']}: its chosen "
        f"trial{kind} has validation loss {record['val_loss']:.4g} against {base['val_loss']:.4g} for its base "
        f"{base['method']} (tolerance {INCLUSION_TOLERANCE:.0%}); the nested tuning (tune.nested_grid) is broken"
    )


PROFILE_COLUMNS = [
    "dataset",
    "method",
    "base",
    "depth",
    "hyperparameter",
    "value",
    "lr",
    "rung",
    "val_loss",
    "val_accuracy",
    "collapsed",
    "diverged",
    "chosen",
    "base_val_loss",
    "base_val_accuracy",
]


def profile_frame(records: list[dict]) -> pd.DataFrame:
    """The lambda profile of every nested record, one row per value tried (docs/design.md#the-best-shot, covariance's
    best shot), with the base's chosen validation loss and accuracy beside it."""
    by_cell = {(r["dataset"], r["method"], r["depth"]): r for r in records}
    rows = []
    for record in records:
        if "nested" not in record:
            continue
        base = by_cell[record["dataset"], record["nested"]["base"], record["depth"]]
        name = next(k for k in record["chosen"] if k != "lr")
        for point in record["lambda_profile"]:
            rows.append(
                {
                    "dataset": record["dataset"],
                    "method": record["method"],
                    "base": base["method"],
                    "depth": record["depth"],
                    "hyperparameter": name,
                    "value": point[name],
                    **{k: point[k] for k in ("lr", "rung", "val_loss", "val_accuracy", "collapsed", "diverged")},
                    "chosen": point[name] == record["chosen"][name] and point["lr"] == record["chosen"]["lr"],
                    "base_val_loss": base["val_loss"],
                    "base_val_accuracy": base["val_accuracy"],
                }
            )
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def summarize(chosen_paths: list[str], out_path: str, profile_path: str) -> None:
    """results/tune/chosen.parquet: one row per (dataset, method, depth) with the chosen values, after the inclusion
    check of every nested record against its base's; and the nested records' lambda profiles (profile_frame)."""
    rows = []
    records = [
        atomic.read_json(path, required=("dataset", "method", "depth", "chosen", "trials")) for path in chosen_paths
    ]
    by_cell = {(r["dataset"], r["method"], r["depth"]): r for r in records}
    for record in records:
        if "nested" in record:
            check_inclusion(record, by_cell[record["dataset"], record["nested"]["base"], record["depth"]])
    for record in records:
        rows.append(
            {
                "dataset": record["dataset"],
                "method": record["method"],
                "depth": record["depth"],
                "lr": record["chosen"]["lr"],
                "cov_lambda": record["chosen"].get("cov_lambda", np.nan),
                "aux_weight": record["chosen"].get("aux_weight", np.nan),
                "selected_on": record["selected_on"],
                "val_loss": record["val_loss"],
                "val_accuracy": record["val_accuracy"],
                "lr_edge": record["lr_edge"] or "",
                "aux_edge": record["aux_edge"] or "",
                "lr_low": record["lr_range"][0],
                "lr_high": record["lr_range"][1],
                "trials": record["budget"],
                "tune_epochs": record["rung_epochs"][-1],
                "budget_epochs": record["budget_epochs"],
                "trials_diverged": sum(t["diverged"] for t in record["trials"]),
                "collapsed": record["collapsed"],
                "trials_overfit": overfit_trials(record),
                "nested_in": record.get("nested", {}).get("base", ""),
                "budget_ratio": record.get("nested", {}).get("budget_ratio", np.nan),
            }
        )
    atomic.write_parquet(pd.DataFrame(rows), out_path)
    atomic.write_parquet(profile_frame(records), profile_path)
