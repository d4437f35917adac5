rule tune:
    input:
        data="results/data/{dataset}.pt",
    output:
        "results/tune/{dataset}/{method}/depth{depth}.json",
    params:
        spec=lambda wildcards: method_spec(config, wildcards.method),
        hp=lambda wildcards: hyperparameters(config, wildcards.dataset),
        tune=lambda wildcards: tune_settings(config, wildcards.dataset),
        device=config["train"]["device"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/tune/{dataset}/{method}/depth{depth}.log",
    benchmark:
        "results/benchmarks/tune/{dataset}/{method}/depth{depth}.tsv"
    script:
        "../scripts/tune.py"


rule tune_summary:
    input:
        expand("results/tune/{dataset}/{method}/depth{depth}.json", dataset=DATASETS, method=METHODS, depth=DEPTHS),
    output:
        "results/tune/chosen.parquet",
    log:
        "results/logs/tune_summary/tune_summary.log",
    script:
        "../scripts/tune_summary.py"
