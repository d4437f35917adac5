# One job per (dataset, method): every depth in turn is tuned (the same trial budget for every method,
# docs/design.md#tuning), then trained for all seeds as one batched model with its choice. The depths share the
# process so the job starts Python, torch and the data once (src/covbench/training/job.py).
rule train:
    input:
        data="results/data/{dataset}.pt",
        base_tuned=lambda w: base_tuning(w.dataset, w.method, DEPTHS, GRID_SPECS, TRAINED_METHODS),
    output:
        **{name.split(".")[0]: method_files(name, DEPTHS) for name in RUN_FILES},
        tuned=expand("results/tune/{{dataset}}/{{method}}/depth{depth}.json", depth=DEPTHS),
    log:
        "results/logs/train/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}.tsv"
    wildcard_constraints:
        dataset="|".join(DATASETS),
        method="|".join(TRAINED_METHODS) or "(?!)",  # not the methods a rule of workflow/rules/methods/ provides
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=180,
    params:
        settings=lambda wildcards: job_settings(wildcards.dataset, wildcards.method),
    script:
        "../scripts/train.py"


# The recurrent track (docs/design.md#the-recurrent-track): the same job with sequence lengths for depths; each length's
# noise-padded sequences are made in the process from the dataset's images (src/covbench/data/sequences.py). The LSTM
# and GRU jobs are the grid's longest (5-6 minutes): started first, they do not leave one core busy alone at the end.
use rule train as train_recurrent with:
    input:
        data="results/data/{dataset}.pt",
        base_tuned=lambda w: base_tuning(w.dataset, w.method, LENGTHS, RECURRENT_SPECS, RECURRENT_METHODS),
    output:
        **{name.split(".")[0]: method_files(name, LENGTHS) for name in RUN_FILES},
        tuned=expand("results/tune/{{dataset}}/{{method}}/depth{depth}.json", depth=LENGTHS),
    log:
        "results/logs/train_recurrent/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/train_recurrent/{dataset}/{method}.tsv"
    wildcard_constraints:
        dataset="|".join(RECURRENT_DATASETS) or "(?!)",
        method="|".join(RECURRENT_METHODS) or "(?!)",
    priority: 1
    params:
        settings=lambda wildcards: job_settings(wildcards.dataset, wildcards.method, "recurrent"),
