# The deeplearning.ai course's week-4 cat classifiers on the official split, the paper's second sanity check: one
# job trains every network and seed (seconds each); then their table beside the course's reported accuracies.
COURSE_FILES = {"train": "train_catvnoncat.h5", "test": "test_catvnoncat.h5"}


rule course_train:
    input:
        **{key: f"results/data/raw/{name}" for key, name in COURSE_FILES.items()},
    output:
        "results/course/accuracy.parquet",
    log:
        "results/logs/course_train/course_train.log",
    benchmark:
        "results/benchmarks/course_train/course_train.tsv"
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=lambda wildcards: config["course"],
    script:
        "../scripts/course_train.py"


rule course_table:
    input:
        "results/course/accuracy.parquet",
    output:
        summary="results/course/accuracy_summary.parquet",
        tex="results/course/accuracy_summary.tex",
    log:
        "results/logs/course_table/course_table.log",
    script:
        "../scripts/course_table.py"
