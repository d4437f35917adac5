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
COVARIANCE_METHODS = covariance_methods(GRID_SPECS)
RUN_DIR = "results/runs/{dataset}/{method}/depth{depth}/seed{seed}"
RAW_FILES = {
    "mnist": ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
    "catvnoncat": ["train_catvnoncat.h5", "test_catvnoncat.h5"],
}

wildcard_constraints:
    dataset="|".join(DATASETS),
    method="|".join(METHODS),
    depth=r"\d+",
    seed=r"\d+",
    file="|".join(f.replace(".", r"\.") for files in RAW_FILES.values() for f in files),


def method_files(name):
    """One output per depth and seed of a (dataset, method), depth-major: one job trains them all (the seeds of a
    depth as one batched model)."""
    return expand("results/runs/{{dataset}}/{{method}}/depth{depth}/seed{seed}/" + name, depth=DEPTHS, seed=SEEDS)


def all_run_files(name):
    return expand(RUN_DIR + "/" + name, dataset=DATASETS, method=METHODS, depth=DEPTHS, seed=SEEDS)


def final_targets():
    return ["results/paper/main.pdf"]
