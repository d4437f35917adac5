# Downloads and preparation take seconds, and every training job waits on them: they run ahead of training jobs,
# or the scheduler may leave a dataset unprepared while it trains the other. A rule's priority does not reach the
# jobs it depends on, so both rules carry it (with it on `prepare` alone, MNIST's files were still fetched one at a
# time between cat/not-cat training jobs and MNIST was prepared 14 minutes in).
rule download:
    output:
        "results/data/raw/{file}",
    log:
        "results/logs/download/{file}.log",
    priority: 2
    params:
        mirror=config["data"]["mirror"],
    script:
        "../scripts/download.py"


rule prepare:
    input:
        lambda wildcards: expand("results/data/raw/{file}", file=RAW_FILES[wildcards.dataset]),
    output:
        "results/data/{dataset}.pt",
    log:
        "results/logs/prepare/{dataset}.log",
    priority: 2
    params:
        sizes=lambda wildcards: {
            k: config["datasets"][wildcards.dataset].get(k) for k in ("train_size", "val_size", "test_size")
        },
        seed=config["data"]["split_seed"],
    script:
        "../scripts/prepare.py"


# On a cluster, compute nodes often have no internet: download on the submitting host.
localrules:
    download,
