"""kzoo.training.RunConfig: each run option checked once, resolved, and recorded as the
run directory's config.json (get_config / from_config round trip)."""

import dataclasses
import json

import keras
import pytest

from kzoo.training import RunConfig, get_protocol


def _config(**kwargs):
    args = {"mixed_precision": "float32", "command": "kzoo train resnet20", **kwargs}
    return RunConfig.create("resnet20", "fashion_mnist", "fashion_mnist_demo", **args)


def _as_stored(record):
    """``record`` as RunDir writes it to config.json, read back."""
    return json.loads(json.dumps(record, indent=2, default=str))


def test_the_options_are_resolved_once():
    config = _config(epochs=2, lr=0.05, model_kwargs={"erase": "last"}, seed=3, verbose=True)
    assert config.protocol == get_protocol("fashion_mnist_demo", epochs=2, lr=0.05)
    assert config.model_kwargs == {**config.protocol.model_kwargs, "erase": "last"}
    assert (config.seed, config.verbose, config.precision, config.callbacks) == (3, 1, "float32", ())
    assert config.dataset_info.name == "fashion_mnist" and config.by_name
    default = RunConfig("resnet20", protocol="fashion_mnist_demo", command=None)
    assert default.dataset == "fashion_mnist" and isinstance(default.command, str) and default.command
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 4
    with pytest.raises(TypeError):  # options by keyword only: no bare values in a row
        RunConfig("resnet20", "fashion_mnist")


def test_the_record_round_trips_as_config_json_stores_it():
    config = _config(epochs=2, model_kwargs={"erase": "last", "proportion": 0.5}, out="somewhere")
    record = config.get_config()
    assert list(record) == [
        "model",
        "model_kwargs",
        "dataset",
        "protocol",
        "protocol_fields",
        "seed",
        "precision",
        "xla",
        "data_dir",
        "command",
    ]
    stored = _as_stored(record)
    again = RunConfig.from_config(stored, out="elsewhere")
    assert _as_stored(again.get_config()) == stored and again == config.replace(out="elsewhere")
    assert again.out == "elsewhere" and again.test is True  # this call's options, not recorded


@pytest.mark.parametrize(
    "change, err, match",
    [
        ({"seed": -1}, ValueError, r"`seed` must be an integer in \[0, 4294967295\]"),
        ({"xla": "yes"}, TypeError, "`xla` must be True or False"),
        ({"precision": "float8"}, ValueError, "`mixed_precision` must be one of"),
        ({"model": 5}, TypeError, "`model` must be a registered model name"),
        ({"dataset": "cifar11"}, ValueError, "cifar11"),
        ({"callbacks": [object()]}, TypeError, "`callbacks` must hold keras.callbacks.Callback"),
        ({"callbacks": keras.callbacks.History()}, TypeError, "`callbacks` must be a list"),
        ({"test": False, "test_curve": True}, ValueError, "`test_curve`=True evaluates the test set"),
        ({"activation_log": 0}, ValueError, "`activation_log`"),
        ({"out": 5}, TypeError, "`out` must be a path or None"),
        ({"data_dir": "/nonexistent/fmnist"}, FileNotFoundError, "`data_dir`=.* does not exist"),
        ({"command": ["kzoo"]}, TypeError, "`command` must be a string or None"),
        ({"model_kwargs": ["erase"]}, TypeError, "`model_kwargs` must be a dict"),
    ],
)
def test_replace_checks_again(change, err, match):
    with pytest.raises(err, match=match):
        _config().replace(**change)


@pytest.mark.parametrize(
    "edit, err, match",
    [
        (lambda c: {**c, "extra": 1}, ValueError, r"`config` has unknown run config field\(s\) 'extra'"),
        (lambda c: {k: v for k, v in c.items() if k != "seed"}, ValueError, "`config` lacks seed"),
        (lambda c: [c], TypeError, "`config` must be a dict"),
        (lambda c: {**c, "protocol_fields": {**c["protocol_fields"], "lr": -1.0}}, ValueError, "`lr`"),
    ],
)
def test_a_record_that_is_not_a_run_is_refused(edit, err, match):
    with pytest.raises(err, match=match):
        RunConfig.from_config(edit(_config().get_config()))
