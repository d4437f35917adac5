import sys

from covbench import sweep
from covbench.cell import RUN_FILES
from covbench.compare import covariance_methods
from covbench.config import ConfigError, hyperparameters, method_spec, tune_settings, validate

try:
    validate(config)
    sweep.validate(config)
except ConfigError as error:
    sys.exit(str(error))

DATASETS = config["grid"]["datasets"]
METHODS = config["grid"]["methods"]
DEPTHS = config["grid"]["depths"]
SEEDS = config["grid"]["seeds"]
GRID_SPECS = {method: method_spec(config, method) for method in METHODS}
# The recurrent track (DESIGN section 8): sequence lengths where the grid has depths, the same seeds.
RECURRENT = config.get("recurrent", {"datasets": [], "methods": [], "lengths": []})
RECURRENT_DATASETS = RECURRENT["datasets"]
RECURRENT_METHODS = RECURRENT["methods"] if RECURRENT_DATASETS else []
LENGTHS = RECURRENT["lengths"] if RECURRENT_DATASETS else []
RECURRENT_SPECS = {method: method_spec(config, method) for method in RECURRENT_METHODS}
COVARIANCE_METHODS = covariance_methods(GRID_SPECS)
RUN_DIR = "results/runs/{dataset}/{method}/depth{depth}/seed{seed}"
RAW_FILES = {
    "mnist": ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
    "catvnoncat": ["train_catvnoncat.h5", "test_catvnoncat.h5"],
}
RAW_FILES["smnist"] = RAW_FILES["mnist"]  # noise-padded row MNIST reads MNIST's images

wildcard_constraints:
    dataset="|".join(DATASETS + RECURRENT_DATASETS),
    method="|".join(METHODS + RECURRENT_METHODS),
    depth=r"\d+",
    seed=r"\d+",
    file="|".join(f.replace(".", r"\.") for files in RAW_FILES.values() for f in files),


def method_files(name, depths):
    """One output per depth and seed of a (dataset, method), depth-major: one job trains them all (the seeds of a
    depth as one batched model)."""
    return expand("results/runs/{{dataset}}/{{method}}/depth{depth}/seed{seed}/" + name, depth=depths, seed=SEEDS)


def all_run_files(name):
    """Every run's file of both tracks: a recurrent run's `depth` is its sequence length."""
    return (expand(RUN_DIR + "/" + name, dataset=DATASETS, method=METHODS, depth=DEPTHS, seed=SEEDS)
            + expand(RUN_DIR + "/" + name, dataset=RECURRENT_DATASETS, method=RECURRENT_METHODS, depth=LENGTHS,
                     seed=SEEDS))


def all_tuning_records():
    return (expand("results/tune/{dataset}/{method}/depth{depth}.json", dataset=DATASETS, method=METHODS, depth=DEPTHS)
            + expand("results/tune/{dataset}/{method}/depth{depth}.json", dataset=RECURRENT_DATASETS,
                     method=RECURRENT_METHODS, depth=LENGTHS))


def final_targets():
    return ["results/paper/main.pdf"]
