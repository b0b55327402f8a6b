"""What kzoo.export exports from, and what it refuses: the dataset a run, a SavedModel
version's card or a given record says the model was trained on is the truth (another
is refused unless its preprocessing is the same); damaged or mis-aimed source paths are
refused naming the path, what it is and what was expected; a failed export leaves
nothing behind, and a killed one nothing the next export of any format trips on."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import keras
import pytest

import kzoo
from kzoo import data
from kzoo.serving import convert, verification

SHAPE = (28, 28, 1)
FMNIST = {"model": "tiny", "dataset": "fashion_mnist"}


def _tiny(shape=SHAPE):
    """Input -> Flatten -> Dense(10, softmax): a model that exports in a second or two."""
    keras.utils.set_random_seed(2)
    inp = keras.Input(shape)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished run directory as kzoo.train leaves it, on Fashion-MNIST, tiny model."""
    run = tmp_path_factory.mktemp("run")
    _tiny().save(run / "last.keras")
    (run / "config.json").write_text(json.dumps(FMNIST))
    (run / "metrics.json").write_text(json.dumps({**FMNIST, "test_top1": 0.5, "test_top5": 0.9}))
    return str(run)


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    """A SavedModel version of a kzoo architecture (SmallNet: its dropout's seed
    generators are numbered per process), exported from Fashion-MNIST."""
    model = kzoo.create_model("smallnet", input_shape=SHAPE, classes=10)
    record = {"model": "smallnet", "model_kwargs": {}, "dataset": "fashion_mnist", "test_top1": 0.5}
    base = tmp_path_factory.mktemp("versions")
    return kzoo.export(
        model, base, "src", dataset="fashion_mnist", record=record, warmup=False, keras_file=True
    ).path


def _source(kind, run_dir, version, tmp_path):
    """(model argument, extra export arguments) for each kind of source trained on Fashion-MNIST."""
    if kind == "run":
        return run_dir, {}
    if kind == "saved_model":
        return version, {}
    if kind == "keras_file_in_run":
        return os.path.join(run_dir, "last.keras"), {}
    if kind == "keras_file_in_version":
        return os.path.join(version, "model.keras"), {}
    if kind == "keras_file_with_record":
        shutil.copy(os.path.join(run_dir, "last.keras"), tmp_path / "model.keras")
        return str(tmp_path / "model.keras"), {"record": FMNIST}
    # A pretrained tag, as kzoo publish exports it: the model built from its weights and its record.
    return _tiny(), {"record": {**FMNIST, "pretrained_tag": "tiny.fashion_mnist"}}


KINDS = ["run", "saved_model", "keras_file_in_run", "keras_file_in_version", "keras_file_with_record", "tag"]

# ----------------------------------------------------------------------------- the trained dataset


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "dataset, differs",
    [("mnist", r"mean \(33\.3184,\) \(not \(72\.9404,\)\), std"), ("cifar10", r"image shape \(32, 32, 3\)")],
)
def test_a_dataset_that_contradicts_the_training_is_refused(
    kind, dataset, differs, run_dir, version, tmp_path
):
    source, kwargs = _source(kind, run_dir, version, tmp_path)
    with pytest.raises(ValueError, match=r"contradicts .*trained on 'fashion_mnist'") as err:
        kzoo.export(source, tmp_path / "out", "m", dataset=dataset, warmup=False, **kwargs)
    assert "Leave `dataset` out" in str(err.value)
    assert (kind in ("tag", "keras_file_with_record")) == ("`record`" in str(err.value))
    assert re.search(differs, str(err.value)), str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "change, differs",
    [
        ({"image_shape": (32, 32, 1)}, r"image shape \(32, 32, 1\) \(not \(28, 28, 1\)\)"),
        ({"classes": 20}, r"classes 20 \(not 10\)"),
        (
            {"eval_resize": 36, "augmentation": data.Augmentation(random_resized_crop=(0.5, 1.0))},
            r"evaluation resize 36 \(not None\)",
        ),
    ],
)
def test_a_dataset_that_differs_in_size_classes_or_resize_is_refused(change, differs, run_dir, tmp_path):
    other = dataclasses.replace(data.dataset_info("fashion_mnist"), name="fmnist_other", **change)
    with data.registered(other):
        with pytest.raises(ValueError, match=differs):
            kzoo.export(run_dir, tmp_path / "out", "m", dataset="fmnist_other", warmup=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_the_trained_dataset_is_used_when_none_is_given(kind, run_dir, version, tmp_path):
    source, kwargs = _source(kind, run_dir, version, tmp_path)
    result = kzoo.export(source, tmp_path / "out", "m", warmup=False, **kwargs)
    assert result.card["dataset"] == "fashion_mnist"
    assert result.card["preprocessing"] == data.preprocessing_text("fashion_mnist", SHAPE[:2])


def test_a_dataset_with_the_same_preprocessing_is_the_trained_one(tmp_path, monkeypatch):
    """svhn_extra normalises, sizes and labels as svhn does: accepted, and the export is
    svhn's: its card, and the preprocessing the verification compares against."""
    seen = []
    verify = verification.verify

    def spy(model, fmt, path, info, *args, **kwargs):
        seen.append(info.name)
        return verify(model, fmt, path, info, *args, **kwargs)

    monkeypatch.setattr(verification, "verify", spy)
    record = {"dataset": "svhn"}
    result = kzoo.export(_tiny((32, 32, 3)), tmp_path, "m", dataset="svhn_extra", record=record, warmup=False)
    assert result.card["dataset"] == "svhn" and seen == ["svhn"]
    assert "svhn_extra" not in json.dumps(result.card)


@pytest.mark.parametrize(
    "kind, record, error, match",
    [
        ("run", {"dataset": "mnist"}, ValueError, r"`record` states dataset 'mnist' but the run directory"),
        (
            "saved_model",
            {"dataset": "mnist"},
            ValueError,
            r"`record` states dataset 'mnist' but the SavedModel",
        ),
        (
            "tag",
            {"dataset": "fashion_mnist", "params": 5},
            ValueError,
            r"`record` states 5 trainable parameters",
        ),
        ("tag", {"dataset": "no_such_data"}, ValueError, r"`record` records dataset 'no_such_data', unknown"),
    ],
)
def test_a_record_that_contradicts_the_model_is_refused(
    kind, record, error, match, run_dir, version, tmp_path
):
    source, _ = _source(kind, run_dir, version, tmp_path)
    with pytest.raises(error, match=match):
        kzoo.export(source, tmp_path / "out", "m", record=record, warmup=False)
    assert not (tmp_path / "out").exists()


def test_a_run_on_a_dataset_unknown_here_is_refused(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "config.json").write_text(json.dumps({**FMNIST, "dataset": "my_scans"}))
    (run / "metrics.json").write_text(json.dumps({"dataset": "my_scans", "test_top1": 0.5}))
    with pytest.raises(ValueError, match=r"run directory .* records dataset 'my_scans', unknown here"):
        kzoo.export(str(run), tmp_path / "out", "m", dataset="fashion_mnist")


# ----------------------------------------------------------------------------- damaged and mis-aimed sources


def _truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def _replace_with_dir(path):
    os.remove(path)
    os.mkdir(path)


def _card(folder, **changes):
    card = json.loads((folder / "model_card.json").read_text())
    card.update(changes)
    (folder / "model_card.json").write_text(json.dumps(card))


DATA = "variables/variables.data-00000-of-00001"
DAMAGES = {
    "no_variables": (
        lambda v: shutil.rmtree(v / "variables"),
        FileNotFoundError,
        r"has no variables/ folder",
    ),
    "variables_a_file": (
        lambda v: (shutil.rmtree(v / "variables"), (v / "variables").write_text("")),
        ValueError,
        r"variables' is a file; a SavedModel version holds its weights in a folder",
    ),
    "no_index": (
        lambda v: os.remove(v / "variables/variables.index"),
        FileNotFoundError,
        r"index .* is missing",
    ),
    "no_data": (lambda v: os.remove(v / DATA), FileNotFoundError, r"lacks variables\.data-00000-of-00001"),
    "truncated_data": (lambda v: _truncate(v / DATA, 100), ValueError, r"could not be read \(IndexError"),
    "truncated_graph": (
        lambda v: _truncate(v / "saved_model.pb", 100),
        ValueError,
        r"pb' is truncated or damaged",
    ),
    "empty_graph": (lambda v: _truncate(v / "saved_model.pb", 0), ValueError, r"pb' is empty"),
    "graph_a_dir": (lambda v: _replace_with_dir(v / "saved_model.pb"), ValueError, r"pb' is not a file"),
    "no_card": (lambda v: os.remove(v / "model_card.json"), FileNotFoundError, r"model card .* is missing"),
    "card_without_shape": (lambda v: _card(v, input={}), ValueError, r"card .* is damaged \(`input\.shape`"),
    "card_of_another_model": (
        lambda v: _card(v, model="tiny"),
        ValueError,
        r"holds 'tiny' with \{\}, which kzoo cannot build again",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_saved_model_versions(damage, version, tmp_path):
    harm, error, match = DAMAGES[damage]
    copy = tmp_path / "copy" / "1"
    shutil.copytree(version, copy)
    harm(copy)
    with pytest.raises(error, match=match) as err:
        kzoo.export(str(copy), tmp_path / "out", "m", format="saved_model", warmup=False)
    assert str(copy) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_saved_model_version_converts_from_a_process_that_built_its_model(version, tmp_path):
    """Keras numbers seed generators per process: the model rebuilt from the card gets
    other numbers than the one exported here, and still matches variable for variable."""
    result = kzoo.export(version, tmp_path, "again", warmup=False)
    assert result.card["verification"]["max_abs_diff_probabilities"] <= 1e-4
    assert result.card["converted_from"].endswith("src/1")


def _misaimed(kind, run_dir, version, tmp_path):
    folder = tmp_path / "aim"
    folder.mkdir()
    if kind == "model_folder":
        return os.path.dirname(version)
    if kind == "empty_folder":
        return str(folder)
    if kind == "other_folder":
        (folder / "notes.txt").write_text("x")
        return str(folder)
    if kind == "graph_file":
        return os.path.join(version, "saved_model.pb")
    if kind == "run_file":
        return os.path.join(run_dir, "metrics.json")
    if kind == "version_without_graph":
        shutil.copytree(version, folder / "1")
        os.remove(folder / "1" / "saved_model.pb")
        return str(folder / "1")
    if kind == "onnx_version":
        (folder / "model.onnx").write_bytes(b"")
        return str(folder)
    return str(folder / "missing")


@pytest.mark.parametrize(
    "kind, error, match",
    [
        (
            "model_folder",
            ValueError,
            r"is a model directory holding versions 1 \(saved_model\): pass .*src/1'",
        ),
        ("empty_folder", ValueError, r"is an empty folder: expected a finished run directory"),
        ("other_folder", ValueError, r"is neither a run directory nor a SavedModel version"),
        ("graph_file", ValueError, r"is a file of the SavedModel version .*: pass the folder itself"),
        ("run_file", ValueError, r"is a file of the run directory .*: pass the folder itself"),
        (
            "version_without_graph",
            FileNotFoundError,
            r"has variables and model_card\.json\) but its saved_model",
        ),
        ("onnx_version", ValueError, r"is an onnx version; kzoo exports from a SavedModel version"),
        ("missing", FileNotFoundError, r"does not exist \(expected a keras\.Model, a \.keras file"),
    ],
)
def test_misaimed_sources_say_what_they_are(kind, error, match, run_dir, version, tmp_path):
    with pytest.raises(error, match=match):
        kzoo.export(_misaimed(kind, run_dir, version, tmp_path), tmp_path / "out", "m", warmup=False)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- nothing left behind


def _fail(*args, **kwargs):
    raise RuntimeError("converter failed")


@pytest.mark.parametrize(
    "fmt, where",
    [
        ("saved_model", "write_saved_model"),
        ("onnx", "to_onnx"),
        ("litert", "to_litert"),
        ("saved_model", "verify"),
    ],
)
def test_a_failed_export_leaves_nothing(fmt, where, tmp_path, monkeypatch):
    """Not the version, nor the model folder and base it made; in a model folder that was
    there, only what was there."""
    from kzoo.serving import signatures

    owner = {"write_saved_model": signatures, "verify": verification}.get(where, convert)
    monkeypatch.setattr(owner, where, _fail)
    with pytest.raises(RuntimeError, match="converter failed"):
        kzoo.export(_tiny(), tmp_path / "base" / "deeper", "m", dataset="fashion_mnist", format=fmt)
    assert os.listdir(tmp_path) == []
    os.makedirs(tmp_path / "base" / "m" / "3")
    with pytest.raises(RuntimeError, match="converter failed"):
        kzoo.export(_tiny(), tmp_path / "base", "m", dataset="fashion_mnist", format=fmt)
    assert os.listdir(tmp_path / "base" / "m") == ["3"]


# The export of a model directory's first version, killed (as by SIGKILL or the OOM
# killer) once ``where`` is reached: its files are written, nothing is cleaned up.
KILLED = """
import os, signal, keras, kzoo
from kzoo.serving import convert, verification
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr({owner}, {where!r}, killed)
inp = keras.Input((28, 28, 1))
model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp)))
kzoo.export(model, {base!r}, "m", dataset="fashion_mnist", format={fmt!r})
"""


@pytest.mark.parametrize(
    "fmt, owner, where",
    [
        ("saved_model", "verification", "verify"),
        ("onnx", "verification", "verify"),
        ("litert", "convert", "to_litert"),
    ],
)
def test_a_killed_export_leaves_nothing_the_next_export_keeps(fmt, owner, where, tmp_path):
    """Every format's temporaries (the LiteRT converter's SavedModel too) lie in the
    version's temporary folder, which the next export of any format clears; none go to
    the system's temporary folder, where nothing would."""
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(system_tmp))
    code = KILLED.format(owner=owner, where=where, base=str(tmp_path / "base"), fmt=fmt)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-3000:]
    (stale,) = os.listdir(tmp_path / "base" / "m")
    assert stale.startswith(".tmp-1-") and os.listdir(tmp_path / "base" / "m" / stale)
    left = [
        f for _, _, files in os.walk(system_tmp) for f in files if f.endswith((".pb", ".onnx", ".tflite"))
    ]
    assert left == []  # (TensorFlow's autograph leaves its generated .py files there)
    result = kzoo.export(_tiny(), tmp_path / "base", "m", dataset="fashion_mnist", format=fmt, verify=False)
    assert os.listdir(tmp_path / "base" / "m") == ["1"] and result.version == 1
    assert not [n for n in os.listdir(result.path) if n.startswith(".")]


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_cli_export_under_another_dataset(dataset, run_dir, tmp_path, capsys):
    """The issue's case: `kzoo export RUN --dataset mnist` on a Fashion-MNIST run is a bad
    input (exit 2, nothing under --base); the run's own dataset exports."""
    from kzoo import cli

    args = [
        "export",
        run_dir,
        "--base",
        str(tmp_path / "base"),
        "--name",
        "m",
        "--dataset",
        dataset,
        "--no-warmup",
    ]
    if dataset == "mnist":
        assert cli.main(args) == 2
        assert "contradicts the run directory" in capsys.readouterr().err
        assert not (tmp_path / "base").exists()
    else:
        assert cli.main(args) == 0 and os.path.isdir(tmp_path / "base" / "m" / "1")


def test_a_run_whose_record_is_another_models_is_refused(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "metrics.json").write_text(json.dumps({**FMNIST, "test_top1": 0.5, "params": 12}))
    with pytest.raises(
        ValueError, match=r"the run directory .* states 12 trainable parameters but the model has 7850"
    ):
        kzoo.export(str(run), tmp_path / "out", "m")
    assert not (tmp_path / "out").exists()
