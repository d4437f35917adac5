from covbench.analysis.aggregate import TABLES
from covbench.config import base_method

# The method the remedies are measured against (docs/design.md#methods-as-compositions: sigmoid + normal init).
BASELINE_METHOD = "baseline"

# figure -> report category and the tables it is drawn from; one rule per figure is generated below. A figure of
# every method takes comparisons: the verdicts name the best remedy it draws in colour.
FIGURES = {
    "forest": ("Outcomes", ["comparisons"]),
    "speed_at_init": ("Learning speed", ["layer_summary", "comparisons"]),
    "speed_over_training": ("Learning speed", ["layer_stats", "comparisons"]),
    "vanishing_index": ("Learning speed", ["method_summary", "comparisons"]),
    "saturation": ("Learning speed", ["layer_summary", "comparisons"]),
    "accuracy_vs_depth": ("Outcomes", ["method_summary", "comparisons"]),
    "accuracy_heatmap": ("Outcomes", ["method_summary"]),
    "loss_curves": ("Outcomes", ["epoch_curves", "comparisons"]),
    "performance_profile": ("Outcomes", ["method_summary", "comparisons"]),
    "force_vs_gradient": ("Mechanism", ["layer_summary"]),
    "active_groups": ("Mechanism", ["layer_summary"]),
    "probe_accuracy": ("Mechanism", ["probe_summary", "comparisons"]),
    "accuracy_vs_length": ("Long memories", ["method_summary", "comparisons"]),
    "hidden_grad_over_time": ("Long memories", ["layer_summary", "comparisons"]),
    "temporal_vanishing_index": ("Long memories", ["method_summary", "comparisons"]),
}
RECURRENT_FIGURES = ("accuracy_vs_length", "hidden_grad_over_time", "temporal_vanishing_index")
FIGURE_OPTIONS = {
    "forest": {"datasets": DATASETS + RECURRENT_DATASETS},  # both tracks' primary families
    "speed_over_training": {"covariance_methods": COVARIANCE_METHODS, "baseline": BASELINE_METHOD},
    "force_vs_gradient": {"covariance_methods": COVARIANCE_METHODS},
    "active_groups": {"covariance_methods": COVARIANCE_METHODS},
    "probe_accuracy": {
        "covariance_methods": COVARIANCE_METHODS,
        "baseline": BASELINE_METHOD,
        "bases": {v: base_method(v, GRID_SPECS) for v in COVARIANCE_METHODS},
    },
}


# Per-step statistics of every run at the deepest depth, for the speed-over-training figure.
DEEPEST_LAYER_STATS = expand(
    f"{RUN_DIR}/layer_stats.parquet", dataset=DATASETS, method=METHODS, depth=max(DEPTHS), seed=SEEDS
)
FIGURE_FILES = expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=["pdf", "png"])


rule aggregate:
    input:
        run=all_run_files("run.json"),
        epochs=all_run_files("epochs.parquet"),
        layer_stats=all_run_files("layer_stats.parquet"),
        probes=all_run_files("probes.parquet"),
    output:
        **{table: f"results/aggregate/{table}.parquet" for table in TABLES},
    log:
        "results/logs/aggregate/aggregate.log",
    params:
        thresholds={dataset: config["datasets"][dataset]["val_threshold"] for dataset in DATASETS + RECURRENT_DATASETS},
        # their runs must name the seed's split, and pairs share it (docs/design.md#pairs-share-their-data)
        per_seed_datasets=[d for d in DATASETS if config["datasets"][d].get("split", "official") == "per_seed"],
    script:
        "../scripts/aggregate.py"


for figure, (category, tables) in FIGURES.items():

    rule:
        name:
            f"figure_{figure}"
        input:
            **{t: DEEPEST_LAYER_STATS if t == "layer_stats" else f"results/aggregate/{t}.parquet" for t in tables},
        output:
            pdf=f"results/figures/{figure}.pdf",
            png=report(f"results/figures/{figure}.png", caption=f"../report/{figure}.rst", category=category),
        log:
            f"results/logs/figure_{figure}/{figure}.log",
        params:
            figure=figure,
            methods=sorted(config["methods"]),
            options={
                "datasets": RECURRENT_DATASETS if figure in RECURRENT_FIGURES else DATASETS,
                **FIGURE_OPTIONS.get(figure, {}),
            },
        script:
            "../scripts/figures.py"
