# The tuning records themselves come from rule `train` (one job tunes, then trains, each grid cell).
rule tune_summary:
    input:
        expand("results/tune/{dataset}/{method}/depth{depth}.json", dataset=DATASETS, method=METHODS, depth=DEPTHS),
    output:
        "results/tune/chosen.parquet",
    log:
        "results/logs/tune_summary/tune_summary.log",
    script:
        "../scripts/tune_summary.py"
