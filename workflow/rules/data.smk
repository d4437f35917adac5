# Downloads and preparation take seconds, and every training job waits on them: they run ahead of training jobs,
# or the scheduler may leave a dataset unprepared while it trains the other. A rule's priority does not reach the
# jobs it depends on, so both rules carry it (with it on `prepare` alone, MNIST's files were still fetched one at a
# time between cat/not-cat training jobs and MNIST was prepared 14 minutes in).
rule download:
    priority: 2
    output:
        "results/data/raw/{file}",
    params:
        mirror=config["data"]["mirror"],
    log:
        "results/logs/download/{file}.log",
    script:
        "../scripts/download.py"


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
