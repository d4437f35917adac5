from covbench.report.tables import TABLES

# Inputs made by other rules: the figures of rule-sets analysis and sweep, and the sanity checks (Nielsen's chapter
# 5, the course's cat classifiers). The sweep's figure only where config `lambda_sweep` sweeps a cell (the paper says
# so otherwise).
PAPER_FIGURES = [
    "speed_at_init",
    "speed_over_training",
    "vanishing_index",
    "accuracy_vs_depth",
    "loss_curves",
    "saturation",
    "accuracy_heatmap",
    "performance_profile",
    "nielsen_speed",
    "force_vs_gradient",
    "active_groups",
    "probe_accuracy",
    "accuracy_vs_length",
    "hidden_grad_over_time",
    "temporal_vanishing_index",
    "lambda_profile",
    "forest",
]
if config["lambda_sweep"]["variants"] and config["lambda_sweep"]["depths"]:
    PAPER_FIGURES.append("lambda_sweep")
NIELSEN_TABLE = "results/nielsen/speed_at_init.tex"
COURSE_TABLE = "results/course/accuracy_summary.tex"


rule compare:
    input:
        run_summary="results/aggregate/run_summary.parquet",
        # a variant that chose lambda = 0 is its base (docs/design.md#identity-and-collapse)
        chosen="results/tune/chosen.parquet",
    output:
        comparisons="results/aggregate/comparisons.parquet",
        remedies="results/aggregate/remedies.parquet",  # the best remedy of each cell, decided once
    log:
        "results/logs/compare/compare.log",
    params:
        specs={**GRID_SPECS, **RECURRENT_SPECS},
        settings=config["compare"],
        # declared before any run: a dataset split per seed gets the corrected resampled t-test
        # (docs/design.md#the-corrected-test)
        split_protocols={
            dataset: config["datasets"][dataset].get("split", "official") for dataset in DATASETS + RECURRENT_DATASETS
        },
    script:
        "../scripts/compare.py"


rule tables:
    input:
        method_summary="results/aggregate/method_summary.parquet",
        comparisons="results/aggregate/comparisons.parquet",
        chosen="results/tune/chosen.parquet",
    output:
        **{kind: f"results/tables/{kind}.tex" for kind in TABLES},
    log:
        "results/logs/tables/tables.log",
    params:
        specs=GRID_SPECS,
        datasets=DATASETS,
        recurrent_specs=RECURRENT_SPECS,
        recurrent_datasets=RECURRENT_DATASETS,
    script:
        "../scripts/tables.py"


rule macros:
    input:
        run_summary="results/aggregate/run_summary.parquet",
        method_summary="results/aggregate/method_summary.parquet",
        comparisons="results/aggregate/comparisons.parquet",
        chosen="results/tune/chosen.parquet",
        sweep_summary="results/sweep/summary.parquet",
        layer_summary="results/aggregate/layer_summary.parquet",
        probe_summary="results/aggregate/probe_summary.parquet",
        lambda_profile="results/tune/lambda_profile.parquet",
        course_summary="results/course/accuracy_summary.parquet",
    output:
        "results/paper/macros.tex",
    log:
        "results/logs/macros/macros.log",
    params:
        config=config,
        figure_rules=lambda wildcards: {
            path.removeprefix("results/").removesuffix(".pdf").removesuffix(".tex"): producing_rule(path)
            for path in [*paper_figure_files(), NIELSEN_TABLE, COURSE_TABLE]
        },
    script:
        "../scripts/macros.py"


rule paper:
    input:
        tex="paper/main.tex",
        bib="paper/references.bib",
        macros="results/paper/macros.tex",
        tables=expand("results/tables/{kind}.tex", kind=TABLES),
        figures=paper_figure_files(),
        nielsen=NIELSEN_TABLE,
        course=COURSE_TABLE,
    output:
        "results/paper/main.pdf",
    log:
        "results/logs/paper/paper.log",
    script:
        "../scripts/paper.py"
