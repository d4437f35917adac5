rule train:
    input:
        data="results/data/{dataset}.pt",
        chosen="results/tune/{dataset}/{method}/depth{depth}.json",
    output:
        **{name.split(".")[0]: seed_files(name) for name in RUN_FILES},
    params:
        spec=lambda wildcards: method_spec(config, wildcards.method),
        hp=lambda wildcards: hyperparameters(config, wildcards.dataset),
        seeds=SEEDS,
        device=config["train"]["device"],
        checkpoint_every_s=config["train"]["checkpoint_every_s"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/train/{dataset}/{method}/depth{depth}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}/depth{depth}.tsv"
    script:
        "../scripts/train.py"
