"""The cost estimate of a config (covbench.tools.cost): the work ratio between two configs scales measured job seconds."""

import pandas as pd
from conftest import merge

from covbench.tools.cost import _work, extrapolate, load_config


def write_benchmark(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"s": [seconds], "h:m:s": ["0:00:00"]}).to_csv(path, sep="\t", index=False)


def test_work_counts_examples_times_final_and_tuning_model_epochs():
    config = load_config([])
    mnist = config["datasets"]["mnist"]
    trials, rungs, eta = config["tune"]["trials"], mnist["tune_epochs"], config["tune"]["eta"]
    sizes = [trials]
    for _ in rungs[1:]:
        sizes.append(-(-sizes[-1] // eta))
    tuning = sum(n * (end - start) for n, start, end in zip(sizes, [0, *rungs[:-1]], rungs))
    assert _work(config, "mnist") == mnist["train_size"] * (len(config["grid"]["seeds"]) * mnist["epochs"] + tuning)
    assert _work(config, "smnist", 56) == 56 * _work(config, "smnist", 1)


def test_extrapolation_scales_each_job_by_its_work_ratio(tmp_path):
    reference = load_config([])
    target = merge(reference, {"datasets": {"mnist": {"train_size": 2 * reference["datasets"]["mnist"]["train_size"]}}})
    benchmarks = tmp_path / "benchmarks"
    write_benchmark(benchmarks / "train" / "mnist" / "baseline.tsv", 100.0)
    write_benchmark(benchmarks / "train" / "catvnoncat" / "baseline.tsv", 30.0)
    write_benchmark(benchmarks / "nielsen_train" / "hidden2.tsv", 7.0)
    jobs = extrapolate(reference, target, benchmarks).set_index(["rule", "dataset", "method"]).estimated_s
    assert jobs[("train", "mnist", "baseline")] == 200.0  # twice the examples
    assert jobs[("train", "catvnoncat", "baseline")] == 30.0  # unchanged
    assert jobs[("nielsen_train", "mnist", "hidden2")] == 7.0
    assert len(jobs) == 3  # jobs without a benchmark file are not invented
