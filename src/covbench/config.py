"""Config validation and the resolved settings of one run.

Errors are one line naming the offending key, so a typo in a 2000-run grid stops at start-up.
"""
from pathlib import Path

import jsonschema
import yaml

from covbench import components

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
METHOD_DEFAULTS = {"norm": "none", "residual": "none", "grad_clip": None, "aux": "none", "optimizer": "sgd",
                   "standardize_inputs": False}
RECURRENT_DEFAULTS = {"recurrent_init": "default", "forget_bias": 1.0}
AUX_HYPERPARAMETER = {"covariance": "cov_lambda", "covariance_pooled": "cov_lambda", "deep_supervision": "aux_weight"}


class ConfigError(ValueError):
    pass


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Check `config` against the JSON schema and the component registries; returns it unchanged."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config error at '{_path(error)}': {error.message}")
    for dataset in config["grid"]["datasets"]:
        if dataset not in config["datasets"]:
            raise ConfigError(f"config error at 'grid.datasets': '{dataset}' has no entry under 'datasets'")
    for dataset, settings in config["datasets"].items():
        rungs = settings["tune_epochs"]
        if any(b <= a for a, b in zip(rungs, rungs[1:])):
            raise ConfigError(f"config error at 'datasets.{dataset}.tune_epochs': rungs must increase, got {rungs}")
    recurrent = config.get("recurrent", {"datasets": [], "methods": []})
    for dataset in recurrent["datasets"]:
        if dataset not in config["datasets"]:
            raise ConfigError(f"config error at 'recurrent.datasets': '{dataset}' has no entry under 'datasets'")
    for where, names, recurrent_methods in (("grid", config["grid"]["methods"], False),
                                            ("recurrent", recurrent["methods"], True)):
        for name in names:
            if name not in config["methods"]:
                known = ", ".join(sorted(config["methods"]))
                raise ConfigError(f"config error at '{where}.methods': unknown method '{name}'; defined under 'methods': {known}")
            if ("cell" in config["methods"][name]) != recurrent_methods:
                fix = "a method with a cell belongs in recurrent.methods" if not recurrent_methods else "give it a cell"
                raise ConfigError(f"config error at '{where}.methods': '{name}' {fix}")
    for name, method in config["methods"].items():
        spec = method_spec(config, name)
        for kind in components.RECURRENT_KINDS if "cell" in spec else components.KINDS:
            if spec[kind] not in components.names(kind):
                choices = ", ".join(components.names(kind))
                raise ConfigError(f"config error at 'methods.{name}.{kind}': unknown {kind} '{spec[kind]}'; registered: {choices}")
        if spec["residual"] == "skipinit" and spec["norm"] != "none":  # SkipInit is the remedy without a norm
            raise ConfigError(f"config error at 'methods.{name}.norm': residual 'skipinit' takes no norm (De & Smith 2020)")
    return config


def method_spec(config: dict, method: str, dataset: str | None = None) -> dict:
    """The method's components with defaults filled in; an aux hyperparameter given here is fixed, not tuned.
    On a dataset that standardizes its inputs for every method (`datasets.<name>.standardize_inputs`), so does
    the method there."""
    method = config["methods"][method]
    spec = {**METHOD_DEFAULTS, **(RECURRENT_DEFAULTS if "cell" in method else {}), **method}
    if dataset is not None and config["datasets"][dataset].get("standardize_inputs") and "cell" not in method:
        spec["standardize_inputs"] = True
    return spec


def hyperparameters(config: dict, dataset: str) -> dict:
    """Training settings shared by every method on a dataset (the learning rate comes from tuning)."""
    data = config["datasets"][dataset]
    train = config["train"]
    return {
        "width": data.get("width", train["width"]), "epochs": data["epochs"], "batch_size": data["batch_size"], "momentum": train["momentum"],
        "weight_decay": train["weight_decay"], "loss": train["loss"],
        "log_every": data.get("log_every", train["log_every"]),
    }


def tune_settings(config: dict, dataset: str) -> dict:
    """The tuning budget and search ranges, with the dataset's successive-halving rungs (epochs at each rung's end)."""
    return {**config["tune"], "rung_epochs": config["datasets"][dataset]["tune_epochs"]}
