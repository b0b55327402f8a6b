"""What is exported: a keras.Model, a ``.keras`` file, a finished run directory (whose
last model is exported with the run's record) or a SavedModel version kzoo exported
(rebuilt with its card's record: ``kzoo.serving.from_saved_model``), and whether it is
an image classifier with one image input ``[batch, H, W, C]`` and one output
``[batch, classes]``.

What a run, a version's card or a given ``record`` says the model was trained on (for a
``.keras`` file in a run directory or a version: that folder's) is the truth: the graph
normalises as the model learned, and the verification compares against that
preprocessing. A ``dataset`` that contradicts it is refused unless its preprocessing
(size, channels, normalisation, resize) and class count are the same. A path that is
none of the sources (a model folder, an ONNX version, an empty folder, a file inside a
run or a version) is refused saying what it is and what was expected.
"""

import os
import zipfile

from kzoo import checks
from kzoo.serving import formats, from_saved_model
from kzoo.serving.card import CARD_JSON
from kzoo.serving.versions_dir import versions
from kzoo.training.run_dir import BEST, CONFIG, EPOCHS, LAST, METRICS, RunDir

_KERAS_ARCHIVE_CONFIG = "config.json"  # inside a .keras zip (Keras' format, not the run's)
_RUN_FILES = (CONFIG, METRICS, LAST, BEST, EPOCHS)
_EXPECTED = "a keras.Model, a .keras file, a finished run directory or a SavedModel version folder"


def load_keras(path, arg="model"):
    """The model in the ``.keras`` file ``path``, or a kzoo error naming it (as ``arg``)."""
    from kzoo.saving import load_model

    checks.require_file(path, f"`{arg}`")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`{arg}`={path!r} is not a Keras archive (a .keras file is a zip written by model.save)"
        )
    with zipfile.ZipFile(path) as archive:
        if _KERAS_ARCHIVE_CONFIG not in archive.namelist():
            raise ValueError(
                f"`{arg}`={path!r} is not a Keras archive (a zip without {_KERAS_ARCHIVE_CONFIG})"
            )
    try:
        return load_model(path)
    except Exception as err:  # keras raises many kinds for a damaged or foreign archive
        raise ValueError(
            f"`{arg}`={path!r} could not be loaded as a Keras model ({type(err).__name__}: {err})"
        ) from None


def run_record(path):
    """The finished run directory ``path``'s config and metrics as one record (with its
    absolute path as ``source``), and the path of its last model."""
    run = RunDir(path)
    fix = f"export its {LAST} with `dataset` given instead, or train the run again"
    record = {}
    if os.path.lexists(run.config):
        record.update(checks.read_json(run.config, "the run's config", fix))
    if not os.path.lexists(run.metrics):
        raise ValueError(
            f"run directory {path!r} is not finished (no {METRICS}); "
            "finish it with the same `kzoo train` command first"
        )
    record.update(checks.read_json(run.metrics, "the run's metrics", fix))
    if not os.path.lexists(run.config):
        checks.require_file(run.config, "the run's config")
    if "test_top1" not in record:
        raise ValueError(
            f"run directory {path!r} is not finished ({run.metrics!r} has no "
            "test_top1); finish it with the same `kzoo train` command first"
        )
    record.pop("protocol_fields", None)
    record["source"] = os.path.abspath(path)
    return record, checks.require_file(run.last, "the run's last model")


def source(model, dataset, record=None):
    """(keras model, record for the card, dataset) from a model, a .keras file, a run
    directory or a SavedModel version. ``record`` (export's own, as ``kzoo publish``
    gives it) replaces the source's record on the card; the dataset either records is
    checked against the other and against ``dataset`` before the model is loaded."""
    import keras

    from kzoo.models.common import trainable_params

    own, facts, kind, path = {}, [], None, None
    if isinstance(model, (str, os.PathLike)) and not isinstance(model, bytes):
        path = checks.path(model, "model")
        kind = _kind(path)
        if kind == "saved_model":
            card = from_saved_model.read_version(path)
            facts.append((f"the SavedModel version {path!r}", card["dataset"]))
        elif kind == "run":
            own, last = run_record(path)
            if "dataset" in own:
                facts.append((f"the run directory {path!r}", own["dataset"]))
        else:
            facts.extend(_folder_dataset(path))
    elif not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be {_EXPECTED}, got {model!r}")
    if record is not None and "dataset" in record:
        facts.append(("`record`", record["dataset"]))
    dataset = trained_dataset(dataset, facts)
    if kind == "saved_model":
        model, own = from_saved_model.load_version(path, card)
    elif kind is not None:
        model = load_keras(last if kind == "run" else path)
    check_io(model)
    # The parameter count a record states is this model's (a version's card is not asked:
    # its model is rebuilt, every layer trainable, and checked against its answers instead).
    stated, where = (record, "`record`") if record is not None else (own, f"the run directory {path!r}")
    params = stated.get("params") if record is not None or kind == "run" else None
    if params is not None and params != trainable_params(model):
        raise ValueError(
            f"{where} states {params} trainable parameters but the model has "
            f"{trainable_params(model)}: it is not this model's record"
        )
    return model, own if record is None else record, dataset


def _kind(path):
    """What ``path`` is meant as: a "saved_model" version, a "run" directory or a "keras"
    file; else an error saying what it is and what was expected."""
    if not os.path.lexists(path):
        raise FileNotFoundError(f"`model`={path!r} does not exist (expected {_EXPECTED})")
    if os.path.isdir(path):
        return _folder_kind(path)
    if path.endswith(".keras"):
        return "keras"
    folder = os.path.dirname(os.path.abspath(path))
    try:
        inside = {"saved_model": "the SavedModel version", "run": "the run directory"}[_folder_kind(folder)]
    except (OSError, ValueError, KeyError):
        inside = None
    if inside:
        raise ValueError(f"`model`={path!r} is a file of {inside} {folder!r}: pass the folder itself")
    raise ValueError(f"`model` must be {_EXPECTED}, got the file {path!r}")


def _folder_dataset(path):
    """[(where, dataset)] that the run directory or SavedModel version holding the .keras
    file ``path`` (a run's last.keras, a version's model.keras) records; [] for a file
    elsewhere or a record that cannot be read (the file is then exported on its own)."""
    import json

    folder = os.path.dirname(os.path.abspath(path))
    for name, what in ((CONFIG, "the run directory"), (CARD_JSON, "the SavedModel version")):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                recorded = json.load(f).get("dataset")
        except (OSError, ValueError, AttributeError):
            continue
        if recorded is not None:
            return [(f"{what} {folder!r} that {os.path.basename(path)!r} lies in", recorded)]
    return []


def _folder_kind(path):
    try:
        entries = [e for e in os.listdir(path) if not e.startswith(".")]
    except OSError as err:
        raise ValueError(f"`model`={path!r} cannot be read ({err.strerror})") from None
    if from_saved_model.is_saved_model(path):
        return "saved_model"
    fmt = formats.version_format(path)
    if fmt is not None:
        raise ValueError(
            f"`model`={path!r} is an {fmt} version; kzoo exports from a SavedModel version, a run "
            "or a .keras file: pass the SavedModel version it was converted from"
        )
    if any(e in entries for e in _RUN_FILES):
        return "run"
    present = versions(path)
    if present:
        kinds = {v: formats.version_format(os.path.join(path, str(v))) for v in present}
        saved = [v for v in present if kinds[v] == "saved_model"]
        listing = ", ".join(f"{v} ({kinds[v] or 'no model'})" for v in present)
        hint = (
            f"pass one version's folder, e.g. {os.path.join(path, str(saved[-1]))!r} (the newest SavedModel)"
            if saved
            else "none is a SavedModel version, which is what kzoo exports from"
        )
        raise ValueError(f"`model`={path!r} is a model directory holding versions {listing}: {hint}")
    parts = [e for e in (from_saved_model.VARIABLES_DIR, CARD_JSON) if e in entries]
    if parts:
        raise FileNotFoundError(
            f"`model`={path!r} looks like a SavedModel version (it has {' and '.join(parts)}) but its "
            f"{from_saved_model.SAVED_MODEL_FILE} is missing; copy the whole version folder again"
        )
    what = "an empty folder" if not entries else "neither a run directory nor a SavedModel version"
    raise ValueError(
        f"`model`={path!r} is {what}: expected a finished run directory (with {CONFIG}, {METRICS} "
        f"and {LAST}) or a SavedModel version (with {from_saved_model.SAVED_MODEL_FILE}, "
        f"{from_saved_model.VARIABLES_DIR}/ and {CARD_JSON})"
    )


# What makes two datasets' exports the same graph: the size and channels the model
# sees, the class count, the normalisation and the evaluation resize.
def trained_dataset(dataset, facts):
    """The dataset whose preprocessing the export builds in: the one ``facts`` ((where,
    dataset name) the run, card or record states) agree the model was trained on, else
    ``dataset``. A ``dataset`` that differs from it is refused unless its preprocessing
    and classes are the same (the trained one is then used)."""
    from kzoo import data

    truth = None
    for where, name in facts:
        try:
            info = data.dataset_info(name)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{where} records dataset {name!r}, unknown here ({err}); register it "
                "(kzoo.data.register_dataset) before exporting"
            ) from None
        if truth is None:
            truth = (where, info)
        elif info.name != truth[1].name:
            raise ValueError(
                f"{where} states dataset {info.name!r} but {truth[0]} states {truth[1].name!r}: "
                "they describe different models"
            )
    if truth is None:
        if dataset is None:
            raise ValueError("`dataset` is needed to know the model's preprocessing (e.g. 'fashion_mnist')")
        return dataset
    where, trained = truth
    if dataset is None or dataset == trained.name:
        return trained.name
    differences = data.preprocessing_differences(dataset, trained.name)
    if differences:
        raise ValueError(
            f"`dataset`={dataset!r} contradicts {where}: the model was trained on {trained.name!r}, "
            f"and {dataset!r} has {', '.join(differences)}; the graph and its verification would "
            f"use preprocessing the model never saw. Leave `dataset` out (the export uses {trained.name!r})"
        )
    return trained.name


def check_io(model):
    """One image input and one ``[batch, classes]`` output, known before anything is traced."""
    expected = "one image input [batch, H, W, C] and one output [batch, classes]"
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"`model` is not built, or is a subclassed model whose input is not known: "
            f"kzoo exports image classifiers with {expected}; build a functional model "
            "(e.g. keras.Model(inputs, net(inputs))) before exporting"
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise ValueError(
            f"kzoo exports image classifiers with {expected}; this model takes "
            f"{len(shapes)} input(s) of shape {', '.join(map(str, shapes))}"
        )
    outputs = model.outputs or []
    shapes = [tuple(t.shape) for t in outputs]
    if len(outputs) != 1 or len(shapes[0]) != 2 or shapes[0][-1] is None:
        what = (
            "a per-pixel / spatial output"
            if len(shapes) == 1 and len(shapes[0]) == 4
            else f"{len(shapes)} outputs"
            if len(shapes) != 1
            else "an output of another shape"
        )
        raise ValueError(
            f"kzoo exports image classifiers with {expected}; this model has {what}: "
            f"{', '.join(map(str, shapes)) or 'none'}"
        )


def input_size(model, info):
    """The model's (height, width, channels), the dataset's where the model leaves one open."""
    shape = tuple(model.inputs[0].shape[1:])
    shape = tuple(s if s is not None else d for s, d in zip(shape, info.image_shape))
    if shape[-1] != info.image_shape[-1]:
        raise ValueError(
            f"the model takes {shape[-1]} channels but dataset {info.name!r} has {info.image_shape[-1]}"
        )
    return shape
