# The tuning records themselves come from rule `train` (one job tunes, then trains, each grid cell).
rule tune_summary:
    input:
        all_tuning_records(),
    output:
        chosen="results/tune/chosen.parquet",
        profile="results/tune/lambda_profile.parquet",
    log:
        "results/logs/tune_summary/tune_summary.log",
    script:
        "../scripts/tune_summary.py"
