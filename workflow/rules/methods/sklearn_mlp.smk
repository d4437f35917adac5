# scikit-learn's MLPClassifier (ReLU, Adam, (width,) * depth hidden units) as a method provided by a rule: the
# worked example of docs/methods.md "Methods as rules". It writes the run files of the contract (src/covbench/training/contract.py)
# for every depth and seed of one (dataset, method); config/sklearn_mlp.yaml puts it in the grid.
rule sklearn_mlp:
    input:
        data="results/data/{dataset}.pt",
    output:
        **{name.split(".")[0]: method_files(name, DEPTHS) for name in RUN_FILES},
    log:
        "results/logs/sklearn_mlp/{dataset}/{method}.log",
    benchmark:
        "results/benchmarks/sklearn_mlp/{dataset}/{method}.tsv"
    wildcard_constraints:
        dataset="|".join(DATASETS),
        method="|".join(methods_of_rule("sklearn_mlp")) or "(?!)",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        # the job's settings: each seed's split is drawn as the generic rule draws it (covbench.data.splits.seed_data,
        # docs/design.md#pairs-share-their-data)
        settings=lambda wildcards: job_settings(wildcards.dataset, wildcards.method),
        options=lambda wildcards: config["methods"][wildcards.method].get("options", {}),
    script:
        "../../scripts/sklearn_mlp.py"
