import dataclasses
import os
import sys

from covbench.training import lambda_sweep
from covbench.training.job import RUN_FILES
from covbench.training.settings import JobSettings
from covbench.config import (
    ConfigError,
    base_method,
    covariance_methods,
    method_spec,
    validate,
)

try:
    validate(config)
    lambda_sweep.validate(config)
except ConfigError as error:
    sys.exit(str(error))

DATASETS = config["grid"]["datasets"]
METHODS = config["grid"]["methods"]
DEPTHS = config["grid"]["depths"]
SEEDS = config["grid"]["seeds"]
GRID_SPECS = {method: method_spec(config, method) for method in METHODS}
# Methods provided by rules of workflow/rules/methods/ (docs/methods.md "Methods as rules"; the method's config entry names
# its rule, `{rule: <name>}`). The generic `train` leaves their runs to that rule, and the pipeline does not tune them.
RULE_METHODS = {method: config["methods"][method]["rule"] for method in METHODS if "rule" in config["methods"][method]}
TRAINED_METHODS = [method for method in METHODS if method not in RULE_METHODS]
# The recurrent track (docs/design.md#the-recurrent-track): sequence lengths where the grid has depths, the same seeds.
RECURRENT = config.get("recurrent", {"datasets": [], "methods": [], "lengths": []})
RECURRENT_DATASETS = RECURRENT["datasets"]
RECURRENT_METHODS = RECURRENT["methods"] if RECURRENT_DATASETS else []
LENGTHS = RECURRENT["lengths"] if RECURRENT_DATASETS else []
RECURRENT_SPECS = {method: method_spec(config, method) for method in RECURRENT_METHODS}
COVARIANCE_METHODS = covariance_methods(GRID_SPECS)
RUN_DIR = "results/runs/{dataset}/{method}/depth{depth}/seed{seed}"
# The rules of training and tuning (docs/pipeline.md, "Stages": "tuning" and "training", the lambda sweep, Nielsen's networks,
# the course's cat classifiers): what a results bundle holds (rule `bundle`) and the bundle route does not run.
TRAINING_RULES = [
    "train",
    "train_recurrent",
    "tune_summary",
    "lambda_sweep",
    "nielsen_train",
    "course_train",
    *sorted(set(RULE_METHODS.values())),
]
RAW_FILES = {
    "mnist": [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ],
    "catvnoncat": ["train_catvnoncat.h5", "test_catvnoncat.h5"],
}
RAW_FILES["smnist"] = RAW_FILES["mnist"]  # noise-padded row MNIST reads MNIST's images


wildcard_constraints:
    dataset="|".join(DATASETS + RECURRENT_DATASETS),
    method="|".join(METHODS + RECURRENT_METHODS),
    depth=r"\d+",
    seed=r"\d+",
    file="|".join(f.replace(".", r"\.") for files in RAW_FILES.values() for f in files),


def job_settings(dataset, method, track="mlp", **changes):
    """The settings a (dataset, method) job runs with (covbench.training.settings), read once from the config; the
    rule's script gets them whole, as the dict Snakemake can compare with the last run's (its params rerun trigger
    skips what it cannot represent)."""
    return dataclasses.asdict(dataclasses.replace(JobSettings.from_config(config, dataset, method, track), **changes))


def base_tuning(dataset, method, depths, specs, trained):
    """Nested tuning (docs/design.md#nested-tuning): the tuning records of the method's base at every depth when the
    base trains in the same track, so the method's job waits for them; else none (and it is tuned on its own)."""
    base = base_method(method, specs)
    if base not in trained:
        return []
    return [f"results/tune/{dataset}/{base}/depth{depth}.json" for depth in depths]


def method_files(name, depths):
    """One output per depth and seed of a (dataset, method), depth-major: one job trains them all (the seeds of a
    depth as one batched model)."""
    return expand(
        os.path.join("results/runs/{{dataset}}/{{method}}/depth{depth}/seed{seed}", name), depth=depths, seed=SEEDS
    )


def all_run_files(name):
    """Every run's file of both tracks: a recurrent run's `depth` is its sequence length."""
    return expand(os.path.join(RUN_DIR, name), dataset=DATASETS, method=METHODS, depth=DEPTHS, seed=SEEDS) + expand(
        os.path.join(RUN_DIR, name), dataset=RECURRENT_DATASETS, method=RECURRENT_METHODS, depth=LENGTHS, seed=SEEDS
    )


def all_tuning_records():
    """Every tuned cell's record: methods provided by a rule are not tuned by the pipeline."""
    return expand(
        "results/tune/{dataset}/{method}/depth{depth}.json", dataset=DATASETS, method=TRAINED_METHODS, depth=DEPTHS
    ) + expand(
        "results/tune/{dataset}/{method}/depth{depth}.json",
        dataset=RECURRENT_DATASETS,
        method=RECURRENT_METHODS,
        depth=LENGTHS,
    )


def final_targets():
    return ["results/paper/main.pdf"]


def methods_of_rule(rule_name):
    """The grid's methods whose runs are produced by `rule_name` (workflow/rules/methods/), its `method` wildcard."""
    return [method for method, rule_of_method in RULE_METHODS.items() if rule_of_method == rule_name]


def check_method_rules():
    """Stop with one line when a method names a rule that no file of workflow/rules/methods/ defines."""
    folder = os.path.join("workflow", "rules", "methods")
    defined = {rule.name for rule in workflow.rules if os.path.dirname(rule.snakefile).endswith(folder)}
    for method, rule_name in RULE_METHODS.items():
        if rule_name not in defined:
            sys.exit(f"config error at 'methods.{method}.rule': no rule '{rule_name}' in workflow/rules/methods/")


def training_outputs():
    """Every output of the rules in TRAINING_RULES: the run files, tuning records and their table, lambda sweep
    cells, the Nielsen networks' speeds and the course's classifiers' accuracies (rule `bundle`)."""
    nielsen = (
        expand(
            "results/nielsen/hidden{hidden_layers}/layer_speed.parquet",
            hidden_layers=config["nielsen"]["hidden_layers"],
        )
        if "nielsen" in config
        else []
    )
    return [
        *(path for name in RUN_FILES for path in all_run_files(name)),
        *all_tuning_records(),
        "results/tune/chosen.parquet",
        "results/tune/lambda_profile.parquet",
        *SWEEP_CELLS,
        *nielsen,
        *(["results/course/accuracy.parquet"] if "course" in config else []),
    ]


def producing_rule(path):
    """The name of the producer of `path`, which figure and table captions give."""
    for candidate in workflow.rules:
        if candidate.is_producer(path):
            return candidate.name
    raise ValueError(f"no rule makes {path}, which the paper shows")


def paper_figure_files():
    return [f"results/figures/{name}.pdf" for name in PAPER_FIGURES]
