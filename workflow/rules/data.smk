rule download:
    output:
        "results/data/raw/{file}",
    params:
        mirror=config["data"]["mirror"],
    log:
        "results/logs/download/{file}.log",
    script:
        "../scripts/download.py"


# A few seconds each, and every training job waits on one: ahead of them, or the scheduler may leave a dataset
# unprepared while it trains the other (its first run prepared MNIST 12 minutes in, after every cat/not-cat job).
rule prepare:
    priority: 2
    input:
        lambda wildcards: expand("results/data/raw/{file}", file=RAW_FILES[wildcards.dataset]),
    output:
        "results/data/{dataset}.pt",
    params:
        sizes=lambda wildcards: {k: config["datasets"][wildcards.dataset].get(k) for k in ("train_size", "val_size", "test_size")},
        seed=config["data"]["split_seed"],
    log:
        "results/logs/prepare/{dataset}.log",
    script:
        "../scripts/prepare.py"


# On a cluster, compute nodes often have no internet: download on the submitting host.
localrules:
    download,
