"""The config schema and registry checks reject bad input with one line naming the key."""

from pathlib import Path

import pytest
import yaml
from conftest import merge

from covbench.config import ConfigError, hyperparameters, method_spec, validate

ROOT = Path(__file__).resolve().parents[1]


def test_default_and_quick_configs_are_valid(config):
    validate(config)
    validate(merge(config, yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())))


@pytest.mark.parametrize(
    "override, key",
    [
        ({"grid": {"methods": ["baseline", "no_such_method"]}}, "grid.methods"),
        ({"grid": {"depths": [0]}}, "grid.depths.0"),
        ({"train": {"momentum": 1.5}}, "train.momentum"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"train": {"widht": 10}}, "train"),
        ({"datasets": {"mnist": {"epochs": "ten"}}}, "datasets.mnist.epochs"),
        ({"methods": {"baseline": {"activation": "swish", "init": "normal"}}}, "methods.baseline.activation"),
        ({"methods": {"baseline": {"activation": "sigmoid", "init": "glorot"}}}, "methods.baseline.init"),
        ({"methods": {"relu_resnet": {"residual": True}}}, "methods.relu_resnet.residual"),
        ({"methods": {"relu_resnet": {"residual": "resnet"}}}, "methods.relu_resnet.residual"),
        ({"methods": {"relu_skipinit": {"norm": "batchnorm"}}}, "methods.relu_skipinit.norm"),
        (
            {
                "methods": {
                    "covariance": {"activation": "sigmoid", "init": "normal", "aux": "covariance", "cov_lambda": -1}
                }
            },
            "methods.covariance.cov_lambda",
        ),
        ({"tune": {"lr": [0.1]}}, "tune.lr"),
        ({"tune": {"lr": {"sgd": [0.1]}}}, "tune.lr.sgd"),
        ({"datasets": {"mnist": {"tune_epochs": [5, 2]}}}, "datasets.mnist.tune_epochs"),
        ({"methods": {"sigmoid_adam": {"optimizer": "rmsprop"}}}, "methods.sigmoid_adam.optimizer"),
        ({"tune": {"lr": {"sgd": [1.0, 0.01]}}}, "tune.lr.sgd"),
        ({"tune": {"lr": {"adam": [0.1, 0.1]}}}, "tune.lr.adam"),
        ({"tune": {"cov_lambda": [100.0, 1.0]}}, "tune.cov_lambda"),
        ({"tune": {"aux_weight": [3.0, 0.03]}}, "tune.aux_weight"),
        ({"methods": {"relu/he": {"activation": "relu", "init": "he"}}}, "methods.relu/he"),
        ({"methods": {"relu he": {"activation": "relu", "init": "he"}}}, "methods.relu he"),
        ({"methods": {"relu_he": {"cov_lambda": 1.0}}}, "methods.relu_he.cov_lambda"),
        ({"methods": {"covariance": {"aux_weight": 0.3}}}, "methods.covariance.aux_weight"),
        ({"methods": {"deep_supervision": {"cov_lambda": 1.0}}}, "methods.deep_supervision.cov_lambda"),
        ({"methods": {"gru": {"forget_bias": 2.0}}}, "methods.gru.forget_bias"),
        ({"datasets": {"mnist": {"train_size": "a thousand"}}}, "datasets.mnist.train_size"),
        ({"course": {"networks": {"two_layer": {"init": "he"}}}}, "course.networks.two_layer.init"),
        (
            {"course": {"networks": {"four_layer": {"reported_test_accuracy": 80}}}},
            "course.networks.four_layer.reported_test_accuracy",
        ),
        ({"course": {"iterations": 0}}, "course.iterations"),
        ({"tune": {"splits": 0}}, "tune.splits"),
        ({"tune": {"splits": 2.5}}, "tune.splits"),
    ],
)
def test_bad_values_stop_with_one_line_naming_the_key(config, override, key):
    with pytest.raises(ConfigError) as error:
        validate(merge(config, override))
    message = str(error.value)
    assert "\n" not in message
    assert f"'{key}'" in message


def test_resolved_settings(config):
    spec = method_spec(config, "relu_he_clip")
    assert spec == {
        "activation": "relu",
        "init": "he",
        "norm": "none",
        "residual": "none",
        "grad_clip": 1.0,
        "aux": "none",
        "optimizer": "sgd",
        "standardize_inputs": False,
    }
    hp = hyperparameters(config, "mnist")
    assert hp["epochs"] == config["datasets"]["mnist"]["epochs"] and "lr" not in hp


def test_a_dataset_standardizing_its_inputs_does_so_for_every_feedforward_method(config):
    config = merge(
        config, {"datasets": {"catvnoncat": {"standardize_inputs": True}, "mnist": {"standardize_inputs": False}}}
    )
    assert method_spec(config, "relu_he", "catvnoncat")["standardize_inputs"] is True
    assert method_spec(config, "relu_he", "mnist")["standardize_inputs"] is False
    assert method_spec(config, "selu_lecun", "mnist")["standardize_inputs"] is True  # the method's own choice stays
    assert method_spec(config, "relu_he")["standardize_inputs"] is False


def test_numeric_strings_from_snakemake_config_become_numbers(config):
    """`snakemake --config` parses nested values with YAML's base loader: every scalar arrives as a string."""
    override = {
        "datasets": {"mnist": {"train_size": "1000", "val_threshold": "0.9", "standardize_inputs": "true"}},
        "tune": {"trials": "3", "lr": {"sgd": ["1e-3", "1.0"]}},
        "data": {"mirror": "/data"},
        "methods": {"covariance": {"cov_lambda": "2.5"}},
        "grid": {"depths": ["2", "4"]},
    }
    checked = validate(merge(config, override))
    assert checked["datasets"]["mnist"]["train_size"] == 1000 and checked["datasets"]["mnist"]["val_threshold"] == 0.9
    assert checked["datasets"]["mnist"]["standardize_inputs"] is True
    assert checked["tune"]["trials"] == 3 and checked["tune"]["lr"]["sgd"] == [0.001, 1.0]
    assert checked["methods"]["covariance"]["cov_lambda"] == 2.5 and checked["grid"]["depths"] == [2, 4]
    assert checked["data"]["mirror"] == "/data"  # a string where the schema takes one stays a string


def test_split_protocol_is_checked(config):
    assert validate(merge(config, {}))["datasets"]["catvnoncat"]["split"] == "per_seed"
    with pytest.raises(ConfigError, match=r"^config error at 'datasets.catvnoncat.split': 'folds' is not one of"):
        validate(merge(config, {"datasets": {"catvnoncat": {"split": "folds"}}}))
    with pytest.raises(ConfigError, match="a sequence dataset keeps its official split"):
        validate(merge(config, {"datasets": {"smnist": {"split": "per_seed"}}}))


def test_tuning_seeds_stay_outside_the_grid(config):
    """tune.seed .. tune.seed + tune.splits - 1 tune on data the grid reports: none may be a grid seed."""
    grid = {"seeds": [0, 1, 2, 10]}
    validate(merge(config, {"tune": {"seed": 8, "splits": 2}, "grid": grid}))
    for seed, splits in ((2, 1), (8, 3)):  # tune.seed itself, and the third of three from a free tune.seed
        with pytest.raises(ConfigError, match=r"^config error at 'tune.seed': .*\[(2|10)\]; move tune.seed past"):
            validate(merge(config, {"tune": {"seed": seed, "splits": splits}, "grid": grid}))
