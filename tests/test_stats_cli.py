"""``kzoo stats`` (a run directory, a published tag, a .keras file) and the training
run's activation log (issue 37): what they write, what they refuse, and a resumed run's
log ending with the rows an uninterrupted run writes."""

import csv
import json
import os
import re

import keras
import numpy as np
import pytest
from helpers import CutAtEpoch

import kzoo
from kzoo import cli
from kzoo.models import pretrained
from kzoo.training import train

SMALL = {"validation_size": 64, "batch_size": 64}
ERASED = {"activation": "frelu", "erase": "last", "proportion": 0.5}
TAGS = list(pretrained.read_manifest())


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _train(data_dir, out, epochs=2, **kwargs):
    kwargs.setdefault("activation_log", 16)
    return train(
        "smallnet_bn",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=epochs,
        data_dir=data_dir,
        out=str(out),
        verbose=0,
        model_kwargs=ERASED,
        **SMALL,
        **kwargs,
    )


@pytest.fixture(scope="module")
def logged_run(fmnist_like_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("logged") / "run"
    return _train(fmnist_like_dir, out), out


def test_the_activation_log_has_a_row_per_slot_and_epoch_and_the_trained_biases(logged_run):
    result, out = logged_run
    rows = _rows(out / "activations.csv")
    assert sorted({r["epoch"] for r in rows}) == ["0", "1"] and {r["images"] for r in rows} == {"16"}
    last = [r for r in rows if r["epoch"] == "1"]
    assert len(last) * 2 == len(rows) and any(r["erased"] == "True" for r in last)
    assert all(0 <= float(r["zero_fraction"]) <= 1 for r in last if r["zero_fraction"])
    frelu = {r["layer"]: r["frelu_bias"] for r in last if r["frelu_bias"]}
    assert frelu
    for name, bias in frelu.items():
        weight = keras.ops.convert_to_numpy(result.model.get_layer(name).bias)
        np.testing.assert_allclose(json.loads(bias), weight, rtol=1e-6)
    assert (out / "activations.png").read_bytes()[:4] == b"\x89PNG"


def test_a_resumed_run_keeps_exactly_the_rows_of_the_epochs_it_kept(fmnist_like_dir, tmp_path, logged_run):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(fmnist_like_dir, out, callbacks=[CutAtEpoch(1)])
    first = _rows(out / "activations.csv")
    assert {r["epoch"] for r in first} == {"0"}
    # a row of an epoch the backup does not cover (killed after the log, before the backup)
    with open(out / "activations.csv", "a") as f:
        f.write("1,16,1,first,ghost,relu,False,0.5,0.0,\n")
    with pytest.raises(ValueError, match="logged activations on 16 images.*activation_log`=16"):
        _train(fmnist_like_dir, out, activation_log=8)
    with pytest.raises(ValueError, match="resuming it without `activation_log`"):
        _train(fmnist_like_dir, out, activation_log=False)
    _train(fmnist_like_dir, out)
    rows = _rows(out / "activations.csv")
    assert rows[: len(first)] == first and "ghost" not in {r["layer"] for r in rows}
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in _rows(logged_run[1] / "activations.csv")]


def test_a_log_is_not_started_half_way_and_bad_values_are_refused(fmnist_like_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(fmnist_like_dir, out, callbacks=[CutAtEpoch(1)], activation_log=None)
    with pytest.raises(ValueError, match="started without it"):
        _train(fmnist_like_dir, out)
    for bad, error in ((0, ValueError), (2.5, TypeError), ("64", TypeError)):
        with pytest.raises(error, match="`activation_log` must be an integer"):
            _train(fmnist_like_dir, tmp_path / "other", activation_log=bad)
    assert not (tmp_path / "other").exists()


def test_kzoo_stats_on_a_run_directory_writes_into_it(logged_run, capsys):
    _, out = logged_run
    assert cli.main(["stats", str(out), "--images", "32", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "on 32 image(s)" in printed and "activation_stats.png" in printed
    record = json.loads((out / "activation_stats.json").read_text())
    assert record["dataset"] == "fashion_mnist" and record["images"] == 32
    erased = [r for r in record["rows"] if r["erased"]]
    assert erased and all(r["slot"] == "last" for r in erased)
    assert len(_rows(out / "activation_stats.csv")) == len(record["rows"])
    assert (out / "activation_stats.png").read_bytes()[:4] == b"\x89PNG"


def _stats(*args):
    return cli.main(["stats", *map(str, args), "--quiet"])


def _tag_stats(tag, data_dir, out, capsys):
    assert _stats(tag, "--images", 64, "--data-dir", data_dir, "--out", out) == 0
    assert tag in capsys.readouterr().out
    record = json.loads((out / "activation_stats.json").read_text())
    options = pretrained.get(tag).options
    assert record["images"] == 64 and record["source"] == tag
    assert any(r["erased"] for r in record["rows"]) == bool(options.get("erase"))
    assert any(r["frelu_bias"] is not None for r in record["rows"]) == (options.get("activation") == "frelu")
    return record


def test_kzoo_stats_on_a_published_tag(fmnist_like_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _stats("resnet20.fashion_mnist_eraserelu", "--images", 8, "--data-dir", fmnist_like_dir) == 0
    assert sorted(os.listdir(tmp_path / "stats-resnet20.fashion_mnist_eraserelu")) == [
        "activation_stats.csv",
        "activation_stats.json",
        "activation_stats.png",
    ]
    _tag_stats("resnet20.fashion_mnist_frelu", fmnist_like_dir, tmp_path / "frelu", capsys)


@pytest.mark.parametrize("tag", TAGS)  # the package's weights; about a second each
def test_kzoo_stats_runs_on_every_published_tag(tag, fmnist_like_dir, tmp_path, capsys):
    _tag_stats(tag, fmnist_like_dir, tmp_path / "out", capsys)


def test_kzoo_stats_on_a_keras_file_with_its_original(fmnist_like_dir, tmp_path, capsys):
    base = kzoo.create_model("smallnet_bn", input_shape=(28, 28, 1), classes=10)
    placed = kzoo.place(base, erase="last", proportion=0.5)
    base.save(tmp_path / "base.keras")
    placed.save(tmp_path / "placed.keras")
    args = [tmp_path / "placed.keras", "--dataset", "fashion_mnist", "--data-dir", fmnist_like_dir]
    out = tmp_path / "out"
    assert _stats(*args, "--out", out, "--images", 16) == 0
    plain = json.loads((out / "activation_stats.json").read_text())["rows"]
    assert not any(r["erased"] for r in plain)
    assert _stats(*args, "--out", out, "--images", 16, "--original", tmp_path / "base.keras") == 0
    rows = json.loads((out / "activation_stats.json").read_text())["rows"]
    assert sum(r["erased"] for r in rows) > 0 and len(rows) > len(plain)


@pytest.mark.parametrize(
    "args, words",
    [
        (["nowhere/run"], "`source`='nowhere/run' does not exist; expected a run directory"),
        (["resnet20"], "names an architecture.*resnet20.fashion_mnist"),
        (["resnet20.imagenet"], "Unknown pretrained tag 'resnet20.imagenet'"),
        (["{tmp}/model.keras"], "`source`=.* does not exist"),
        (["{tmp}/notes.txt"], "is a file that is not a .keras model"),
        (["{tmp}/bad.keras", "--dataset", "fashion_mnist"], "`source`=.* is not a Keras archive"),
        (["{tmp}/empty"], "a folder without a run's config.json"),
        (["{tmp}/bad.keras"], "`dataset` is needed"),
        (["resnet20.fashion_mnist", "--dataset", "mnist"], "`dataset`='mnist'.*trained on 'fashion_mnist'"),
        (["resnet20.fashion_mnist", "--dataset", "nope"], "nope"),
        (["resnet20.fashion_mnist", "--images", "0"], "`images` must be an integer at least 1"),
        (["resnet20.fashion_mnist", "--batch-size", "0"], "`batch_size` must be an integer at least 1"),
        (["resnet20.fashion_mnist", "--images", "x"], "argument --images: invalid int"),
        (["resnet20.fashion_mnist", "--out", "{tmp}/notes.txt"], "`out`=.* is a file"),
        (["resnet20.fashion_mnist", "--data-dir", "{tmp}/missing"], "`data_dir`=.* does not exist"),
        (["resnet20.fashion_mnist", "--original", "{tmp}/bad.keras"], "`original` is for a .keras source"),
        (
            ["{tmp}/bad.keras", "--dataset", "fashion_mnist", "--original", "{tmp}/o.keras"],
            "`original`=.* must be",
        ),
    ],
)
def test_bad_stats_inputs_exit_2_naming_the_argument(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a tag's default output would go
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.keras").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    try:
        code = _stats(*(a.format(tmp=tmp_path) for a in args))
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert "kzoo: error:" in err and re.search(words, err), err
    assert sorted(os.listdir(tmp_path)) == ["bad.keras", "empty", "notes.txt"]  # nothing written
