# Nielsen's per-layer speed of learning (NNDL ch. 5), the paper's sanity check: one job per network, all
# seeds batched; then one tidy table, the speeds at initialization (table) and over training (figure).
NIELSEN_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


rule nielsen_train:
    input:
        **{key: f"results/data/raw/{name}" for key, name in NIELSEN_FILES.items()},
    output:
        "results/nielsen/hidden{hidden_layers}/layer_speed.parquet",
    log:
        "results/logs/nielsen_train/hidden{hidden_layers}.log",
    benchmark:
        "results/benchmarks/nielsen_train/hidden{hidden_layers}.tsv"
    wildcard_constraints:
        hidden_layers=r"\d+",
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=lambda wildcards: config["nielsen"],
        device=config["train"]["device"],
    script:
        "../scripts/nielsen_train.py"


rule nielsen_collect:
    input:
        lambda wildcards: expand(
            "results/nielsen/hidden{hidden_layers}/layer_speed.parquet",
            hidden_layers=config["nielsen"]["hidden_layers"],
        ),
    output:
        "results/nielsen/layer_speed.parquet",
    log:
        "results/logs/nielsen_collect/nielsen_collect.log",
    script:
        "../scripts/nielsen_collect.py"


rule nielsen_table:
    input:
        "results/nielsen/layer_speed.parquet",
    output:
        summary="results/nielsen/speed_at_init.parquet",
        tex="results/nielsen/speed_at_init.tex",
    log:
        "results/logs/nielsen_table/nielsen_table.log",
    script:
        "../scripts/nielsen_table.py"


rule nielsen_figure:
    input:
        "results/nielsen/layer_speed.parquet",
    output:
        pdf="results/figures/nielsen_speed.pdf",
        png=report("results/figures/nielsen_speed.png", caption="../report/nielsen_speed.rst", category="Sanity check"),
    log:
        "results/logs/nielsen_figure/nielsen_figure.log",
    script:
        "../scripts/nielsen_figure.py"
