"""Config validation and the resolved settings of one run.

Errors are one line naming the offending key, so a typo in a 2000-run grid stops at start-up.
"""

import re
from pathlib import Path

import jsonschema
import yaml

from covbench import components

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
METHOD_DEFAULTS = {
    "norm": "none",
    "residual": "none",
    "grad_clip": None,
    "aux": "none",
    "optimizer": "sgd",
    "standardize_inputs": False,
}
RECURRENT_DEFAULTS = {"recurrent_init": "default", "forget_bias": 1.0}
AUX_HYPERPARAMETER = {"covariance": "cov_lambda", "covariance_pooled": "cov_lambda", "deep_supervision": "aux_weight"}
METHOD_NAME = re.compile(r"[A-Za-z0-9_]+")  # it names result folders and LaTeX macros


class ConfigError(ValueError):
    pass


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _type_errors(errors):
    """Every 'wrong type' error, those inside oneOf/anyOf branches included."""
    for error in errors:
        if error.validator == "type":
            yield error
        yield from _type_errors(error.context or [])


def _scalar(text: str):
    """'1000' -> 1000, '1e-3' -> 0.001, 'true' -> True, 'null' -> None; anything else stays the string."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, bool) else text


def coerce_strings(config: dict, validator: jsonschema.protocols.Validator) -> None:
    """Numbers, booleans and nulls that arrive as strings become what the schema expects, in place.

    `snakemake --config 'datasets={"mnist": {"train_size": 1000}}'` parses nested values with YAML's base loader,
    which leaves every scalar a string ('1000'); a string that reads as a value the schema accepts there (1000,
    1e-3, true, null) is replaced by it. Anything else stays and fails validation as it is.
    """
    for _ in range(100):  # one fix per error; a fix may uncover the errors of a oneOf branch
        changed = False
        for error in _type_errors(validator.iter_errors(config)):
            if not isinstance(error.instance, str) or not error.absolute_path:
                continue
            value = _scalar(error.instance)
            try:
                if isinstance(value, str) or not validator.evolve(schema=error.schema).is_valid(value):
                    continue
            except jsonschema.exceptions.RefResolutionError:
                continue
            *parents, last = error.absolute_path
            container = config
            for key in parents:
                container = container[key]
            if container[last] == error.instance:
                container[last] = value
                changed = True
        if not changed:
            return


def validate(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Check `config` against the JSON schema and the component registries and return it. The one change it makes,
    in place: numeric (and boolean, null) strings from `snakemake --config` become numbers where the schema wants
    them (coerce_strings)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    coerce_strings(config, validator)
    for name in config.get("methods") if isinstance(config.get("methods"), dict) else ():
        if not METHOD_NAME.fullmatch(str(name)):
            raise ConfigError(
                f"config error at 'methods.{name}': a method name may hold only letters, digits and _ "
                f"(it names result folders and LaTeX macros)"
            )
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config error at '{_path(error)}': {error.message}")
    for where, (low, high) in _ranges(config["tune"]):
        if not low < high:
            raise ConfigError(
                f"config error at '{where}': the range [{low}, {high}] is reversed or empty; "
                f"give [low, high] with low < high"
            )
    overlap = sorted(set(tuning_seeds(config["tune"], "per_seed")) & set(config["grid"]["seeds"]))
    if overlap:
        raise ConfigError(
            f"config error at 'tune.seed': tuning seeds tune.seed .. tune.seed + tune.splits - 1 include the grid's "
            f"seeds {overlap}; move tune.seed past grid.seeds (tuning is on data the grid never reports)"
        )
    for name, values in config["tune"]["nested"].items():
        if values != sorted(values) or values[0] != 0:
            raise ConfigError(
                f"config error at 'tune.nested.{name}': give the values in ascending order from 0 (the "
                f"base itself, the incumbent), got {values}"
            )
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
        if config["datasets"][dataset].get("split", "official") != "official":
            raise ConfigError(
                f"config error at 'datasets.{dataset}.split': a sequence dataset keeps its official split; "
                f"set it to official"
            )
    for where, names, recurrent_methods in (
        ("grid", config["grid"]["methods"], False),
        ("recurrent", recurrent["methods"], True),
    ):
        for name in names:
            if name not in config["methods"]:
                known = ", ".join(sorted(config["methods"]))
                raise ConfigError(
                    f"config error at '{where}.methods': unknown method '{name}'; defined under 'methods': {known}"
                )
            if ("cell" in config["methods"][name]) != recurrent_methods:
                fix = "a method with a cell belongs in recurrent.methods" if not recurrent_methods else "give it a cell"
                raise ConfigError(f"config error at '{where}.methods': '{name}' {fix}")
    for name, method in config["methods"].items():
        # provided by a rule of workflow/rules/methods/: no components (docs/methods.md, "Methods as rules")
        if "rule" in method:
            continue
        spec = method_spec(config, name)
        for kind in components.RECURRENT_KINDS if "cell" in spec else components.KINDS:
            if spec[kind] not in components.names(kind):
                choices = ", ".join(components.names(kind))
                raise ConfigError(
                    f"config error at 'methods.{name}.{kind}': unknown {kind} '{spec[kind]}'; registered: {choices}"
                )
        if spec["residual"] == "skipinit" and spec["norm"] != "none":  # SkipInit is the remedy without a norm
            raise ConfigError(
                f"config error at 'methods.{name}.norm': residual 'skipinit' takes no norm (De & Smith 2020)"
            )
        for key in unused_hyperparameters(method, spec):
            raise ConfigError(
                f"config error at 'methods.{name}.{key}': {UNUSED_WHY[key](spec)}; remove it, or give "
                f"the method a component that uses it"
            )
    return config


def _ranges(tune: dict):
    """('tune.lr.sgd', [low, high]), ... : every search range of the tune block."""
    for optimizer, bounds in tune["lr"].items():
        yield f"tune.lr.{optimizer}", bounds
    for name in ("cov_lambda", "aux_weight"):
        yield f"tune.{name}", tune[name]


USERS = {
    name: sorted(aux for aux, used in AUX_HYPERPARAMETER.items() if used == name)
    for name in set(AUX_HYPERPARAMETER.values())
}
UNUSED_WHY = {
    **{
        name: (lambda spec, name=name: f"aux '{spec['aux']}' does not use {name} (only {', '.join(USERS[name])} do)")
        for name in USERS
    },
    "forget_bias": lambda spec: f"cell '{spec['cell']}' has no forget gate (only lstm does)",
}


def unused_hyperparameters(method: dict, spec: dict) -> list[str]:
    """Keys of a method's own config entry that none of its components reads (they would be silently ignored)."""
    unused = [name for name in USERS if name in method and AUX_HYPERPARAMETER.get(spec["aux"]) != name]
    if "forget_bias" in method and spec.get("cell") != "lstm":
        unused.append("forget_bias")
    return unused


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
        "width": data.get("width", train["width"]),
        "epochs": data["epochs"],
        "batch_size": data["batch_size"],
        "momentum": train["momentum"],
        "weight_decay": train["weight_decay"],
        "loss": train["loss"],
        "log_every": data.get("log_every", train["log_every"]),
    }


def covariance_methods(specs: dict[str, dict]) -> list[str]:
    """Methods whose auxiliary component is a covariance variant, in the given order."""
    return [name for name, spec in specs.items() if str(spec.get("aux", "none")).startswith("covariance")]


def base_method(method: str, specs: dict[str, dict]) -> str | None:
    """The method `method` is added to: the same composition without its auxiliary component (a covariance variant
    at lambda = 0, deep supervision at weight 0, is that method); None for a method with no aux or no such base."""

    def plain_part(spec):
        return {k: v for k, v in spec.items() if k not in ("aux", *USERS)}

    if specs[method].get("aux", "none") == "none":
        return None
    return next(
        (m for m, s in specs.items() if s.get("aux", "none") == "none" and plain_part(s) == plain_part(specs[method])),
        None,
    )


def tuning_seeds(tune: dict, protocol: str) -> list[int]:
    """The seeds that tune a cell (docs/design.md#tuning-splits): where each seed draws its own split (`per_seed`),
    tune.splits of them from tune.seed, each with its own split; one fixed split (`official`) keeps one, tune.seed."""
    return list(range(tune["seed"], tune["seed"] + tune["splits"])) if protocol == "per_seed" else [tune["seed"]]


def tune_settings(config: dict, dataset: str) -> dict:
    """The tuning budget and search ranges, with the dataset's successive-halving rungs (epochs at each rung's end)."""
    return {**config["tune"], "rung_epochs": config["datasets"][dataset]["tune_epochs"]}
