# Covariance's best shot (docs/design.md#the-best-shot): each covariance variant of config `lambda_sweep`, at each of
# its depths, trains its base's tuned learning rate with every lambda of the log grid and every seed as one batched
# model (lambda = 0 is the base itself, in the same batch); the best lambda on validation meets lambda = 0 on test
# accuracy (src/covbench/training/lambda_sweep.py, src/covbench/analysis/sweep.py).
SWEEP = config["lambda_sweep"]
SWEEP_BASES = lambda_sweep.bases(config)
SWEEP_CELLS = expand(
    "results/sweep/{dataset}/{variant}/depth{depth}.parquet",
    dataset=DATASETS,
    variant=SWEEP["variants"],
    depth=SWEEP["depths"],
)


rule lambda_sweep:
    input:
        data="results/data/{dataset}.pt",
        # the base's tuning record (rule train): its learning rate is the one every lambda trains with
        tuned=lambda w: f"results/tune/{w.dataset}/{SWEEP_BASES[w.variant]}/depth{w.depth}.json",
    output:
        "results/sweep/{dataset}/{variant}/depth{depth}.parquet",
    log:
        "results/logs/lambda_sweep/{dataset}/{variant}/depth{depth}.log",
    benchmark:
        "results/benchmarks/lambda_sweep/{dataset}/{variant}/depth{depth}.tsv"
    wildcard_constraints:
        variant="|".join(SWEEP["variants"]) or "(?!)",
    # 35 batched models, 2-2.5 minutes: started as soon as their base is tuned, not left for the end of the grid
    priority: 1
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=180,
    params:
        base=lambda wildcards: SWEEP_BASES[wildcards.variant],
        # the variant's job settings with the sweep's seeds
        settings=lambda wildcards: job_settings(wildcards.dataset, wildcards.variant, seeds=tuple(SWEEP["seeds"])),
        lambdas=SWEEP["lambdas"],
    script:
        "../scripts/lambda_sweep.py"


rule lambda_sweep_summary:
    input:
        SWEEP_CELLS,
    output:
        runs="results/sweep/lambda_sweep.parquet",
        summary="results/sweep/summary.parquet",
    log:
        "results/logs/lambda_sweep_summary/lambda_sweep_summary.log",
    params:
        settings=config["compare"],
    script:
        "../scripts/lambda_sweep_summary.py"


rule figure_lambda_sweep:
    input:
        sweep_runs="results/sweep/lambda_sweep.parquet",
        sweep_summary="results/sweep/summary.parquet",
    output:
        pdf="results/figures/lambda_sweep.pdf",
        png=report(
            "results/figures/lambda_sweep.png", caption="../report/lambda_sweep.rst", category="Covariance's best shot"
        ),
    log:
        "results/logs/figure_lambda_sweep/lambda_sweep.log",
    params:
        figure="lambda_sweep",
        methods=sorted(config["methods"]),
        options={},
    script:
        "../scripts/figures.py"


rule figure_lambda_profile:
    input:
        lambda_profile="results/tune/lambda_profile.parquet",
    output:
        pdf="results/figures/lambda_profile.pdf",
        png=report(
            "results/figures/lambda_profile.png",
            caption="../report/lambda_profile.rst",
            category="Covariance's best shot",
        ),
    log:
        "results/logs/figure_lambda_profile/lambda_profile.log",
    params:
        figure="lambda_profile",
        methods=sorted(config["methods"]),
        options={},
    script:
        "../scripts/figures.py"
