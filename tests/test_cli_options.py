"""The model options of `kzoo summary`, `kzoo train` and `kzoo tune` come from one table:
each command accepts every builder option it can use, and passes it to the builder."""

import pytest

from kzoo import cli

BLOCK_OPTIONS = [
    "--stochastic-depth",
    "0.5",
    "--dropout-rate",
    "0.3",
    "--cross-type",
    "type3",
    "--ensemble",
    "--preact",
]
BLOCK_KWARGS = {
    "stochastic_depth": 0.5,
    "dropout_rate": 0.3,
    "cross_type": "type3",
    "ensemble": True,
    "preact": True,
}


def _parse(*argv):
    return cli._parser().parse_args(list(argv))


@pytest.mark.parametrize("command", ["summary", "train", "tune"])
def test_every_command_takes_the_block_options(command):
    assert cli._model_kwargs(_parse(command, "resnet20", *BLOCK_OPTIONS)) == BLOCK_KWARGS
    assert cli._model_kwargs(_parse(command, "resnet20", "--no-preact")) == {"preact": False}
    assert cli._model_kwargs(_parse(command, "resnet20")) == {}


@pytest.mark.parametrize("command", ["summary", "train"])
def test_placement_options_where_they_are_not_searched(command):
    args = _parse(
        command,
        "resnet20",
        "--activation",
        "frelu",
        "--erase",
        "line1_last+line2_first",
        "--proportion",
        "1,3",
    )
    assert cli._model_kwargs(args) == {
        "activation": "frelu",
        "erase": ["line1_last", "line2_first"],
        "proportion": [1, 3],
    }


def test_a_search_and_a_run_take_no_option_they_cannot_use(capsys):
    for argv in (
        ["tune", "resnet20", "--erase", "last"],
        ["train", "resnet20", "--classes", "10"],
        ["train", "resnet20", "--input-shape", "32,32,3"],
    ):
        with pytest.raises(SystemExit) as exit_:
            _parse(*argv)
        assert exit_.value.code == 2
        assert "kzoo: error:" in capsys.readouterr().err


def test_preact_and_no_preact_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        _parse("train", "resnet20", "--preact", "--no-preact")
    assert "not allowed with argument" in capsys.readouterr().err


def test_train_passes_the_block_options_to_the_builder(monkeypatch):
    seen = {}

    def fake_train(config):
        seen.update(config.model_kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr("kzoo.training.trainer.train_from_config", fake_train)
    assert cli.main(["train", "resnet20", *BLOCK_OPTIONS, "--erase", "last"]) == 2
    assert seen == {**BLOCK_KWARGS, "erase": "last"}


def test_tune_passes_the_block_options_to_the_builder(monkeypatch):
    seen = {}

    def fake_tune(name, dataset, protocol, space, **kwargs):
        seen.update(kwargs["model_kwargs"])
        raise ValueError("stop here")

    monkeypatch.setattr("kzoo.tuning.tune", fake_tune)
    assert cli.main(["tune", "resnet20", "--stochastic-depth", "0.5"]) == 2
    assert seen == {"stochastic_depth": 0.5}


def test_kzoo_reproduce_is_a_command_of_kzoo(capsys):
    assert cli.main(["reproduce", "--list-studies"]) == 0
    assert "eraserelu_table1" in capsys.readouterr().out
    assert cli.main(["reproduce", "eraserelu_tabel1", "--list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kzoo: error:") and "Did you mean 'eraserelu_table1'" in err
